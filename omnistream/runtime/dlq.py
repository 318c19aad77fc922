"""Dead-letter records: the rejected bytes, unchanged, with the reason in Kafka headers; and
``guarded``, which tells bad data (dead-letter it) from an outage (wait and retry in place).

Keeping the value byte-for-byte lets an operator fix the producer and replay the record; the
headers say why it was rejected and where it came from. A record too big to copy whole (the
source topic let in a record near the producer's ``max_request_size``, and omnistream's headers
push the copy over it) goes to the DLQ truncated, with its original size and the sha256 of the
full value (``dlq_record``): aiokafka refuses an oversized record before sending it, and a
refused DLQ send used to crash the agent and lose the record.

A DLQ send never raises: a transient refusal (Kafka unreachable) is retried with backoff, a
permanent one is logged with the record's topic/partition/offset and counted in
``omnistream_dlq_send_failures_total`` (there is nowhere else to put the record). Its delivery
is awaited by the producer's flush before any offset commit; a delivery that fails after
aiokafka's own retries is logged and counted the same way.

``guarded`` runs one record's processing. Faust acks the record an agent was processing when
the agent raises (the ``finally`` around its stream's ``yield``), so an unguarded error loses the
record and kills the agent. Guarded, an outage (``is_transient``) is retried in place with capped
exponential backoff (the agent does not move past the record: nothing is lost and per-customer
order holds), and any other error dead-letters the record and the agent goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from aiokafka.errors import KafkaError, KafkaTimeoutError

from omnistream.channels.retry import RedisUnavailable
from omnistream.clock import utcnow
from omnistream.observability.metrics import M
from omnistream.runtime.delivery import Pending
from omnistream.runtime.faust_types import Message
from omnistream.runtime.topics_declared import declare_at_first_assignment
from omnistream.storage.redis_base import REDIS_DOWN

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "DEFAULT_BACKOFF",
    "INTERNAL_ERROR",
    "Backoff",
    "DeadLetter",
    "DlqRecord",
    "Sleep",
    "Transient",
    "dead_letter",
    "dlq_record",
    "guarded",
    "install",
    "is_transient",
]

INTERNAL_ERROR = "internal_error"
"""DLQ reason for a record whose processing raised something other than an outage: a bug."""

FAUST_MAX_REQUEST_SIZE: Final = 1_000_000
"""Faust's default ``producer_max_request_size``, for a runtime without a Faust app (tests)."""

RECORD_OVERHEAD: Final = 200
"""Bytes a record batch of one record adds to key, value and headers, generously: aiokafka's
estimate is a 61-byte batch header plus at most 5 bytes per length/delta varint; each header
adds two more varints (counted per header in ``_size``)."""

log = logging.getLogger(__name__)

_MAX_DETAIL = 1000

Sleep = Callable[[float], Awaitable[None]]


class Transient(Exception):  # a signal (as arq's ``Retry``), so not named ...Error
    """Raise (or chain with ``raise Transient(...) from exc``) to say "an outage, retry me"."""


_OUTAGES: Final[tuple[type[BaseException], ...]] = (
    Transient,
    *REDIS_DOWN,  # redis ConnectionError/TimeoutError, OSError (asyncio.TimeoutError is one)
    RedisUnavailable,  # the channel dispatcher's Redis wait gave up (a configured maximum)
    KafkaTimeoutError,  # no metadata / buffer full / delivery timed out: not flagged retriable
)


def is_transient(exc: BaseException) -> bool:
    """True for an outage (Redis or Kafka unreachable, a timeout, aiokafka's retriable errors),
    also when wrapped: Faust raises ``ProducerSendError from`` aiokafka's error."""
    current: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; this also bounds a cycle
        if current is None:
            return False
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, KafkaError) and current.retriable:
            return True
        current = current.__cause__
    return False


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter in [ceiling/2, ceiling]."""

    base_s: float = 0.1
    max_s: float = 10.0

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(retry, 30))
        return ceiling * (0.5 + rand() / 2)


DEFAULT_BACKOFF: Final = Backoff()


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    rejected_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("omnistream.reason", self.reason.encode()),
            ("omnistream.detail", self.detail[:_MAX_DETAIL].encode()),
            ("omnistream.topic", self.topic.encode()),
            ("omnistream.partition", str(self.partition).encode()),
            ("omnistream.offset", str(self.offset).encode()),
            ("omnistream.rejected_at", self.rejected_at.isoformat().encode()),
        ]

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes]) -> DeadLetter:
        items = dict(headers.items() if isinstance(headers, dict) else headers)

        def get(name: str) -> str:
            return items[f"omnistream.{name}"].decode()

        return cls(
            reason=get("reason"),
            detail=get("detail"),
            topic=get("topic"),
            partition=int(get("partition")),
            offset=int(get("offset")),
            rejected_at=datetime.fromisoformat(get("rejected_at")),
        )


@dataclass(frozen=True)
class DlqRecord:
    """What goes to the DLQ for one rejected record."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def truncated(self) -> bool:
        return any(name == "omnistream.truncated" for name, _ in self.headers)


def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound of what aiokafka's producer compares with ``max_request_size``."""
    framed = sum(len(name.encode()) + len(data) + 10 for name, data in headers)
    return RECORD_OVERHEAD + len(key or b"") + len(value) + framed


def _fingerprint(size_header: str, hash_header: str, data: bytes) -> list[tuple[str, bytes]]:
    return [
        (size_header, str(len(data)).encode()),
        (hash_header, hashlib.sha256(data).hexdigest().encode()),
    ]


