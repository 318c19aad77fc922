"""The catalog's rules, and docs/metrics.md generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omnistream.observability import catalog
from omnistream.observability.metrics import M

NAME = re.compile(r"^omnistream_[a-z0-9_]+$")
UNIT_SUFFIXES = ("_seconds", "_bytes", "_records", "_total", "_info", "_up", "_pending")
FORBIDDEN_LABELS = {"customer", "customer_id", "customer_key", "anonymous_id", "email", "phone",
                    "address", "send_id", "event_id", "user", "user_id", "token"}  # fmt: skip


def test_every_metric_follows_the_naming_rules() -> None:
    specs = catalog.specs()
    assert len(specs) >= 30
    for spec in specs:
        assert NAME.match(spec.name), spec.name
        assert spec.help.strip(), f"{spec.name} has no help text"
        if spec.type == "counter":
            assert spec.name.endswith("_total"), spec.name
        else:
            assert not spec.name.endswith("_total"), spec.name
        if spec.type == "histogram":
            # seconds, or a count of records per unit of work (a batch size distribution)
            assert spec.name.endswith(("_seconds", "_records")), f"{spec.name}: unit suffix"
            assert spec.buckets, spec.name
        assert not FORBIDDEN_LABELS & set(spec.labels), f"{spec.name}: unbounded label"


def test_names_are_unique() -> None:
    names = [spec.name for spec in catalog.specs()]
    assert len(names) == len(set(names))


def test_runtime_section_defines_what_dashboards_and_alerts_use() -> None:
    by_name = {spec.name: spec for spec in catalog.specs()}
    expected = {
        "omnistream_timers_pending": ("gauge", ()),
        "omnistream_timer_lag_seconds": ("histogram", ()),
        "omnistream_journey_live_instances": ("gauge", ("journey",)),
        "omnistream_consumer_lag_records": ("gauge", ("topic", "partition")),
        "omnistream_assigned_partitions": ("gauge", ("topic", "kind")),
        "omnistream_dlq_records_total": ("counter", ("reason",)),
        "omnistream_redis_up": ("gauge", ()),
    }
    for name, (kind, labels) in expected.items():
        spec = by_name[name]
        assert (spec.type, spec.labels, spec.section) == (kind, labels, "runtime"), name


def test_sections_come_from_the_source_comments() -> None:
    sections = {spec.attribute: spec.section for spec in catalog.specs()}
    assert sections["events_ingested"] == "ingest"
    assert sections["consumer_lag"] == "runtime"
    assert "general" not in sections.values()


def test_series_expand_by_type() -> None:
    spec = next(s for s in catalog.specs() if s.attribute == "stage_seconds")
    assert spec.series == (
        "omnistream_stage_seconds_bucket",
        "omnistream_stage_seconds_sum",
        "omnistream_stage_seconds_count",
    )
    assert "omnistream_events_ingested_total" in catalog.sample_names()


def test_markdown_lists_every_metric_with_its_labels() -> None:
    text = catalog.render_markdown()
    for spec in catalog.specs():
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "-"
        assert f"| `{spec.name}` | {spec.type} | {labels} |" in text
    assert M.consumer_lag._documentation in text


def test_committed_docs_equal_the_generated_text() -> None:
    assert catalog.DOC_PATH.read_text(encoding="utf-8") == catalog.render_markdown(), (
        "docs/metrics.md is stale: run `python -m omnistream.observability.catalog --write`"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "metrics.md"
    stale.write_text("old\n")
    monkeypatch.setattr(catalog, "DOC_PATH", stale)
    assert catalog.main(["--check"]) == 1
    assert catalog.main(["--write"]) == 0
    assert catalog.main(["--check"]) == 0
    assert stale.read_text() == catalog.render_markdown()
