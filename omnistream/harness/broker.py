"""Topics in memory: per-partition lists, keyed partitioning as the worker's producer does it.

A key goes to ``partition_of(key, partitions)`` (Kafka's murmur2, the function the worker uses to
find a row's partition), so the harness sees the same co-partitioning as a real deployment: a
customer's inputs, its row and its timers share one partition number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from omnistream.runtime.partitions import partition_of

__all__ = ["MemoryBroker", "MemoryRecord", "MemoryTopic"]


@dataclass
class MemoryRecord:
    """A stored record; ``acked`` says the consumer handled it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    seq: int = 0
    """Position in the broker's global production order (the harness is single-threaded)."""
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    acked: bool = False

    def ack(self) -> None:
        self.acked = True


@dataclass
class _Topic:
    partitions: list[list[MemoryRecord]]
    positions: list[int] = field(default_factory=list)
    unkeyed: int = 0


class MemoryBroker:
    """Topics created on first use with ``partitions`` partitions; one consumer position each."""

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.partitions = partitions
        self._topics: dict[str, _Topic] = {}
        self._produced = 0

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            parts: list[list[MemoryRecord]] = [[] for _ in range(self.partitions)]
            topic = self._topics[name] = _Topic(parts, [0] * self.partitions)
        return topic

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> MemoryRecord:
        """Append to the key's partition (round robin without a key) and acknowledge at once."""
        stored = self._topic(topic)
        if key is None:
            number = stored.unkeyed % self.partitions
            stored.unkeyed += 1
        else:
            number = partition_of(key, self.partitions)
        log = stored.partitions[number]
        self._produced += 1
        record = MemoryRecord(topic, number, len(log), key, value, self._produced, list(headers))
        log.append(record)
        return record

    def records(self, topic: str) -> list[MemoryRecord]:
        """Every record of ``topic``, partition by partition, in offset order."""
        return [r for part in self._topic(topic).partitions for r in part]

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record of ``topic[partition]`` gets (Kafka's high watermark)."""
        return len(self._topic(topic).partitions[partition])

    def position(self, topic: str, partition: int) -> int:
        """The offset the consumer of ``topic[partition]`` reads next."""
        return self._topic(topic).positions[partition]

    def unread(self, topic: str) -> list[MemoryRecord]:
        """The next unread record of each partition of ``topic`` (what a consumer reads next)."""
        stored = self._topic(topic)
        return [
            log[stored.positions[number]]
            for number, log in enumerate(stored.partitions)
            if stored.positions[number] < len(log)
        ]

    def take(self, record: MemoryRecord) -> None:
        """Move the consumer past ``record``, which must be the next unread of its partition."""
        stored = self._topic(record.topic)
        if stored.positions[record.partition] != record.offset:
            raise ValueError(f"{record.topic}[{record.partition}]@{record.offset} is not next")
        stored.positions[record.partition] += 1

    def poll(self, topic: str) -> Iterator[MemoryRecord]:
        """Unread records of ``topic``, lowest partition first, until every partition is drained.

        Records produced while iterating are read too (handling one may produce the next), which
        is what a worker consuming its own output topic sees.
        """
        stored = self._topic(topic)
        while True:
            for number, log in enumerate(stored.partitions):
                if stored.positions[number] < len(log):
                    stored.positions[number] += 1
                    yield log[stored.positions[number] - 1]
                    break
            else:
                return


@dataclass(frozen=True)
class MemoryTopic:
    """One topic as the runtime produces to it (Faust's ``Topic.send``): the record is stored at
    once, so the delivery it returns is already done."""

    broker: MemoryBroker
    name: str

    async def send(
        self,
        *,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> asyncio.Future[MemoryRecord]:
        delivery: asyncio.Future[MemoryRecord] = asyncio.get_running_loop().create_future()
        delivery.set_result(self.broker.send(self.name, key, value, headers))
        return delivery
