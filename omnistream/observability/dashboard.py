"""The Grafana dashboard, as code: ``deploy/grafana/dashboards/omnistream.json`` is its output.

Writing the dashboard in Python keeps every query next to the metric catalog: tests check that
the committed JSON equals :func:`render`, that each expression names only catalog metrics, and
(integration) that each name exists on a running worker's ``/metrics``.

    python -m omnistream.observability.dashboard --write   # rewrite the JSON file
    python -m omnistream.observability.dashboard --check   # exit 1 if it is stale

The panel table below keeps one panel per line, so it is exempt from the line-length rule.
"""

# ruff: noqa: E501

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnistream.observability.generated import generated_file_main

__all__ = ["DASHBOARD_PATH", "build", "expressions", "main", "render"]

DASHBOARD_PATH = (
    Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "omnistream.json"
)
_DS = {"type": "prometheus", "uid": "${datasource}"}
_JOB = 'job=~"$job"'
_RATE = "[$__rate_interval]"


def _sel(metric: str, matchers: str = "") -> str:
    """``metric{job=~"$job",<matchers>}``: every query follows the dashboard's job filter."""
    return f"{metric}{{{_JOB}{',' + matchers if matchers else ''}}}"


def _rate(metric: str, by: str, matchers: str = "") -> str:
    return f"sum by ({by}) (rate({_sel(metric, matchers)}{_RATE}))"


def _quantile(q: float, metric: str, by: str) -> str:
    """``histogram_quantile`` over ``<metric>_bucket`` grouped by ``by`` (``le`` added)."""
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({_sel(metric + '_bucket')}{_RATE})))"


@dataclass
class _Layout:
    """Places panels left to right in Grafana's 24-column grid, rows top to bottom."""

    panels: list[dict[str, Any]] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_height: int = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: dict[str, Any], width: int, height: int = 8) -> None:
        if self.x + width > 24:
            self._newline()
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0


def _targets(queries: list[tuple[str, str]], instant: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "refId": chr(ord("A") + i),
            "datasource": _DS,
            "expr": expr,
            "legendFormat": legend,
            "range": not instant,
            "instant": instant,
        }
        for i, (expr, legend) in enumerate(queries)
    ]


def _timeseries(
    title: str,
    queries: list[tuple[str, str]],
    unit: str = "short",
    description: str = "",
    stack: bool = False,
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DS,
        "targets": _targets(queries),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"stacking": {"mode": "normal" if stack else "none"}, "fillOpacity": 10},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["last"]}},
    }


def _stat(title: str, expr: str, unit: str = "short", description: str = "") -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": _DS,
        "targets": _targets([(expr, "")], instant=True),
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"},
    }


def _bars(title: str, expr: str, legend: str, description: str = "") -> dict[str, Any]:
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": _DS,
        "targets": _targets([(expr, legend)], instant=True),
        "fieldConfig": {"defaults": {"unit": "short", "min": 0}, "overrides": []},
        "options": {"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True},
    }


def _ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / clamp_min({denominator}, 1e-9)"


def _pcts(metric: str, by: str, qs: tuple[float, ...]) -> list[tuple[str, str]]:
    label = f" {{{{{by}}}}}" if by else ""
    return [(_quantile(q, metric, by), f"p{round(q * 100)}{label}") for q in qs]


_FUNNEL = (
    "sum by (journey, step) "
    f"(increase({_sel('omnistream_journey_step_transitions_total')}[$__range]))"
)
_SENT = 'outcome="sent"'
_FALLBACKS_BY_CHANNEL = (
    "sum by (channel) (label_replace(rate("
    f'{_sel("omnistream_send_fallbacks_total")}{_RATE}), "channel", "$1", "from_channel", "(.*)"))'
)

