"""A partition's true end offset, for table recovery, even where ListOffsets reports it short.

Faust's table recovery reads each changelog partition up to its end offset (``highwaters``,
from ListOffsets "latest") and then stops. Tansu, the embedded broker, answers ListOffsets with
the *base* offset of the partition's last record batch + 1, not the offset after its last record
(measured: three batches of ten records, offsets 0-29, ListOffsets says 21; a fetch response
says highwater 30). The customer agent writes the rows of one batch together, so the changelog's
last record batch usually holds several rows, and recovery stopped after the first of them: a
worker that took over a partition lost the rest (5 of 40 rows in
``tests/integration/test_state_rebuild.py``; a customer whose order was forgotten got a cart
push in the soak of issue 22).

The fix asks the partitions themselves: a short-lived, group-less consumer fetches each
non-empty partition from ``listed - 1`` and takes the end as the largest of the listed offset,
the fetch response's highwater and the last record's offset + 1. On a broker whose ListOffsets is
right (Kafka) this confirms the listed offsets at the cost of one fetch per partition per
recovery; if the fetch does not answer in time, the listed offsets are used and a warning says
so, which is what Faust did before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final

from aiokafka.structs import TopicPartition as TP

__all__ = ["FETCH_TIMEOUT_S", "true_end_offsets"]

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S: Final = 10.0


async def true_end_offsets(
    consumer: Any, listed: Mapping[TP, int | None], within_s: float = FETCH_TIMEOUT_S
) -> dict[TP, int | None]:
    """``listed`` corrected upwards by fetching each non-empty partition's last batch.

    ``consumer`` is an unstarted, group-less ``AIOKafkaConsumer`` (with the worker's broker
    and credentials); it is started and stopped here.
    """
    ends: dict[TP, int | None] = dict(listed)
    probe = {tp: end for tp, end in listed.items() if end}
    if not probe:
        return ends
    try:
        await consumer.start()
        consumer.assign(list(probe))
        for tp, end in probe.items():
            consumer.seek(tp, end - 1)
        seen = await asyncio.wait_for(_fetch_last(consumer, set(probe)), within_s)
    except Exception as exc:  # recovery goes on with what the broker listed
        log.warning("could not check end offsets by fetching (%r); using the listed ones", exc)
        return ends
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    for tp, end in seen.items():
        listed_end = probe[tp]
        if end > listed_end:
            log.info("end offset of %s is %d, not %d as listed", tp, end, listed_end)
        ends[tp] = max(listed_end, end)
    return ends


async def _fetch_last(consumer: Any, pending: set[TP]) -> dict[TP, int]:
    """Fetch until every partition in ``pending`` answered once; its end is the fetch's
    highwater or the last record's offset + 1, whichever is larger."""
    seen: dict[TP, int] = {}
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=200)
        for tp in list(pending):
            highwater = consumer.highwater(tp)
            records = batches.get(tp, [])
            last = records[-1].offset + 1 if records else 0
            if highwater is not None or records:
                seen[tp] = max(highwater or 0, last)
                pending.discard(tp)
    return seen