def dlq_record(
    key: bytes | None, value: bytes, letter: DeadLetter, max_request_size: int
) -> DlqRecord:
    """The DLQ copy of a record: byte for byte if it fits in ``max_request_size`` with the
    headers, else truncated, marked ``omnistream.truncated=1`` with the value's
    ``omnistream.original_size`` and ``omnistream.sha256`` (of the full value), so an operator
    can tell it from the original and find that one by hash. A key too big to leave room for the
    headers is cut too (``omnistream.original_key_size``, ``omnistream.key_sha256``)."""
    headers = letter.headers()
    if _size(key, value, headers) <= max_request_size:
        return DlqRecord(key, value, headers)
    headers.append(("omnistream.truncated", b"1"))
    headers += _fingerprint("omnistream.original_size", "omnistream.sha256", value)
    if key is not None and _size(key, b"", headers) > max_request_size // 2:
        headers += _fingerprint("omnistream.original_key_size", "omnistream.key_sha256", key)
        key = key[: max(0, max_request_size // 2 - _size(None, b"", headers))]
    room = max(0, max_request_size - _size(key, b"", headers))
    return DlqRecord(key, value[:room], headers)


def _max_request_size(runtime: Runtime) -> int:
    app = getattr(runtime, "app", None)
    conf = getattr(app, "conf", None)
    return int(getattr(conf, "producer_max_request_size", FAUST_MAX_REQUEST_SIZE))


async def dead_letter(
    runtime: Runtime,
    message: Message,
    reason: str,
    detail: str,
    *,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Sleep = asyncio.sleep,
) -> Pending:
    """Send one record's raw value to the DLQ with the reason; count it. Never raises (except
    cancellation): see the module docstring. Returns the DLQ record's delivery (empty if the
    send was refused), for a caller that wants to wait for it with its other outputs."""
    letter = DeadLetter(
        reason=reason,
        detail=detail,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        rejected_at=utcnow(),
    )
    M.events_rejected.labels(message.topic, reason).inc()
    log.warning("rejected record %s: %s", letter.where, reason)
    record = dlq_record(message.key, message.value or b"", letter, _max_request_size(runtime))
    if record.truncated:
        M.dlq_truncated.inc()
        log.warning("record %s is too big for the DLQ: truncated copy sent", letter.where)
    return await _send(runtime, record, letter, backoff, sleep)


async def _send(
    runtime: Runtime, record: DlqRecord, letter: DeadLetter, backoff: Backoff, sleep: Sleep
) -> Pending:
    """Produce ``record``, retrying transient refusals in place."""
    retry = 0
    while True:
        try:
            delivery = await runtime.topics.dlq.send(
                key=record.key, value=record.value, headers=record.headers
            )
        except Exception as exc:
            if not is_transient(exc):
                _lost("send", letter, exc)
                return []
            await _pause("dlq", letter.where, exc, backoff.delay(retry), sleep)
            retry += 1
            continue
        if isinstance(delivery, asyncio.Future):
            delivery.add_done_callback(lambda done: _check_delivery(done, letter))
        return [delivery]


def _check_delivery(done: asyncio.Future[Any], letter: DeadLetter) -> None:
    if not done.cancelled() and done.exception() is not None:
        _lost("delivery", letter, done.exception())


def _lost(phase: str, letter: DeadLetter, exc: BaseException | None) -> None:
    M.dlq_send_failures.labels(phase).inc()
    log.error(
        "DLQ %s failed for record %s (reason %s): %s: %s; the record is not in the DLQ",
        phase,
        letter.where,
        letter.reason,
        type(exc).__name__,
        exc,
    )


async def _pause(stage: str, where: str, exc: BaseException, delay: float, sleep: Sleep) -> None:
    M.transient_retries.labels(stage).inc()
    log.warning(
        "%s: outage on %s (%s: %s); retrying the same record in %.2fs",
        stage,
        where,
        type(exc).__name__,
        exc,
        delay,
    )
    await sleep(delay)


async def guarded(
    runtime: Runtime,
    stage: str,
    message: Message,
    handle: Callable[[Message], Awaitable[None]],
    *,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """``await handle(message)``; retry it from the top while it fails with an outage; on any
    other error, log it and dead-letter the record instead.

    Retrying from the top is safe although a failed attempt may already have produced outputs:
    they are idempotent by design (send commands carry deterministic send ids that the channel
    agent claims in Redis, events carry ids deduplicated in the row, identity messages are
    idempotent), and the customer row is written only after its outputs were acknowledged
    (``runtime/delivery.py``, ``runtime/batch.py``), so a repeat produces the same records and
    changes the row once. The wait is an ``asyncio.sleep``: stopping the worker cancels it.
    """
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    retry = 0
    while True:
        try:
            await handle(message)
            return
        except Exception as exc:  # not CancelledError: stopping the worker must still stop it
            if is_transient(exc):
                await _pause(stage, where, exc, backoff.delay(retry), sleep)
                retry += 1
                continue
            log.exception("%s failed on %s", stage, where)
            detail = f"{stage}: {type(exc).__name__}: {exc}"
            await dead_letter(
                runtime, message, INTERNAL_ERROR, detail, backoff=backoff, sleep=sleep
            )
            return


def install(runtime: Runtime) -> None:
    """Create the DLQ topic when the worker first gets partitions, before it reports ready
    (``runtime/topics_declared.py``): SREs and tools expect ``omni.dlq`` to exist before
    anything was dead-lettered."""
    declare_at_first_assignment(runtime, runtime.topics.dlq)
