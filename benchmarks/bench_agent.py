"""The customer agent's own code, without Faust, Kafka or Redis: CPU per event.

The harness (``omnistream/harness/run.py``) runs the worker's functions (ingest, identity, the
engine, send commands, journey events, the customer batch) on memory topics and tables. Fed the
pipeline section's traffic (the same demo events, keyed, the same 20 journeys), the CPU it
spends per event is what our code costs; the pipeline's worker CPU per event minus this is what
Faust's and aiokafka's per-record machinery costs (consume, produce, changelog, stream
plumbing). The harness adds some cost of its own (it scans its memory topics for the next
record), and it flushes the batch after every input, so this is an upper bound of our share.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import journeys_dir
from omnistream.clock import utcnow
from omnistream.harness.broker import MemoryTopic
from omnistream.harness.clock import ManualClock
from omnistream.harness.run import Harness, source_topic_name
from omnistream.journey.loader import load_catalog
from omnistream.sources.demo import demo_events, source_key

__all__ = ["run"]


def cpu_us_per_event(count: int, journey_events: bool = True) -> float:
    """One pass of ``count`` demo events through the worker's functions on memory parts."""
    catalog = load_catalog(journeys_dir(Path(tempfile.mkdtemp(prefix="omnistream-agent-"))))
    start = utcnow()
    harness = Harness(catalog, ManualClock(start))
    if journey_events:  # as the worker does by default (OMNISTREAM_JOURNEY_EVENTS)
        harness.runtime.topics.journey_events = MemoryTopic(harness.broker, "journey-events")
    traffic = demo_events(5000, seed=11, clock=lambda: start)
    for source, raw in itertools.islice(traffic, count):
        harness.broker.send(source_topic_name(source), source_key(raw), raw)
    began = time.process_time()
    logging.disable(logging.WARNING)  # the traffic's ~1% broken records are each logged
    try:
        harness.run_until(start)  # drains every record already on the topics
    finally:
        logging.disable(logging.NOTSET)
    return (time.process_time() - began) / count * 1e6


def run(quick: bool = False) -> dict[str, Any]:
    count = 5_000 if quick else 20_000
    repeats = 1 if quick else 3
    on = [cpu_us_per_event(count) for _ in range(repeats)]
    off = [cpu_us_per_event(count, journey_events=False) for _ in range(repeats)]
    return {
        "agent_code_cpu_us_per_event": statistics.median(on),
        "agent_code_cpu_us_per_event_no_journey_events": statistics.median(off),
        "agent_code_runs": on,
    }