# Sections of (title, [(expr, legend), ...], unit, width, description).
_Spec = tuple[str, list[tuple[str, str]], str, int, str]
_SECTIONS: list[tuple[str, list[_Spec]]] = [
    ("Throughput", [
        ("Events in by source", [(_rate("omnistream_events_ingested_total", "source"), "{{source}}")], "ops", 8, ""),
        ("Events in by type (top 10)", [(f"topk(10, {_rate('omnistream_events_ingested_total', 'type')})", "{{type}}")], "ops", 8, ""),
        ("Rejected by reason", [(_rate("omnistream_events_rejected_total", "reason"), "{{reason}}")], "ops", 8, "Records sent to the DLQ by ingest, the customer agent or a channel agent."),
        ("DLQ records by reason", [(_rate("omnistream_dlq_records_total", "reason"), "{{reason}}")], "ops", 8, "Acknowledged by the broker on the dead-letter topic."),
        ("Kafka records consumed by topic", [(_rate("omnistream_kafka_consumed_records_total", "topic"), "{{topic}}")], "ops", 8, ""),
        ("Customer inputs by kind", [(_rate("omnistream_customer_inputs_total", "kind"), "{{kind}}"), (_rate("omnistream_events_duplicate_total", "job"), "duplicate")], "ops", 8, ""),
        ("Source records by route", [(_rate("omnistream_ingest_routes_total", "route"), "{{route}}")], "ops", 8, "direct: handled where it was read (keyed by customer, see the README's Keys); forwarded: one more produce and consume."),
    ]),
    ("Latency", [
        ("Processing time per stage (p50/p95/p99)", _pcts("omnistream_stage_seconds", "stage", (0.5, 0.95, 0.99)), "s", 12, "Time one record spends in each stage."),
        ("Event to provider ack (p50/p95/p99)", _pcts("omnistream_event_to_send_seconds", "channel", (0.5, 0.95, 0.99)), "s", 12, "From the causing event's timestamp to the provider's acknowledgement."),
        ("Provider request p95", _pcts("omnistream_provider_request_seconds", "provider", (0.95,)), "s", 8, ""),
        ("Redis round trip p95", [*_pcts("omnistream_channel_redis_seconds", "op", (0.95,)), (_quantile(0.95, "omnistream_redis_ping_seconds", ""), "ping")], "s", 8, ""),
        ("Timer lag (p50/p99)", _pcts("omnistream_timer_lag_seconds", "", (0.5, 0.99)), "s", 8, "Due time to firing; grows when a worker is down or overloaded."),
    ]),
    ("Journeys", [
        ("Live instances by journey", [(f"sum by (journey) ({_sel('omnistream_journey_live_instances')})", "{{journey}}")], "short", 12, ""),
        ("Entries by journey", [(_rate("omnistream_journey_entries_total", "journey, control"), "{{journey}} control={{control}}")], "ops", 12, ""),
        ("Exits by reason", [(_rate("omnistream_journey_exits_total", "journey, reason"), "{{journey}} {{reason}}")], "ops", 12, ""),
        ("Conversions (goal reached) by journey", [(_rate("omnistream_journey_goals_total", "journey"), "{{journey}}")], "ops", 12, ""),
    ]),
    ("Sends", [
        ("Sends by channel and outcome", [(_rate("omnistream_sends_total", "channel, outcome"), "{{channel}} {{outcome}}")], "ops", 12, ""),
        ("Sent by provider", [(_rate("omnistream_sends_total", "provider", _SENT), "{{provider}}")], "ops", 12, ""),
        ("Fallbacks from -> to", [(_rate("omnistream_send_fallbacks_total", "from_channel, to_channel"), "{{from_channel}} -> {{to_channel}}")], "ops", 8, ""),
        ("Fallback rate (share of channel outcomes)", [(_ratio(_FALLBACKS_BY_CHANNEL, _rate("omnistream_sends_total", "channel")), "{{channel}}")], "percentunit", 8, ""),
        ("Capped and suppressed by reason", [(_rate("omnistream_send_suppressed_total", "channel, reason"), "{{channel}} {{reason}}")], "ops", 8, "Caps, quiet hours, missing consent or address, expiry."),
        ("Send commands by channel and category", [(_rate("omnistream_send_commands_total", "channel, category"), "{{channel}} {{category}}")], "ops", 8, ""),
        ("Rate-limit waits by provider", [(_rate("omnistream_rate_limit_wait_seconds_total", "provider"), "{{provider}}")], "s", 8, "Seconds per second spent waiting for provider tokens."),
        ("Duplicate sends answered from dedup", [(_rate("omnistream_send_duplicates_total", "channel"), "{{channel}}")], "ops", 8, ""),
    ]),
    ("Timers and Kafka", [
        ("Pending timers", [(f"sum by (instance) ({_sel('omnistream_timers_pending')})", "{{instance}}"), (f"sum by (instance) ({_sel('omnistream_timers_held')})", "{{instance}} held: inputs not read yet")], "short", 8, "Held: due, waiting until the partition's source inputs are read up to the due time."),
        ("Consumer lag by topic/partition", [(f"sum by (topic, partition) ({_sel('omnistream_consumer_lag_records')})", "{{topic}}[{{partition}}]")], "short", 8, "Highwater minus committed offset of each assigned partition."),
        ("Assigned partitions by worker", [(f"sum by (instance, kind) ({_sel('omnistream_assigned_partitions')})", "{{instance}} {{kind}}")], "short", 8, ""),
        ("Rebalances", [(_rate("omnistream_rebalances_total", "instance"), "{{instance}}")], "ops", 8, ""),
        ("Worker uptime", [(f"time() - {_sel('omnistream_worker_start_time_seconds')}", "{{instance}}")], "s", 8, ""),
        ("Records produced by topic", [(_rate("omnistream_kafka_produced_records_total", "topic"), "{{topic}}")], "ops", 8, ""),
    ]),
    ("Errors", [
        ("Provider errors by reason", [(_rate("omnistream_provider_errors_total", "provider, reason, kind"), "{{provider}} {{reason}} ({{kind}})")], "ops", 8, ""),
        ("Provider error ratio", [(_ratio(_rate("omnistream_provider_errors_total", "provider"), _rate("omnistream_provider_request_seconds_count", "provider")), "{{provider}}")], "percentunit", 8, "Failed attempts / attempts."),
        ("Engine errors", [(_rate("omnistream_engine_errors_total", "reason"), "{{reason}}")], "ops", 8, ""),
        ("Redis errors", [(_rate("omnistream_channel_redis_errors_total", "op"), "{{op}}"), (_rate("omnistream_redis_ping_errors_total", "job"), "ping")], "ops", 8, ""),
        ("Kafka produce errors", [(_rate("omnistream_kafka_produce_errors_total", "topic"), "{{topic}}")], "ops", 8, ""),
        ("Webhook receipts refused", [(_rate("omnistream_receipts_rejected_total", "provider, status"), "{{provider}} {{status}}")], "ops", 8, ""),
    ]),
]  # fmt: skip


