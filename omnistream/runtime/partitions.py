"""Partitions: where Kafka's default partitioner puts a key, and which ones this worker owns.

A customer's row lives in the table partition numbered like the ``omni.customer-events``
partition of its key, and only the worker that owns that partition writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.partitioner import murmur2

__all__ = ["OwnedPartitions", "partition_of"]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) puts ``key`` in."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class OwnedPartitions:
    """The ``omni.customer-events`` partitions this worker owns as active, kept per rebalance.

    A source record may be handled in place only where its customer's partition is owned:
    the row of that customer lives in the table partition of that number, and the owner of the
    customer-events partition is its only writer. Faust assigns topics of equal partition count
    together (same numbers to the same worker); this check also holds when they differ.
    """

    def __init__(self, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions = partitions
        self.owned: frozenset[int] = frozenset()

    def assigned(self, assigned: Iterable[Any]) -> None:
        """Faust's full new assignment (topic partitions, actives and standbys)."""
        self.owned = frozenset(tp.partition for tp in assigned if tp.topic == self.topic)

    def revoked(self) -> None:
        self.owned = frozenset()

    def handles_here(self, key: bytes, partition: int) -> bool:
        """True if a source record in ``partition`` with route key ``key`` is in its customer's
        partition, and this worker owns it."""
        return partition in self.owned and partition_of(key, self.partitions) == partition

    def install(self, app: Any) -> OwnedPartitions:
        @app.on_partitions_assigned.connect
        async def _assigned(app_: Any, assigned: Any, **_: Any) -> None:
            self.assigned(assigned)

        @app.on_partitions_revoked.connect
        async def _revoked(app_: Any, revoked: Any, **_: Any) -> None:
            self.revoked()

        return self
