"""The Grafana dashboard: generated from code, queries only catalog metrics, covers the SRE view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnistream.observability import catalog, dashboard
from omnistream.observability.promql import metric_names


def test_committed_dashboard_equals_the_generated_one() -> None:
    assert dashboard.DASHBOARD_PATH.read_text(encoding="utf-8") == dashboard.render(), (
        "deploy/grafana/dashboards/omnistream.json is stale: "
        "run `python -m omnistream.observability.dashboard --write`"
    )


def test_every_query_names_only_catalog_metrics() -> None:
    known = catalog.sample_names()
    expressions = dashboard.expressions()
    assert len(expressions) > 40
    for title, expr in expressions:
        names = metric_names(expr)
        assert names, f"{title!r}: no metric in {expr!r}"
        assert names <= known, f"{title!r} queries unknown {names - known}"


def test_every_query_follows_the_job_variable() -> None:
    for title, expr in dashboard.expressions()[1:]:
        assert 'job=~"$job"' in expr, title


def test_it_covers_the_sre_view() -> None:
    used = set().union(*(metric_names(e) for _, e in dashboard.expressions()))
    wanted = {
        "omnistream_events_ingested_total",  # throughput
        "omnistream_stage_seconds_bucket",  # latency percentiles
        "omnistream_event_to_send_seconds_bucket",
        "omnistream_journey_step_transitions_total",  # funnel per step
        "omnistream_journey_goals_total",
        "omnistream_journey_live_instances",
        "omnistream_sends_total",  # sends per channel
        "omnistream_send_fallbacks_total",  # fallback rate
        "omnistream_send_suppressed_total",  # caps
        "omnistream_timers_pending",  # timers
        "omnistream_timer_lag_seconds_bucket",
        "omnistream_consumer_lag_records",  # lag
        "omnistream_provider_errors_total",  # errors
        "omnistream_engine_errors_total",
        "omnistream_dlq_records_total",
    }
    assert wanted <= used, wanted - used


def test_panels_do_not_overlap_and_have_unique_ids() -> None:
    model = dashboard.build()
    cells: set[tuple[int, int]] = set()
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_provisioning_points_at_the_dashboard_folder() -> None:
    root = dashboard.DASHBOARD_PATH.parents[1]
    assert (root / "provisioning" / "datasources" / "prometheus.yml").is_file()
    provider = (root / "provisioning" / "dashboards" / "omnistream.yml").read_text()
    assert "/var/lib/grafana/dashboards/omnistream" in provider
    assert json.loads(dashboard.DASHBOARD_PATH.read_text())["uid"] == "omnistream"


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "omnistream.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(dashboard, "DASHBOARD_PATH", stale)
    assert dashboard.main(["--check"]) == 1
    assert dashboard.main(["--write"]) == 0
    assert dashboard.main(["--check"]) == 0