def _panels() -> list[dict[str, Any]]:
    g = _Layout()
    g.row("Overview")
    stats = [
        ("Events in /s", f"sum({_rate('omnistream_events_ingested_total', 'job')})"),
        ("DLQ records /s", f"sum({_rate('omnistream_dlq_records_total', 'job')})"),
        ("Sent /s", f"sum({_rate('omnistream_sends_total', 'job', _SENT)})"),
        ("Workers", f"count({_sel('omnistream_worker_info')})"),
        ("Consumer lag", f"sum({_sel('omnistream_consumer_lag_records')})"),
        ("Redis up (min)", f"min({_sel('omnistream_redis_up')})"),
    ]
    for title, expr in stats:
        g.add(_stat(title, expr), 4, 4)
    for section, specs in _SECTIONS:
        g.row(section)
        if section == "Journeys":
            funnel = "Journey instances arriving at each step over the dashboard's time range."
            g.add(_bars("Funnel: step arrivals", _FUNNEL, "{{journey}} / {{step}}", funnel), 24, 10)
        for title, queries, unit, width, description in specs:
            g.add(_timeseries(title, queries, unit, description), width)
    for i, panel in enumerate(g.panels, start=1):
        panel["id"] = i
    return g.panels


_JOB_VARIABLE_METRIC = "omnistream_worker_info"


def build() -> dict[str, Any]:
    """The dashboard as a Grafana JSON model (schema 39, Grafana 10+)."""
    job_query = f"label_values({_JOB_VARIABLE_METRIC}, job)"
    return {
        "uid": "omnistream",
        "title": "omnistream",
        "description": "Generated by omnistream.observability.dashboard; do not edit by hand.",
        "tags": ["omnistream", "kafka"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                {
                    "name": "job",
                    "label": "Job",
                    "type": "query",
                    "datasource": _DS,
                    "definition": job_query,
                    "query": {"query": job_query, "refId": "job"},
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {},
                },
            ]
        },
        "panels": _panels(),
    }


def expressions(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query, plus the ``job`` variable's metric."""
    model = dashboard if dashboard is not None else build()
    found = [("variable job", _JOB_VARIABLE_METRIC)]
    for panel in model["panels"]:
        found += [(panel["title"], target["expr"]) for target in panel.get("targets", [])]
    return found


def render() -> str:
    """The committed file's text (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated_file_main(
        "python -m omnistream.observability.dashboard", DASHBOARD_PATH, render, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
