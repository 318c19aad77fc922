"""What the console reads from Kafka: a customer's journey-event records and the dead letters.

Both are bounded tail reads (``console/tail.py``): the newest ``TIMELINE_RECORDS`` records of the
one journey-events partition the customer's records are keyed to, and the newest
``DLQ_RECORDS`` of each DLQ partition. Each returns a note for the page saying what was read, so
an empty list is never mistaken for "nothing happened".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiokafka.errors import KafkaError

from omnistream.console.tail import tail
from omnistream.runtime.dlq import DeadLetter
from omnistream.runtime.partitions import partition_of

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["DLQ_RECORDS", "TIMELINE_RECORDS", "customer_records", "dead_letters", "dlq_entry"]

log = logging.getLogger(__name__)

TIMELINE_RECORDS: Final = 2000
"""Newest records of the customer's journey-events partition read for a timeline."""
DLQ_RECORDS: Final = 200
"""Newest dead letters read per DLQ partition."""


async def customer_records(runtime: Runtime, key: str) -> tuple[list[dict[str, Any]], str]:
    """The customer's journey-event records among the partition's newest, and a note."""
    settings = runtime.settings
    if not settings.journey_events:
        return [], "Journey events are off (OMNISTREAM_JOURNEY_EVENTS=false): events only."
    partition = partition_of(key.encode(), settings.partitions)
    try:
        messages = await tail(
            settings, runtime.kafka, settings.journey_events_topic, TIMELINE_RECORDS, [partition]
        )
    except (KafkaError, OSError) as exc:
        log.warning("console: reading %s failed: %r", settings.journey_events_topic, exc)
        return [], f"Journey events could not be read ({type(exc).__name__}): events only."
    mine = [m for m in messages if m.key == key.encode()]
    records = []
    for message in mine:
        try:
            records.append(orjson.loads(message.value))
        except orjson.JSONDecodeError:
            continue
    note = (
        f"Journey steps, sends and outcomes: {len(records)} record(s) of this customer among "
        f"the newest {len(messages)} of {settings.journey_events_topic}[{partition}]."
    )
    return records, note


def dlq_entry(message: Any) -> dict[str, Any]:
    """One DLQ record as the page shows it (its headers say why it was rejected)."""
    try:
        letter = DeadLetter.from_headers(list(message.headers or ()))
    except (KeyError, ValueError, UnicodeDecodeError):
        return {
            "reason": "unreadable_headers",
            "detail": "the record has no omnistream.* headers",
            "topic": "?",
            "partition": "?",
            "offset": "?",
            "rejected_at": "",
        }
    return {
        "reason": letter.reason,
        "detail": letter.detail,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "rejected_at": letter.rejected_at.isoformat(),
    }


async def dead_letters(runtime: Runtime) -> tuple[list[dict[str, Any]], str]:
    topic = runtime.settings.dlq_topic
    try:
        messages = await tail(runtime.settings, runtime.kafka, topic, DLQ_RECORDS)
    except (KafkaError, OSError) as exc:
        log.warning("console: reading %s failed: %r", topic, exc)
        return [], f"{topic} could not be read ({type(exc).__name__})."
    return [dlq_entry(m) for m in messages], (
        f"The newest {len(messages)} record(s) of {topic} (up to {DLQ_RECORDS} per partition)."
    )
