"""Journey events are outputs like send commands: produced at once, keyed by customer, and
acknowledged before the row that records their input is written."""

from __future__ import annotations

import asyncio
from pathlib import Path

from omnistream.domain.journey_events import JourneyEvent
from omnistream.domain.state import CustomerState
from tests.unit.runtime.test_outputs_before_state import FakeTopic, fake_runtime, handled, settle


def test_the_row_waits_for_the_journey_events_too(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path)
    stream = runtime.topics.journey_events = FakeTopic()
    email: FakeTopic = runtime.topics.sends["email"]

    async def main() -> None:
        batch, source = await handled(runtime)
        records = [JourneyEvent.model_validate_json(r["value"]) for r in stream.sent]
        assert [r.kind for r in records] == ["entered", "send", "step", "exited"]
        assert {r["key"] for r in stream.sent} == {b"c1"}
        assert records[1].send_id is not None
        email.deliveries[0].set_result(None)
        flushing = asyncio.create_task(batch.flush())
        await settle()
        assert b"c1" not in runtime.customers and not source.acked  # journey events pending
        for delivery in stream.deliveries:
            delivery.set_result(None)
        await flushing
        assert CustomerState.from_bytes(runtime.customers[b"c1"]).recent_event_ids
        assert source.acked

    asyncio.run(main())


def test_no_stream_no_records(tmp_path: Path) -> None:
    """OMNISTREAM_JOURNEY_EVENTS=false: the topic is None and nothing else changes."""
    runtime = fake_runtime(tmp_path)

    async def main() -> None:
        batch, _ = await handled(runtime)
        runtime.topics.sends["email"].deliveries[0].set_result(None)
        await batch.flush()
        assert b"c1" in runtime.customers

    asyncio.run(main())
