"""Identity messages and erasure inside a customer batch (``runtime/batch.py``).

They read and write rows in the tables directly, so the batch must not hold a newer copy of the
row they touch; and the message itself must not be acked (its offset committable) before it
was carried out. A message at a key the batch does not hold leaves the batch open: a claim per
new identifier used to flush the batch, about one flush in three inputs of the demo traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omnistream.domain.identity import Claim, Release
from omnistream.domain.state import CustomerState
from omnistream.domain.vocabulary import FORGET_EVENT
from omnistream.runtime.batch import CustomerBatch
from omnistream.runtime.customers import on_event, on_record
from tests.unit.journey.helpers import ev
from tests.unit.runtime.test_outputs_before_state import FakeInput, fake_runtime, handled


def keyed(key: bytes, value: bytes) -> Any:
    return SimpleNamespace(topic="t.customer-events", partition=2, offset=42, key=key, value=value)


def acknowledge_all(runtime: Any) -> None:
    for topic in (runtime.topics.customer_events, *runtime.topics.sends.values()):
        for delivery in topic.deliveries:
            if not delivery.done():
                delivery.set_result(None)


def test_a_claim_at_a_key_the_batch_does_not_hold_leaves_the_batch_open(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)

    async def main() -> None:
        batch, first = await handled(runtime)  # c1's row is in the batch, its send unacked
        claim = FakeInput()
        batch.hold(claim)
        value = Claim(identifier="email:a@example.com", customer_key="c1").model_dump_json()
        await on_record(runtime, batch, keyed(b"email:a@example.com", value.encode()))
        assert runtime.aliases[b"email:a@example.com"] == b"c1"  # carried out ...
        assert len(batch) == 2 and not first.acked and not claim.acked  # ... without a flush
        assert b"c1" not in runtime.customers
        acknowledge_all(runtime)
        await batch.flush()
        assert first.acked and claim.acked and b"c1" in runtime.customers

    asyncio.run(main())


def test_a_message_at_a_key_the_batch_holds_flushes_the_inputs_before_it(tmp_path: Path) -> None:
    """A release with ``forget`` deletes the row at its key: the batch's newer copy is written
    first (not written back over the deletion later), and the release is acked only at the
    next flush, after the deletion."""
    runtime = fake_runtime(tmp_path)

    async def fail(exc: BaseException) -> None:
        raise AssertionError(f"unexpected flush error {exc!r}")

    async def main() -> None:
        batch = CustomerBatch(runtime.customers, max_records=100, max_age_s=60, on_error=fail)
        first = FakeInput()
        batch.hold(first)
        await on_event(
            runtime, batch, b"anon:a1", ev("page_viewed", key="anon:a1"), keyed(b"anon:a1", b"{}")
        )
        assert batch.holds(b"anon:a1")
        acknowledge_all(runtime)
        release = FakeInput()
        batch.hold(release)
        value = Release(identifier="anon:a1", customer_key="c1", forget=True).model_dump_json()
        await on_record(runtime, batch, keyed(b"anon:a1", value.encode()))
        assert first.acked  # the input before it was flushed ...
        assert not release.acked and len(batch) == 1  # ... the release waits for the next flush
        assert b"anon:a1" not in runtime.customers  # deleted, and stays deleted
        await batch.barrier()
        assert release.acked and b"anon:a1" not in runtime.customers

    asyncio.run(main())


def test_an_erasure_request_is_acked_only_after_it_was_carried_out(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    runtime.customers[b"c9"] = CustomerState(key="c9").to_bytes()
    runtime.channels = SimpleNamespace(settings=SimpleNamespace(redis_prefix="t:"))

    class NoKeys:
        async def scan_iter(self, **_: Any) -> Any:
            for key in ():
                yield key

        async def delete(self, key: Any) -> int:
            return 0

    runtime.redis = NoKeys()

    async def main() -> None:
        batch, first = await handled(runtime)
        acknowledge_all(runtime)
        erasure = FakeInput()
        batch.hold(erasure)
        forget = ev(FORGET_EVENT, key="c9")
        await on_event(runtime, batch, b"c9", forget, keyed(b"c9", forget.to_json()))
        assert first.acked and not erasure.acked
        assert b"c9" not in runtime.customers
        await batch.barrier()
        assert erasure.acked

    asyncio.run(main())
