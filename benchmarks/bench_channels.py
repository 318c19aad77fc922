"""Channel agent throughput: sends/s through one Dispatcher on the real embedded Redis.

Two configurations in one run: marketing sends with frequency caps and dedup on (one Lua round
trip claims the send and checks/counts every cap window, one more records it done), and the same
sends with caps off (dedup only). The provider is ``log`` writing to a temporary file, so the
figure is the channel agent's own cost, not a provider's. Redis round trips per send are counted
from ``omnistream_channel_redis_seconds`` (one observation per round trip). Sends are handled
one after another, as the channel agent does (concurrency=1). Medians of repeated runs.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from benchmarks.common import median
from omnistream import devstack
from omnistream.channels.dispatcher import Dispatcher
from omnistream.channels.settings import ChannelSettings
from omnistream.clock import monotonic
from omnistream.domain.commands import Message, Send
from omnistream.observability.metrics import REGISTRY
from omnistream.policies.caps import CapsPolicy
from omnistream.providers.log import LogProvider
from omnistream.storage.redis_caps import RedisCapStore
from omnistream.storage.redis_dedup import RedisDedupStore

__all__ = ["run"]

_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_GENEROUS = CapsPolicy(
    per_channel=["100/day"], across_channels=["100/week"], per_journey=["100/day"]
)


def _round_trips() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "omnistream_channel_redis_seconds":
            total += sum(s.value for s in metric.samples if s.name.endswith("_count"))
    return total


def _sends(count: int, customers: int) -> list[Send]:
    run_id = uuid.uuid4().hex[:8]
    message = {"email": Message(subject="Hello", body="Hello there, this is a benchmark.")}
    return [
        Send(
            send_id=f"{run_id}-{n}",
            customer_key=f"bench-{n % customers}",
            journey_id="bench",
            journey_version="v1",
            instance_id=f"i-{n}",
            step_id="s",
            chain=("email",),
            messages=message,
            addresses={"email": "someone@example.com"},
            consents={"email": True},
            caused_by="e",
            caused_at=_NOW,
        )
        for n in range(count)
    ]


async def _one(redis_url: str, caps: CapsPolicy, count: int, log_path: Path) -> tuple[float, float]:
    client = aioredis.Redis.from_url(redis_url)
    dispatcher = Dispatcher(
        providers={"email": LogProvider(str(log_path))},
        dedup=RedisDedupStore(client),
        caps_store=RedisCapStore(client),
        caps=caps,
        settings=ChannelSettings(redis_prefix=f"bench{uuid.uuid4().hex[:6]}:"),
    )
    sends = _sends(count, customers=max(1, count // 4))
    try:
        await dispatcher.handle(_sends(1, 1)[0], _NOW)  # connect, load the scripts
        trips = _round_trips()
        started = monotonic()
        for send in sends:
            await dispatcher.handle(send, _NOW)
        elapsed = monotonic() - started
        per_send = (_round_trips() - trips) / count
    finally:
        await dispatcher.aclose()
        await client.aclose()
    return count / elapsed, per_send


def run(quick: bool = False) -> dict[str, float]:
    """Figures: sends/s and Redis round trips per send, caps+dedup on and caps off."""
    count, repeats = (300, 1) if quick else (3000, 5)
    server = devstack.start_redis()
    results: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log_path = Path(tmp) / "sent.jsonl"
            for label, caps in (("caps_on", _GENEROUS), ("caps_off", CapsPolicy(enabled=False))):
                runs = [
                    asyncio.run(_one(server.url, caps, count, log_path)) for _ in range(repeats)
                ]
                results[f"channel_{label}_sends_per_s"] = median(r[0] for r in runs)
                results[f"channel_{label}_redis_round_trips_per_send"] = median(r[1] for r in runs)
    finally:
        server.stop()
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:<48} {value:>12,.2f}")
