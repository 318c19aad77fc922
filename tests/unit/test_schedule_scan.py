"""The worker's broadcast scan (``runtime/broadcasts.py``) on an in-memory stand-in runtime:
row verdicts, partition order, and a takeover mid-scan that continues from the cursor."""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState, JourneyRecord
from omnistream.journey.model import Catalog
from omnistream.runtime.broadcasts import (
    Broadcasts,
    Progress,
    judge,
    keys_by_partition,
    snapshot_keys,
)
from omnistream.runtime.partitions import partition_of
from tests.unit.journey.helpers import catalog_of

THU = date(2026, 12, 10)
SCAN_AT = datetime(2026, 12, 10, 3, 30, tzinfo=UTC)  # open (lead 1 h), before anyone is due
JOURNEY = """
id: thursday
name: Thursday
trigger:
  schedule: {weekly: thu, at: "18:00"}
  audience: regulars
steps:
  - id: hi
    type: send
    channels: [sms]
    content: {sms: {body: "Hi"}}
"""
SEGMENTS = "segments:\n  regulars:\n    when: profile.traits.regular == true\n"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "segments.yaml").write_text(SEGMENTS)
    return catalog_of(tmp_path, textwrap.dedent(JOURNEY))


def row(key: str, regular: bool = True, zone: str = "Europe/Kyiv") -> bytes:
    traits = {"regular": regular, "timezone": zone}
    return CustomerState(key=key, profile=Profile(traits=traits)).to_bytes()


def test_verdicts(catalog: Catalog) -> None:
    journey = catalog.journeys["thursday"]
    assert judge(catalog, journey, THU, row("a"), SCAN_AT) == "turn"
    assert judge(catalog, journey, THU, row("b", regular=False), SCAN_AT) == "audience"
    entered = CustomerState.from_bytes(row("c"))
    entered.history["thursday"] = JourneyRecord(
        entries=1, last_entered_at=datetime(2026, 12, 10, 16, 0, tzinfo=UTC)
    )
    assert judge(catalog, journey, THU, entered.to_bytes(), SCAN_AT) == "already"
    late = datetime(2026, 12, 10, 22, 1, tzinfo=UTC)  # Kyiv due 16:00 UTC + 6 h late
    assert judge(catalog, journey, THU, row("d"), late) == "missed"
    assert judge(catalog, journey, THU, b"{not json", SCAN_AT) == "unreadable"


def test_keys_by_partition_keeps_owned_ones_sorted() -> None:
    keys = [f"c-{n}".encode() for n in range(2000)]
    found = asyncio.run(keys_by_partition(keys, frozenset({1, 3}), 4))
    assert set(found) == {1, 3}
    for partition, owned in found.items():
        assert owned == sorted(k for k in keys if partition_of(k, 4) == partition)


class SlowKeysStore:
    """A ``rocksdb://`` stand-in: keys come one by one from a generator, as Faust's RocksDB
    store yields them (the memory store is a dict underneath)."""

    def __init__(self, keys: list[bytes], app: SimpleNamespace, rebalance_at: int | None) -> None:
        self._keys, self._app, self._rebalance_at = keys, app, rebalance_at

    def keys(self) -> Any:
        for n, key in enumerate(self._keys):
            if n == self._rebalance_at:
                self._app.rebalancing_count += 1  # a rebalance ran while the scan slept
            yield key


def test_a_rocksdb_key_snapshot_lets_the_event_loop_run() -> None:
    """1M keys through Faust's RocksDB store held the loop for seconds: /metrics timed out."""
    keys = [f"c-{n}".encode() for n in range(20_000)]
    app = SimpleNamespace(rebalancing=False, rebalancing_count=3)

    async def scan_with_a_neighbour() -> tuple[list[bytes] | None, int]:
        turns = 0
        done = False

        async def neighbour() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(neighbour())
        await asyncio.sleep(0)
        found = await snapshot_keys(SlowKeysStore(keys, app, None), app)
        done = True
        await task
        return found, turns

    found, turns = asyncio.run(scan_with_a_neighbour())
    assert found == keys
    assert turns >= 5  # the neighbour ran between slices, not only before and after

    interrupted = SlowKeysStore(keys, app, rebalance_at=5_000)
    assert asyncio.run(snapshot_keys(interrupted, app)) is None  # the next tick starts again
    app.rebalancing = True
    assert asyncio.run(snapshot_keys(SlowKeysStore(keys, app, None), app)) is None


