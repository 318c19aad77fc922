"""Builders shared by the channel tests: sends, a fake clock, scripted providers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from omnistream.domain.commands import Message, Send
from omnistream.ports import Outgoing, ProviderError, ProviderResult, Receipt, ReceiptRejected

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALL = ("email", "sms", "mobile_push", "web_push", "viber", "telegram", "app_inbox")


def make_send(send_id: str = "send-1", **overrides: Any) -> Send:
    chain = overrides.pop("chain", ("email", "sms"))
    values: dict[str, Any] = {
        "send_id": send_id,
        "customer_key": "cust-1",
        "journey_id": "welcome",
        "journey_version": "v1",
        "instance_id": "inst-1",
        "step_id": "hello",
        "chain": chain,
        "messages": {ch: Message(subject="Hi", body="Hello there") for ch in ALL},
        "addresses": {ch: f"addr-{ch}" for ch in ALL if ch != "app_inbox"},
        "consents": dict.fromkeys(ALL, True),
        "caused_by": "evt-1",
        "caused_at": T0,
    }
    values.update(overrides)
    return Send.model_validate(values)


@dataclass
class FakeTime:
    """A clock that only moves when someone sleeps (so backoff costs no real time)."""

    now: datetime = T0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class ScriptedProvider:
    """Answers from a script: each item is a ProviderResult or a ProviderError to raise.

    When the script runs out, the last item repeats.
    """

    def __init__(self, name: str = "fake", script: list[Any] | None = None) -> None:
        self.name = name
        self.script = list(script or [ProviderResult("pm-1")])
        self.calls: list[Outgoing] = []

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        self.calls.append(outgoing)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, ProviderError):
            raise item
        assert isinstance(item, ProviderResult)
        return item

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        raise ReceiptRejected(404, "none")

    async def aclose(self) -> None:
        return None


def transient(status: int = 500) -> ProviderError:
    return ProviderError(f"http_{status}", transient=True)


def permanent(status: int = 400) -> ProviderError:
    return ProviderError(f"http_{status}", transient=False)


def types(dispatch: Any) -> list[str]:
    return [event.type for event in dispatch.outcomes]


def memory_dispatcher_and_dedup(
    time: FakeTime, providers: Mapping[str, Any], caps: Any = None, **settings: Any
) -> tuple[Any, Any]:
    """A Dispatcher on the in-memory stores with fake time and rand=0.5, and its dedup store.

    ``caps=None`` is the Dispatcher's own default policy.
    """
    from omnistream.channels.dispatcher import Dispatcher
    from omnistream.channels.settings import ChannelSettings
    from omnistream.storage.memory import MemoryCapStore, MemoryDedupStore, MemoryRateLimiter

    dedup = MemoryDedupStore(clock=time.monotonic)
    dispatcher = Dispatcher(
        providers=providers,
        dedup=dedup,
        caps_store=MemoryCapStore(dedup),
        caps=caps,
        rate_limiter=MemoryRateLimiter(),
        settings=ChannelSettings.model_validate(settings),
        sleep=time.sleep,
        clock=time.clock,
        rand=lambda: 0.5,
        breakers={},
    )
    return dispatcher, dedup


def memory_dispatcher(time: FakeTime, providers: Mapping[str, Any], **settings: Any) -> Any:
    """As ``memory_dispatcher_and_dedup``, with caps off unless given."""
    from omnistream.policies.caps import CapsPolicy

    caps = settings.pop("caps", CapsPolicy(enabled=False))
    return memory_dispatcher_and_dedup(time, providers, caps, **settings)[0]
