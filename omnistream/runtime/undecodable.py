"""Record batches the consumer cannot decode are skipped, counted and dead-lettered, never fatal.

aiokafka decodes a fetched batch lazily, while ``Fetcher.fetched_records`` hands records out, and
lets any error escape: ``UnsupportedCodecError`` for a codec without its library (before cramjam
was a dependency: every snappy batch from a librdkafka producer), ``CorruptRecordException`` for
a bad CRC, ``zlib.error`` and the like for a corrupt compressed body (both measured on Tansu,
which accepts such batches). The error reaches Faust's fetcher service, which crashes; each
worker that takes the partition over fetches the same batch and crashes the same way. The
records the same call had already decoded from the partition's earlier batches are lost too.

Here each fetched partition's batches are decoded one at a time before aiokafka iterates them
(``tolerate``): a batch that raises is reported and replaced by an empty batch, so aiokafka
moves its position past it (``next_fetch_offset = batch.next_offset``) and hands out the records
around it as usual. Faust sees a gap in the offsets, which it already handles (as for a
compacted topic): later acks commit past it. Its records cannot be read, so its DLQ record
(reason ``undecodable_batch``) carries no value: the headers name the topic, partition and
first offset, the detail names the offset range, codec and error, and an operator re-reads the
range from the source topic with a client that has the codec while retention holds.

The decoding runs on Faust's consumer thread; the gap and the DLQ send are handed to the app's
loop (``install`` leaves the DLQ hook on the app, where ``runtime/transport.py`` finds it).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from aiokafka.consumer.fetcher import FetchResult
from aiokafka.errors import CorruptRecordException
from aiokafka.structs import TopicPartition as TP

from omnistream.observability.metrics import M
from omnistream.runtime.dlq import dead_letter

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "APP_HOOK",
    "UNDECODABLE_BATCH",
    "UndecodableBatch",
    "dead_letter_batch",
    "hand_over",
    "install",
    "record",
    "tolerate",
]

UNDECODABLE_BATCH: Final = "undecodable_batch"
"""DLQ reason for a record batch the consumer could not decode (codec, CRC, corrupt body)."""

APP_HOOK: Final = "omnistream_undecodable"
"""Attribute of the Faust app holding ``dead_letter_batch`` bound to the runtime."""

_CODECS: Final = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UndecodableBatch:
    """Where a skipped batch was and why it could not be decoded."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    codec: str
    error: str

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.first_offset}-{self.last_offset}"

    @property
    def detail(self) -> str:
        return (
            f"offsets {self.first_offset}-{self.last_offset} skipped, "
            f"codec {self.codec}: {self.error}"
        )


Report = Callable[[UndecodableBatch], None]


class _Decoded:
    """A batch whose records were decoded up front (or none: a skipped batch), as aiokafka's
    ``PartitionRecords`` reads it: header fields from the real batch, records from the list."""

    def __init__(self, batch: Any, records: list[Any]) -> None:
        self._batch = batch
        self._records = iter(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def validate_crc(self) -> bool:
        return True  # checked before decoding; a skipped batch has nothing left to check

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._records)


class _TolerantRecords:
    """aiokafka's ``MemoryRecords`` of one fetched partition, handing out ``_Decoded`` batches."""

    def __init__(self, partition_records: Any, report: Report) -> None:
        self._records = partition_records._records
        self._owner = partition_records  # its next_fetch_offset: where a skipped range starts
        self._report = report

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def next_batch(self) -> _Decoded | None:
        batch = self._records.next_batch()
        if batch is None:
            return None
        try:
            if self._owner._check_crcs and not batch.validate_crc():
                raise CorruptRecordException("Invalid CRC")
            return _Decoded(batch, list(batch))
        except Exception as exc:  # whatever decoding raises: the bytes are the problem
            self._report(self._undecodable(batch, exc))
            return _Decoded(batch, [])

    def _undecodable(self, batch: Any, exc: Exception) -> UndecodableBatch:
        tp = self._owner._tp
        codec_id = getattr(batch, "compression_type", None)
        return UndecodableBatch(
            topic=tp.topic,
            partition=tp.partition,
            first_offset=int(self._owner.next_fetch_offset),
            last_offset=int(batch.next_offset) - 1,
            codec=_CODECS.get(codec_id, f"unknown({codec_id})") if codec_id is not None else "?",
            error=_describe(exc),
        )