def test_a_memory_store_key_snapshot_is_taken_at_once() -> None:
    """A dict (memory://) must not be iterated across awaits: a write would break it."""
    rows = {f"c-{n}".encode(): b"{}" for n in range(5_000)}
    app = SimpleNamespace(rebalancing=False, rebalancing_count=0)
    assert asyncio.run(snapshot_keys(SimpleNamespace(data=rows), app)) == list(rows)
    assert asyncio.run(snapshot_keys(rows, app)) == list(rows)


class FakeTopic:
    """Records produced turns; after ``revoke_after`` sends the worker loses its partitions."""

    def __init__(self, owned: SimpleNamespace, revoke_after: int | None = None) -> None:
        self.sent: list[tuple[bytes, str]] = []
        self.owned = owned
        self.revoke_after = revoke_after

    async def send(self, key: bytes, value: bytes) -> Any:
        self.sent.append((key, orjson.loads(value)["event_id"]))
        if self.revoke_after is not None and len(self.sent) >= self.revoke_after:
            self.owned.owned = frozenset()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def worker(
    catalog: Catalog,
    rows: dict[bytes, bytes],
    progress: dict[bytes, bytes],
    topic_revoke: int | None,
) -> tuple[Broadcasts, FakeTopic]:
    owned = SimpleNamespace(owned=frozenset({0}))
    topic = FakeTopic(owned, topic_revoke)
    settings = SimpleNamespace(
        broadcast_lead_s=3600.0,
        broadcast_chunk_rows=10,
        broadcast_chunk_pause_s=0.0,
        partitions=1,
        customer_events_topic="omni.customer-events",
    )
    runtime = SimpleNamespace(
        settings=settings,
        catalog=catalog,
        owned=owned,
        app=SimpleNamespace(rebalancing=False, in_recovery=False),
        customers=SimpleNamespace(data=rows),
        topics=SimpleNamespace(customer_events=topic),
    )
    return Broadcasts(runtime, progress), topic  # type: ignore[arg-type]


def test_a_takeover_mid_scan_continues_from_the_cursor(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omnistream.runtime.broadcasts.utcnow", lambda: SCAN_AT)
    rows = {f"c-{n:03}".encode(): row(f"c-{n:03}", regular=n % 3 != 0) for n in range(100)}
    progress: dict[bytes, bytes] = {}
    first, first_topic = worker(catalog, rows, progress, topic_revoke=25)
    assert asyncio.run(first.tick()) == 0  # revoked in its 4th chunk: nothing reported done
    cursor = Progress.from_bytes(next(iter(progress.values())))
    assert not cursor.done and cursor.cursor == "c-029"  # three chunks of 10 rows acknowledged
    second, second_topic = worker(catalog, rows, progress, topic_revoke=None)
    asyncio.run(second.tick())
    assert Progress.from_bytes(next(iter(progress.values()))).done
    produced = Counter(key for key, _ in first_topic.sent + second_topic.sent)
    expected = {k for k in rows if int(k[2:]) % 3 != 0}
    assert set(produced) == expected  # none skipped, nobody outside the audience
    repeated = {k for k, n in produced.items() if n > 1}
    assert len(repeated) <= 10  # at most the chunk in flight at the takeover ...
    ids = Counter(event_id for _, event_id in first_topic.sent + second_topic.sent)
    assert len(ids) == len(expected)  # ... and with the same event ids: dropped by the rows
    # a restart after the scan finished rescans nothing
    third, third_topic = worker(catalog, rows, progress, topic_revoke=None)
    assert asyncio.run(third.tick()) == 0 and third_topic.sent == []
    assert third.work(SCAN_AT + timedelta(days=2)) == []  # the occurrence has closed
