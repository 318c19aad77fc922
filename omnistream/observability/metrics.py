"""The one catalog of Prometheus metrics. Every metric omnistream exports is defined here.

Rules: ``omnistream_`` prefix, base units (seconds, bytes), ``_total`` on counters, help text,
and bounded label values only (sources, event types, channels, journey and step ids, reasons;
never a customer id).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["REGISTRY", "M"]

REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""omnistream's own registry, so tests and embedding apps never collide on global state."""

_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class M:
    """Namespace of all metrics (``M.events_ingested.labels(...).inc()``)."""

    # --- ingest -------------------------------------------------------------------------------
    events_ingested = Counter(
        "omnistream_events_ingested_total",
        "Valid events accepted from a source topic.",
        ["source", "type"],
        registry=REGISTRY,
    )
    events_rejected = Counter(
        "omnistream_events_rejected_total",
        "Source records rejected and sent to the dead-letter topic, by reason.",
        ["topic", "reason"],
        registry=REGISTRY,
    )
    events_duplicate = Counter(
        "omnistream_events_duplicate_total",
        "Customer inputs ignored because their event id was already processed.",
        registry=REGISTRY,
    )
    # --- customer state / journeys ------------------------------------------------------------
    customer_inputs = Counter(
        "omnistream_customer_inputs_total",
        "Inputs processed by the customer agent, by kind (event, timer, outcome).",
        ["kind"],
        registry=REGISTRY,
    )
    journey_entries = Counter(
        "omnistream_journey_entries_total",
        "Customers entering a journey (control = holdout group, no sends).",
        ["journey", "control"],
        registry=REGISTRY,
    )
    journey_exits = Counter(
        "omnistream_journey_exits_total",
        "Customers leaving a journey, by reason.",
        ["journey", "reason"],
        registry=REGISTRY,
    )
    journey_steps = Counter(
        "omnistream_journey_step_transitions_total",
        "Journey instances arriving at a step.",
        ["journey", "step"],
        registry=REGISTRY,
    )
    journey_goals = Counter(
        "omnistream_journey_goals_total",
        "Journey instances that reached the journey's goal (conversions).",
        ["journey"],
        registry=REGISTRY,
    )
    engine_errors = Counter(
        "omnistream_engine_errors_total",
        "Customer inputs the engine could not process (sent to the DLQ).",
        ["reason"],
        registry=REGISTRY,
    )
    # --- sends --------------------------------------------------------------------------------
    send_commands = Counter(
        "omnistream_send_commands_total",
        "Send commands produced by journeys, by first channel of the chain and category.",
        ["channel", "category"],
        registry=REGISTRY,
    )
    sends = Counter(
        "omnistream_sends_total",
        "Send outcomes at the channel agents, by channel, provider and outcome.",
        ["channel", "provider", "outcome"],
        registry=REGISTRY,
    )
    event_to_send_seconds = Histogram(
        "omnistream_event_to_send_seconds",
        "Time from the causing event's timestamp to the provider's acknowledgement.",
        ["channel"],
        buckets=_LATENCY_BUCKETS,
        registry=REGISTRY,
    )
    # --- processing ---------------------------------------------------------------------------
    stage_seconds = Histogram(
        "omnistream_stage_seconds",
        "Processing time of one record in one stage (ingest, customer, channel).",
        ["stage"],
        buckets=_LATENCY_BUCKETS,
        registry=REGISTRY,
    )
    worker_info = Gauge(
        "omnistream_worker_info",
        "Always 1; labels carry the worker's version and journey set version.",
        ["version", "journeys_version"],
        registry=REGISTRY,
    )
