"""The contract of DedupStore, CapStore and RateLimiter (see omnistream.ports)."""

from __future__ import annotations

import asyncio

from omnistream.ports import CapCounter
from tests.contract.conftest import Stores

DAY_MS = 86_400_000
T = 1_770_000_000_000  # a fixed "now" in ms


def windows(stores: Stores, *limits: int) -> list[CapCounter]:
    return [
        CapCounter(f"{stores.prefix}cap:{{c}}:w{i}", limit, DAY_MS, f"cap_{i}")
        for i, limit in enumerate(limits)
    ]


async def test_claim_then_others_see_it_in_flight(stores: Stores) -> None:
    key = f"{stores.prefix}send:a"
    assert (await stores.dedup.claim(key, "w1", 10_000)).status == "claimed"
    other = await stores.dedup.claim(key, "w2", 10_000)
    assert other.status == "in_flight"
    assert other.record == b"w1"
    same = await stores.dedup.claim(key, "w1", 10_000)  # a retry whose reply was lost
    assert same.status == "in_flight" and same.record == b"w1"


async def test_complete_is_replayed(stores: Stores) -> None:
    key = f"{stores.prefix}send:b"
    await stores.dedup.claim(key, "w1", 10_000)
    await stores.dedup.complete(key, b'{"o":[]}', 60_000)
    claim = await stores.dedup.claim(key, "w2", 10_000)
    assert claim.status == "done"
    assert claim.record == b'{"o":[]}'


async def test_release_only_by_the_owner(stores: Stores) -> None:
    key = f"{stores.prefix}send:c"
    await stores.dedup.claim(key, "w1", 10_000)
    await stores.dedup.release(key, "w2")
    assert (await stores.dedup.claim(key, "w3", 10_000)).status == "in_flight"
    await stores.dedup.release(key, "w1")
    assert (await stores.dedup.claim(key, "w3", 10_000)).status == "claimed"


async def test_in_flight_marker_lapses(stores: Stores) -> None:
    key = f"{stores.prefix}send:d"
    await stores.dedup.claim(key, "dead-worker", 100)
    await asyncio.sleep(0.3)
    assert (await stores.dedup.claim(key, "w2", 10_000)).status == "claimed"


async def test_owner_leases_lapse_and_can_be_renewed(stores: Stores) -> None:
    lease = f"{stores.prefix}owner:w1"
    assert not await stores.dedup.leased(lease)
    await stores.dedup.lease(lease, 200)
    assert await stores.dedup.leased(lease)
    await stores.dedup.lease(lease, 10_000)  # renewed before it lapsed
    await asyncio.sleep(0.3)
    assert await stores.dedup.leased(lease)
    await stores.dedup.lease(f"{stores.prefix}owner:w2", 100)
    await asyncio.sleep(0.3)
    assert not await stores.dedup.leased(f"{stores.prefix}owner:w2")


async def test_take_over_only_the_marker_that_was_seen(stores: Stores) -> None:
    key = f"{stores.prefix}send:t"
    await stores.dedup.claim(key, "dead/1", 60_000)
    held = (await stores.dedup.claim(key, "w2/1", 10_000)).record
    assert held == b"dead/1"
    assert await stores.dedup.take_over(key, held, "w2/1", 10_000)
    assert not await stores.dedup.take_over(key, held, "w3/1", 10_000)  # no longer dead's
    again = await stores.dedup.claim(key, "w3/1", 10_000)
    assert again.status == "in_flight" and again.record == b"w2/1"
    await stores.dedup.complete(key, b"{}", 60_000)
    assert not await stores.dedup.take_over(key, b"w2/1", "w3/1", 10_000)  # done stays done
    assert (await stores.dedup.claim(key, "w3/1", 10_000)).status == "done"


async def test_caps_count_every_window_and_stop_at_the_first_full_one(stores: Stores) -> None:
    counters = windows(stores, 3, 2)
    results = []
    for n in range(3):
        claim = await stores.caps.claim_within_caps(
            f"{stores.prefix}send:{n}", "w", 10_000, f"s{n}", counters, T + n
        )
        results.append((claim.status, claim.counter))
    assert results == [("claimed", None), ("claimed", None), ("capped", 1)]
    # A capped claim writes nothing: not the dedup key, not the first window.
    assert (await stores.dedup.claim(f"{stores.prefix}send:2", "w", 10_000)).status == "claimed"
    fits_first_only = windows(stores, 3)
    fourth = await stores.caps.claim_within_caps(
        f"{stores.prefix}send:3", "w", 10_000, "s3", fits_first_only, T + 3
    )
    assert fourth.status == "claimed"  # window 0 holds s0, s1 only


async def test_caps_do_not_count_a_held_send(stores: Stores) -> None:
    counters = windows(stores, 1)
    key = f"{stores.prefix}send:x"
    await stores.dedup.claim(key, "w1", 10_000)
    held = await stores.caps.claim_within_caps(key, "w2", 10_000, "sx", counters, T)
    assert held.status == "in_flight"
    other = await stores.caps.claim_within_caps(
        f"{stores.prefix}send:y", "w", 10_000, "sy", counters, T
    )
    assert other.status == "claimed"


async def test_same_member_counts_once(stores: Stores) -> None:
    counters = windows(stores, 1)
    first = await stores.caps.claim_within_caps(
        f"{stores.prefix}send:p0", "w", 10_000, "same-send", counters, T
    )
    # The same send on its next chain position (a new dedup key) still fits the window.
    second = await stores.caps.claim_within_caps(
        f"{stores.prefix}send:p1", "w", 10_000, "same-send", counters, T + 5
    )
    assert (first.status, second.status) == ("claimed", "claimed")


async def test_windows_slide_and_refunds_free_slots(stores: Stores) -> None:
    counters = windows(stores, 1)
    p = stores.prefix
    assert (
        await stores.caps.claim_within_caps(f"{p}k1", "w", 10_000, "a", counters, T)
    ).status == "claimed"
    almost = await stores.caps.claim_within_caps(
        f"{p}k2", "w", 10_000, "b", counters, T + DAY_MS - 1
    )
    assert almost.status == "capped"
    later = await stores.caps.claim_within_caps(f"{p}k3", "w", 10_000, "c", counters, T + DAY_MS)
    assert later.status == "claimed"
    await stores.caps.refund("c", counters)
    again = await stores.caps.claim_within_caps(f"{p}k4", "w", 10_000, "d", counters, T + DAY_MS)
    assert again.status == "claimed"


async def test_token_bucket_allows_a_burst_then_asks_to_wait(stores: Stores) -> None:
    key = f"{stores.prefix}rate:p"
    waits = [await stores.limiter.acquire(key, 10.0, 3, T) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == 0.1
    assert await stores.limiter.acquire(key, 10.0, 3, T + 50) == 0.05
    assert await stores.limiter.acquire(key, 10.0, 3, T + 100) == 0.0  # refilled one token
    assert await stores.limiter.acquire(key, 10.0, 3, T + 100) > 0