def _describe(exc: Exception) -> str:
    """``Type: message`` (aiokafka's errors already start with their type)."""
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def _make_tolerant(result: Any, report: Report) -> None:
    """Wrap a fetch result's records, if aiokafka has not started iterating them yet (its
    ``_unpack_records`` generator reads ``_records`` on its first step)."""
    if type(result) is not FetchResult or result._partition_records is None:
        return  # a FetchError, or a result already handed out
    records = result._partition_records
    iterator = records._records_iterator
    if isinstance(records._records, _TolerantRecords) or iterator is None:
        return
    if inspect.getgeneratorstate(iterator) == inspect.GEN_CREATED:
        records._records = _TolerantRecords(records, report)


class _TolerantResults(collections.OrderedDict[Any, Any]):
    """``Fetcher._records``: each fetch result is made tolerant as the fetch task stores it."""

    def __init__(self, results: Any, report: Report) -> None:
        super().__init__()
        self._report = report
        for tp, result in results.items():
            self[tp] = result

    def __setitem__(self, tp: Any, result: Any) -> None:
        _make_tolerant(result, self._report)
        super().__setitem__(tp, result)


def tolerate(fetcher: Any, report: Report) -> None:
    """Make ``fetcher`` (a started aiokafka consumer's ``_fetcher``) skip and ``report`` the
    batches it cannot decode. Idempotent; call it on the fetcher's loop before it hands out
    records."""
    if fetcher is not None and not isinstance(fetcher._records, _TolerantResults):
        fetcher._records = _TolerantResults(fetcher._records, report)


def record(batch: UndecodableBatch) -> None:
    """Count and log a skipped batch (thread-safe: called on Faust's consumer thread)."""
    M.undecodable_batches.labels(batch.topic).inc()
    log.error("undecodable record batch %s skipped (%s)", batch.where, batch.detail)


def hand_over(
    app: Any, consumer: Any, loop: asyncio.AbstractEventLoop, batch: UndecodableBatch
) -> None:
    """From the consumer thread: on ``loop`` (the app's), tell Faust's ``consumer`` about the
    gap and run the app's DLQ hook for ``batch``."""
    future = asyncio.run_coroutine_threadsafe(_on_app_loop(app, consumer, batch), loop)
    future.add_done_callback(partial(_check_hand_over, batch))


async def _on_app_loop(app: Any, consumer: Any, batch: UndecodableBatch) -> None:
    """Faust notices a gap only between two records it reads, and not after offset 0 (its read
    offset 0 is falsy): records 0, 4 with 1-3 skipped left the commit at 1 for good. Told of
    the gap, it commits past the skipped batch as soon as a later record is acked."""
    tp = TP(batch.topic, batch.partition)
    await consumer._add_gap(tp, batch.first_offset, batch.last_offset)
    hook = getattr(app, APP_HOOK, None)
    if hook is None:
        log.warning("no DLQ hook: undecodable batch %s not dead-lettered", batch.where)
        return
    await hook(batch)


def _check_hand_over(batch: UndecodableBatch, done: concurrent.futures.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("DLQ record for undecodable batch %s failed: %r", batch.where, done.exception())


@dataclass(frozen=True)
class _BatchAsRecord:
    """What ``dlq.dead_letter`` reads of a record: the batch's place, no bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes = b""


async def dead_letter_batch(runtime: Runtime, batch: UndecodableBatch) -> None:
    """One DLQ record for the batch (``dlq.dead_letter``: retried through outages, never
    raises); headers ``omnistream.offset`` = first offset, ``omnistream.detail`` = the range."""
    stand_in = _BatchAsRecord(batch.topic, batch.partition, batch.first_offset)
    await dead_letter(runtime, stand_in, UNDECODABLE_BATCH, batch.detail)


def install(runtime: Runtime) -> None:
    """Leave the DLQ hook on the app, where the consumer thread (``transport.py``) finds it."""
    setattr(runtime.app, APP_HOOK, partial(dead_letter_batch, runtime))
