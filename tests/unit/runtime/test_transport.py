"""Our Faust transport driver: broker URLs and the seek back to committed offsets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.errors import IllegalStateError
from aiokafka.structs import TopicPartition as TP

from omnistream.runtime.transport import SCHEME, driver_url, seek_assigned_to_committed


def test_driver_url_rewrites_every_broker() -> None:
    assert driver_url("kafka://a:9092;kafka://b:9093") == f"{SCHEME}://a:9092;{SCHEME}://b:9093"
    assert driver_url("b:9092") == f"{SCHEME}://b:9092"


class FakeConsumer:
    """aiokafka's consumer as the seek sees it; ``revoked`` partitions vanish while their
    committed offset is fetched (a rebalance in between)."""

    def __init__(self, committed: dict[TP, int | None], revoked: set[TP]) -> None:
        self._committed = committed
        self._revoked = revoked
        self.assigned = set(committed)
        self.positions: dict[TP, int | str] = {}

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def committed(self, tp: TP) -> int | None:
        self.assigned -= self._revoked & {tp}
        return self._committed[tp]

    def seek(self, tp: TP, offset: int) -> None:
        if tp not in self.assigned:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.positions[tp] = offset

    async def seek_to_beginning(self, tp: TP) -> None:
        self.positions[tp] = "beginning"


def test_the_seek_back_covers_every_partition_still_assigned() -> None:
    """aiokafka stops at the first revoked partition and skips partitions with nothing
    committed: both left records Faust had dropped unread (a lost send in the churn test)."""
    revoked, after, fresh = TP("t.events", 0), TP("t.events", 1), TP("t.events", 2)
    changelog = TP("app-customers-changelog", 0)
    consumer = FakeConsumer({revoked: 7, after: 12, fresh: None, changelog: None}, {revoked})
    app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={changelog.topic}))
    committed = asyncio.run(seek_assigned_to_committed(consumer, app))
    assert consumer.positions == {after: 12, fresh: "beginning"}  # changelog: recovery's job
    assert committed == {revoked: 7, after: 12, fresh: None, changelog: None}
