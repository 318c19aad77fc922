"""The one catalog of Prometheus metrics. Every metric omnistream exports is defined here.

Rules: ``omnistream_`` prefix, base units (seconds, bytes), ``_total`` on counters, help text,
and bounded label values only (sources, event types, channels, journey and step ids, reasons;
never a customer id).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["REGISTRY", "BoundedLabel", "M", "event_type_label"]

REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""omnistream's own registry, so tests and embedding apps never collide on global state."""

_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_TIMER_LAG_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""Timers fire on a 0.2 s tick; minutes or hours of lag mean a worker was down or overloaded."""


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
    ingest_routes = Counter(
        "omnistream_ingest_routes_total",
        "Valid source events by route: direct (already in the customer's partition, handled in "
        "place) or forwarded (re-produced to the customer topic under its route key).",
        ["route"],
        registry=REGISTRY,
    )
    events_duplicate = Counter(
        "omnistream_events_duplicate_total",
        "Customer inputs ignored because their event id was already processed.",
        registry=REGISTRY,
    )
    # --- customer state / journeys ------------------------------------------------------------
    customer_batch_records = Histogram(
        "omnistream_customer_batch_records",
        "Inputs per customer-agent batch (rows written and inputs acked together).",
        buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
        registry=REGISTRY,
    )
    customer_batch_seconds = Histogram(
        "omnistream_customer_batch_seconds",
        "Age of a customer-agent batch when it was flushed (first input to rows written).",
        buckets=_LATENCY_BUCKETS,
        registry=REGISTRY,
    )
    customer_inputs = Counter(
        "omnistream_customer_inputs_total",
        "Inputs processed by the customer agent, by kind (event, timer, broadcast, outcome).",
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
    journey_events = Counter(
        "omnistream_journey_events_total",
        "Records produced to omni.journey-events, by kind (entered, step, send, outcome, goal, "
        "exited).",
        ["kind"],
        registry=REGISTRY,
    )
    engine_errors = Counter(
        "omnistream_engine_errors_total",
        "Customer inputs the engine could not process (sent to the DLQ).",
        ["reason"],
        registry=REGISTRY,
    )
    journey_reloads = Counter(
        "omnistream_journey_reloads_total",
        "Attempts to hot-reload the journey set: applied, unchanged or refused (invalid set).",
        ["result"],
        registry=REGISTRY,
    )
    journeys_active = Gauge(
        "omnistream_journeys_active",
        "Journeys in the running set, by status (active, paused, draft).",
        ["status"],
        registry=REGISTRY,
    )
    journey_versions = Gauge(
        "omnistream_journey_versions",
        "Journey versions the running set holds (1 each), by state: current (new entries) or "
        "retained (kept for instances pinned to it; at most 20 per journey).",
        ["journey", "version", "state"],
        registry=REGISTRY,
    )
    identity_messages = Counter(
        "omnistream_identity_messages_total",
        "Identity messages handled (claim, release, merge, forget) and what became of them.",
        ["kind", "result"],
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
    # --- channels -----------------------------------------------------------------------------
    # Owned by omnistream.channels / providers / storage / receipts.
    send_fallbacks = Counter(
        "omnistream_send_fallbacks_total",
        "Sends moved from one channel to the next of their chain, by reason.",
        ["from_channel", "to_channel", "reason"],
        registry=REGISTRY,
    )
    send_suppressed = Counter(
        "omnistream_send_suppressed_total",
        "Sends not delivered on a channel by policy (consent, address, cap, expiry), by reason.",
        ["channel", "reason"],
        registry=REGISTRY,
    )
    provider_request_seconds = Histogram(
        "omnistream_provider_request_seconds",
        "Duration of one provider request (one attempt), by provider.",
        ["provider"],
        buckets=_LATENCY_BUCKETS,
        registry=REGISTRY,
    )
    provider_errors = Counter(
        "omnistream_provider_errors_total",
        "Failed provider requests (one attempt), by provider, reason and kind.",
        ["provider", "reason", "kind"],
        registry=REGISTRY,
    )
    provider_retries = Counter(
        "omnistream_provider_retries_total",
        "Provider requests retried after a transient error.",
        ["provider"],
        registry=REGISTRY,
    )
    channel_redis_seconds = Histogram(
        "omnistream_channel_redis_seconds",
        "Duration of one Redis round trip of the channel stores, by operation.",
        ["op"],
        buckets=_LATENCY_BUCKETS,
        registry=REGISTRY,
    )
    channel_claims_taken_over = Counter(
        "omnistream_channel_claims_taken_over_total",
        "In-flight send claims taken over from a worker whose lease lapsed (it died mid-send); "
        "the send is tried again at once instead of after the claim's expiry.",
        ["channel"],
        registry=REGISTRY,
    )
    channel_sends_put_back = Counter(
        "omnistream_channel_sends_put_back_total",
        "Sends put back at the end of their channel's topic so the sends behind them go on: "
        "reason claim_held (another worker holds the claim: mid-send, or dead with its lease "
        "not lapsed yet) or rebalance (another provider attempt was due while the worker "
        "rebalanced or stopped; the claim was released).",
        ["channel", "reason"],
        registry=REGISTRY,
    )
    channel_redis_errors = Counter(
        "omnistream_channel_redis_errors_total",
        "Redis round trips of the channel agents that failed (connection, timeout), by operation.",
        ["op"],
        registry=REGISTRY,
    )
    channel_redis_waits = Counter(
        "omnistream_channel_redis_wait_seconds_total",
        "Seconds channel agents spent waiting for Redis to come back.",
        registry=REGISTRY,
    )
    rate_limit_waits = Counter(
        "omnistream_rate_limit_waits_total",
        "Times a send waited for a provider rate-limit token, by provider.",
        ["provider"],
        registry=REGISTRY,
    )
    rate_limit_wait_seconds = Counter(
        "omnistream_rate_limit_wait_seconds_total",
        "Seconds sends waited for provider rate-limit tokens, by provider.",
        ["provider"],
        registry=REGISTRY,
    )
    send_duplicates = Counter(
        "omnistream_send_duplicates_total",
        "Redelivered send commands answered from the dedup record instead of sent again.",
        ["channel"],
        registry=REGISTRY,
    )
    receipts = Counter(
        "omnistream_receipts_total",
        "Provider delivery callbacks accepted, by provider and status.",
        ["provider", "status"],
        registry=REGISTRY,
    )
    receipts_rejected = Counter(
        "omnistream_receipts_rejected_total",
        "Provider callbacks refused, by provider and HTTP status.",
        ["provider", "status"],
        registry=REGISTRY,
    )
    receipts_unmatched = Counter(
        "omnistream_receipts_unmatched_total",
        "Verified provider callbacks that name no send we know (message token or recipient "
        "expired from the index, or never ours): answered 200, nothing produced.",
        ["provider", "reason"],
        registry=REGISTRY,
    )
    message_index_write_failures = Counter(
        "omnistream_message_index_write_failures_total",
        "Accepted messages whose provider message id could not be indexed (Redis down): "
        "their callbacks will be unmatched; the send itself stands.",
        ["provider"],
        registry=REGISTRY,
    )

    # --- runtime ------------------------------------------------------------------------------
    # Owned by observability (omnistream.runtime.observers, web); timers and live instances are
    # set by the runtime's timer index and customer agent.
    timers_pending = Gauge(
        "omnistream_timers_pending",
        "Durable waits pending in this worker's timer index (the partitions it owns).",
        registry=REGISTRY,
    )
    timers_held = Gauge(
        "omnistream_timers_held",
        "Due timers held back at the last tick because their partition's source inputs were "
        "not read up to the due time yet (after a failover, behind a backlog); one that stays "
        "up means a source partition is not being read.",
        registry=REGISTRY,
    )
    timer_lag_seconds = Histogram(
        "omnistream_timer_lag_seconds",
        "Delay from a timer's due time to the moment this worker fired it.",
        buckets=_TIMER_LAG_BUCKETS,
        registry=REGISTRY,
    )
    broadcast_rows = Counter(
        "omnistream_broadcast_rows_total",
        "Customer rows a scheduled broadcast judged, by result: turn (a broadcast_due input "
        "produced), audience (not in the audience), already (armed or entered for this "
        "occurrence), missed (their local time plus 'late' had passed), unreadable, gone (deleted "
        "since the scan listed the keys).",
        ["journey", "result"],
        registry=REGISTRY,
    )
    broadcast_partitions_done = Counter(
        "omnistream_broadcast_partitions_done_total",
        "Customer partitions a worker finished scanning for one broadcast occurrence.",
        ["journey"],
        registry=REGISTRY,
    )
    journey_live_instances = Gauge(
        "omnistream_journey_live_instances",
        "Journey instances in flight in this worker's partitions, by journey.",
        ["journey"],
        registry=REGISTRY,
    )
    consumer_lag = Gauge(
        "omnistream_consumer_lag_records",
        "Records in an assigned partition that this worker has not committed yet "
        "(highwater minus committed offset; offset 0 when the group never committed).",
        ["topic", "partition"],
        registry=REGISTRY,
    )
    assigned_partitions = Gauge(
        "omnistream_assigned_partitions",
        "Partitions assigned to this worker, by topic and kind (active, standby).",
        ["topic", "kind"],
        registry=REGISTRY,
    )
    internal_requests_refused = Counter(
        "omnistream_internal_requests_refused_total",
        "Requests the internal listener refused with 401, by reason: missing (no bearer "
        "token), invalid (a token that matches none configured), unconfigured (the worker has "
        "no OMNISTREAM_INTERNAL_TOKENS).",
        ["reason"],
        registry=REGISTRY,
    )
    console_test_sends = Counter(
        "omnistream_console_test_sends_total",
        "Test messages an operator sent from the console's preview to an address they typed "
        "(no journey state touched), by channel and result: sent, or the provider's failure "
        "reason.",
        ["channel", "result"],
        registry=REGISTRY,
    )
    kafka_consumed = Counter(
        "omnistream_kafka_consumed_records_total",
        "Records this worker's consumer handed to streams, by topic.",
        ["topic"],
        registry=REGISTRY,
    )
    kafka_produced = Counter(
        "omnistream_kafka_produced_records_total",
        "Records the broker acknowledged from this worker, by topic.",
        ["topic"],
        registry=REGISTRY,
    )
    kafka_produce_errors = Counter(
        "omnistream_kafka_produce_errors_total",
        "Records this worker failed to produce, by topic.",
        ["topic"],
        registry=REGISTRY,
    )
    undecodable_batches = Counter(
        "omnistream_undecodable_batches_total",
        "Fetched record batches the consumer could not decode (a codec without its library, a "
        "bad CRC, a corrupt compressed body), by topic: skipped, logged with partition and "
        "offsets, dead-lettered as reason undecodable_batch.",
        ["topic"],
        registry=REGISTRY,
    )
    consumer_rewinds = Counter(
        "omnistream_consumer_rewinds_total",
        "Times a stream partition's next record was ahead of the offset expected (a position "
        "moved past records nobody handled, around a rebalance), by topic: the consumer seeks "
        "back and reads them again instead of committing past them (runtime/continuity.py).",
        ["topic"],
        registry=REGISTRY,
    )
    consumer_gaps = Counter(
        "omnistream_consumer_gaps_total",
        "Offsets a stream partition really lacks (undecodable batches skipped, transaction "
        "markers, compaction), by topic: committed past once the same jump came back after a "
        "rewind or the batches were reported undecodable.",
        ["topic"],
        registry=REGISTRY,
    )
    consumer_stale_records = Counter(
        "omnistream_consumer_stale_records_total",
        "Records dropped because their offset was already handed to the stream since the last "
        "seek (fetched again after a rewind or a rebalance), by topic.",
        ["topic"],
        registry=REGISTRY,
    )
    dlq_records = Counter(
        "omnistream_dlq_records_total",
        "Records the broker acknowledged on the dead-letter topic, by reason.",
        ["reason"],
        registry=REGISTRY,
    )
    dlq_truncated = Counter(
        "omnistream_dlq_truncated_total",
        "Rejected records too big to copy whole: sent to the dead-letter topic truncated, with "
        "their original size and sha256 in headers.",
        registry=REGISTRY,
    )
    dlq_send_failures = Counter(
        "omnistream_dlq_send_failures_total",
        "Rejected records that could not be put on the dead-letter topic (logged with topic, "
        "partition and offset), by phase: send (the producer refused it) or delivery (the "
        "broker did not acknowledge it).",
        ["phase"],
        registry=REGISTRY,
    )
    transient_retries = Counter(
        "omnistream_transient_retries_total",
        "Retries of one record after an outage (Redis or Kafka unreachable, a timeout), by "
        "stage: the agent waits and retries the same record instead of dead-lettering it.",
        ["stage"],
        registry=REGISTRY,
    )
    rebalances = Counter(
        "omnistream_rebalances_total",
        "Consumer-group rebalances this worker went through.",
        registry=REGISTRY,
    )
    redis_ping_seconds = Histogram(
        "omnistream_redis_ping_seconds",
        "Round trip of the worker's periodic Redis PING.",
        buckets=_LATENCY_BUCKETS,
        registry=REGISTRY,
    )
    redis_ping_errors = Counter(
        "omnistream_redis_ping_errors_total",
        "Periodic Redis PINGs that failed or timed out.",
        registry=REGISTRY,
    )
    redis_up = Gauge(
        "omnistream_redis_up",
        "1 if the worker's last Redis PING succeeded, else 0.",
        registry=REGISTRY,
    )
    worker_start_time = Gauge(
        "omnistream_worker_start_time_seconds",
        "Unix time the worker started (uptime = time() - this).",
        registry=REGISTRY,
    )


class BoundedLabel:
    """Caps the distinct values one label may take; later newcomers are reported as ``other``.

    Event types come from producers; a buggy one must not blow up Prometheus cardinality.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


event_type_label: Final = BoundedLabel(200)
