"""The dispatcher's policy, on the in-memory stores (the Redis ones pass the same contract)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from omnistream.channels.dispatcher import Dispatcher
from omnistream.channels.retry import CircuitBreaker
from omnistream.channels.settings import ChannelSettings, RateLimit
from omnistream.domain.events import Event
from omnistream.observability.metrics import REGISTRY
from omnistream.policies.caps import CapsPolicy
from omnistream.ports import Provider, ProviderError, ProviderResult
from omnistream.providers.inbox import InboxProvider
from omnistream.providers.log import LogProvider
from omnistream.storage.memory import MemoryCapStore, MemoryDedupStore
from tests.unit.channels.factory import (
    T0,
    FakeTime,
    ScriptedProvider,
    make_send,
    memory_dispatcher_and_dedup,
    permanent,
    transient,
    types,
)


def build(
    time: FakeTime,
    providers: dict[str, Provider],
    caps: CapsPolicy | None = None,
    **settings: object,
) -> tuple[Dispatcher, MemoryDedupStore]:
    dispatcher, dedup = memory_dispatcher_and_dedup(time, providers, caps, **settings)
    return dispatcher, dedup


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_sent_outcome_carries_the_documented_properties(tmp_path: Path) -> None:
    time = FakeTime()
    log_path = tmp_path / "sent.jsonl"
    dispatcher, _ = build(time, {"email": LogProvider(str(log_path))})
    result = await dispatcher.handle(make_send(), T0)
    await dispatcher.aclose()
    assert result.forward is None
    [event] = result.outcomes
    assert isinstance(event, Event)
    assert event.type == "message_sent"
    assert event.event_id == "send-1.message_sent.0"
    assert event.source == "omnistream"
    assert event.customer_id == "cust-1"
    assert event.properties == {
        "send_id": "send-1",
        "journey_id": "welcome",
        "instance_id": "inst-1",
        "step_id": "hello",
        "channel": "email",
        "provider": "log",
        "category": "marketing",
        "provider_message_id": "log-send-1",
    }
    line = orjson.loads(log_path.read_bytes())
    assert (line["send_id"], line["to"], line["body"]) == ("send-1", "addr-email", "Hello there")


async def test_log_provider_can_redact_address_and_content(tmp_path: Path) -> None:
    log_path = tmp_path / "sent.jsonl"
    dispatcher, _ = build(FakeTime(), {"email": LogProvider(str(log_path), redact=True)})
    await dispatcher.handle(make_send(), T0)
    await dispatcher.aclose()
    line = orjson.loads(log_path.read_bytes())
    assert line["body_chars"] == len("Hello there")
    assert "addr-email" not in log_path.read_text()
    assert "Hello there" not in log_path.read_text()


async def test_anonymous_customer_keys_map_back_to_anonymous_id() -> None:
    dispatcher, _ = build(FakeTime(), {"email": ScriptedProvider()})
    result = await dispatcher.handle(make_send(customer_key="anon:dev-9"), T0)
    assert result.outcomes[0].anonymous_id == "dev-9"
    assert result.outcomes[0].customer_id is None


async def test_redelivered_command_is_answered_not_sent_again() -> None:
    provider = ScriptedProvider()
    dispatcher, _ = build(FakeTime(), {"email": provider})
    before = metric("omnistream_send_duplicates_total", channel="email")
    first = await dispatcher.handle(make_send(), T0)
    again = await dispatcher.handle(make_send(), T0 + timedelta(minutes=5))
    assert len(provider.calls) == 1
    assert again.outcomes == first.outcomes  # same ids and timestamps: downstream dedups them
    assert metric("omnistream_send_duplicates_total", channel="email") == before + 1


async def test_redelivered_fallback_forwards_again() -> None:
    email = ScriptedProvider("email-p", [permanent(400)])
    dispatcher, _ = build(FakeTime(), {"email": email, "sms": ScriptedProvider()})
    first = await dispatcher.handle(make_send(), T0)
    again = await dispatcher.handle(make_send(), T0)
    assert types(first) == ["message_failed", "message_fallback"]
    assert again.forward == first.forward == make_send().fallen_back()
    assert len(email.calls) == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"consents": {"email": False, "sms": True}}, "no_consent"),
        ({"consents": {"sms": True}}, "no_consent"),
        ({"addresses": {"sms": "+1555"}}, "no_address"),
        ({"messages": {}}, "no_message"),
    ],
)
async def test_channel_that_cannot_be_used_falls_back(
    overrides: dict[str, object], reason: str
) -> None:
    provider = ScriptedProvider()
    dispatcher, _ = build(FakeTime(), {"email": provider, "sms": provider})
    result = await dispatcher.handle(make_send(**overrides), T0)
    assert provider.calls == []
    [event] = result.outcomes
    assert event.type == "message_fallback"
    assert event.properties["reason"] == reason
    assert event.properties["to_channel"] == "sms"
    assert result.forward is not None and result.forward.channel == "sms"


async def test_end_of_chain_is_suppressed_with_the_reason() -> None:
    dispatcher, _ = build(FakeTime(), {"sms": ScriptedProvider()})
    result = await dispatcher.handle(make_send(chain=("sms",), consents={}), T0)
    assert types(result) == ["message_suppressed"]
    assert result.outcomes[0].properties["reason"] == "no_consent"
    assert result.forward is None


async def test_transactional_needs_no_opt_in_but_respects_opt_out() -> None:
    provider = ScriptedProvider()
    dispatcher, _ = build(FakeTime(), {"email": provider, "sms": provider})
    sent = await dispatcher.handle(make_send(category="transactional", consents={}), T0)
    assert types(sent) == ["message_sent"]
    opted_out = make_send("send-2", category="transactional", consents={"email": False})
    result = await dispatcher.handle(opted_out, T0)
    assert result.outcomes[0].properties["reason"] == "no_consent"


async def test_marketing_caps_fall_back_and_transactional_bypasses() -> None:
    provider = ScriptedProvider()
    caps = CapsPolicy(per_channel=["1/day"], across_channels=["2/week"], per_journey=[])
    channels = {"email": provider, "sms": provider, "mobile_push": provider}
    dispatcher, _ = build(FakeTime(), dict(channels), caps)
    assert types(await dispatcher.handle(make_send("a"), T0)) == ["message_sent"]
    capped = await dispatcher.handle(make_send("b"), T0)
    assert capped.outcomes[0].properties["reason"] == "cap_channel"
    assert capped.forward is not None
    assert types(await dispatcher.handle(capped.forward, T0)) == ["message_sent"]  # sms: 2/week
    third = await dispatcher.handle(make_send("c", chain=("sms",)), T0)
    assert types(third) == ["message_suppressed"]
    assert third.outcomes[0].properties["reason"] == "cap_channel"
    fourth = await dispatcher.handle(make_send("d", chain=("mobile_push",)), T0)
    assert fourth.outcomes[0].properties["reason"] == "cap_global"
    tx = await dispatcher.handle(make_send("e", category="transactional"), T0)
    assert types(tx) == ["message_sent"]
    next_day = await dispatcher.handle(make_send("f"), T0 + timedelta(days=1, seconds=1))
    assert next_day.outcomes[0].properties["reason"] == "cap_global"  # 2 per sliding week


async def test_expired_command_is_suppressed_without_fallback() -> None:
    provider = ScriptedProvider()
    dispatcher, _ = build(FakeTime(), {"email": provider, "sms": provider})
    late = make_send(not_after=T0 - timedelta(seconds=1))
    result = await dispatcher.handle(late, T0)
    assert types(result) == ["message_suppressed"]
    assert result.outcomes[0].properties["reason"] == "expired"
    assert result.forward is None
    assert provider.calls == []


async def test_expiry_is_checked_again_after_waiting_for_a_rate_limit_token() -> None:
    time = FakeTime()
    provider = ScriptedProvider()
    dispatcher, _ = build(
        time,
        {"email": provider},
        rate_limits={"fake": RateLimit(rate=0.1, burst=1)},
    )
    await dispatcher.handle(make_send("first", category="transactional"), T0)
    tight = make_send("second", category="transactional", not_after=T0 + timedelta(seconds=1))
    result = await dispatcher.handle(tight, T0)
    # Waited 10 s for the token; the provider saw only the first send.
    assert time.slept and len(provider.calls) == 1
    assert result.outcomes[0].properties["reason"] == "expired"


async def test_transient_errors_are_retried_then_sent_once() -> None:
    time = FakeTime()
    provider = ScriptedProvider("fake", [transient(500), transient(503), ProviderResult("pm-9")])
    dispatcher, _ = build(time, {"email": provider})
    result = await dispatcher.handle(make_send(), T0)
    assert types(result) == ["message_sent"]
    assert result.outcomes[0].properties["provider_message_id"] == "pm-9"
    assert len(provider.calls) == 3
    assert time.slept == [0.125, 0.25]  # full jitter with rand=0.5: 0.5 * 0.25 * 2**n


async def test_retry_after_is_honoured() -> None:
    time = FakeTime()
    busy = ProviderError("http_429", transient=True, retry_after=7)
    provider = ScriptedProvider("fake", [busy, ProviderResult("ok")])
    dispatcher, _ = build(time, {"email": provider})
    assert types(await dispatcher.handle(make_send(), T0)) == ["message_sent"]
    assert time.slept == [7]


async def test_permanent_failure_falls_back_and_refunds_the_cap_slot() -> None:
    email = ScriptedProvider("email-p", [permanent(400), ProviderResult("ok")])
    sms = ScriptedProvider("sms-p")
    caps = CapsPolicy(per_channel=["1/day"], across_channels=["1/week"], per_journey=[])
    dispatcher, _ = build(FakeTime(), {"email": email, "sms": sms}, caps)
    result = await dispatcher.handle(make_send(), T0)
    assert types(result) == ["message_failed", "message_fallback"]
    assert result.outcomes[0].properties["reason"] == "http_400"
    assert len(email.calls) == 1  # permanent: no retry
    assert result.forward is not None
    # The global 1/week slot was given back, so the fallback channel can use it.
    assert types(await dispatcher.handle(result.forward, T0)) == ["message_sent"]


async def test_provider_down_reports_it_and_the_channel_keeps_serving() -> None:
    time = FakeTime()
    down = ScriptedProvider("down", [transient(503)])
    other = ScriptedProvider("up")
    dispatcher, _ = build(time, {"email": down, "sms": other})
    dispatcher._breakers["down"] = CircuitBreaker(threshold=2, cooldown_s=60, clock=time.monotonic)
    first = await dispatcher.handle(make_send("a", chain=("email",)), T0)
    assert types(first) == ["message_failed"]
    assert first.outcomes[0].properties["reason"] == "provider_unavailable"
    assert first.outcomes[0].properties["error"] == "http_503"
    assert len(down.calls) == 4  # retry_attempts
    await dispatcher.handle(make_send("b", chain=("email",), customer_key="c2"), T0)
    calls = len(down.calls)
    # The breaker is open: the next sends fail fast and fall back instead of stalling.
    fast = await dispatcher.handle(make_send("c", customer_key="c3"), T0)
    assert len(down.calls) == calls
    assert types(fast) == ["message_failed", "message_fallback"]
    assert types(await dispatcher.handle(fast.forward or make_send(), T0)) == ["message_sent"]


async def test_provider_bug_does_not_escape() -> None:
    class Broken(ScriptedProvider):
        async def send(self, outgoing: object) -> ProviderResult:  # type: ignore[override]
            raise KeyError("oops")

    dispatcher, _ = build(FakeTime(), {"email": Broken("broken"), "sms": ScriptedProvider()})
    result = await dispatcher.handle(make_send(), T0)
    assert types(result) == ["message_failed", "message_fallback"]
    assert result.outcomes[0].properties["reason"] == "provider_error"


async def test_unknown_channel_and_bad_position_end_in_outcomes() -> None:
    dispatcher, _ = build(FakeTime(), {})
    no_provider = await dispatcher.handle(make_send(chain=("viber",)), T0)
    assert no_provider.outcomes[0].properties["reason"] == "no_provider"
    bad = await dispatcher.handle(make_send(chain=("email",), position=3), T0)
    assert types(bad) == ["message_failed"]
    assert bad.outcomes[0].properties["reason"] == "invalid_position"


async def test_app_inbox_needs_no_address_and_carries_the_message() -> None:
    dispatcher, _ = build(FakeTime(), {"app_inbox": InboxProvider()})
    result = await dispatcher.handle(make_send(chain=("app_inbox",)), T0)
    [event] = result.outcomes
    assert event.type == "message_sent"
    assert event.properties["inbox"] == {"subject": "Hi", "body": "Hello there", "data": {}}


async def test_send_held_by_another_worker_is_put_back_then_sent_once_the_claim_lapses() -> None:
    time = FakeTime()
    provider = ScriptedProvider()
    dispatcher, dedup = build(time, {"email": provider}, in_flight_ttl_s=5)
    key = "omni:send:{cust-1}:send-1:0"
    assert (await dedup.claim(key, "other-worker", 5000)).status == "claimed"
    before = metric("omnistream_channel_sends_put_back_total", channel="email", reason="claim_held")
    send = make_send(category="transactional")
    # Held: polled for held_claim_wait_s (1 s), then handed back to be put behind the others.
    held = await dispatcher.handle(send, T0)
    assert held.retry == send and held.outcomes == [] and held.forward is None
    assert sum(time.slept) <= 1.0
    assert provider.calls == []
    assert (
        metric("omnistream_channel_sends_put_back_total", channel="email", reason="claim_held")
        == before + 1
    )
    # The other worker died: its marker lapses after 5 s and the put-back command sends.
    await time.sleep(5)
    result = await dispatcher.handle(send, T0)
    assert types(result) == ["message_sent"] and result.retry is None
    assert len(provider.calls) == 1


def owned_dispatcher(
    time: FakeTime, provider: Provider, owner: str
) -> tuple[Dispatcher, MemoryDedupStore]:
    """A dispatcher that names itself ``owner`` in its claims and keeps a lease (production)."""
    dedup = MemoryDedupStore(clock=time.monotonic)
    dispatcher = Dispatcher(
        providers={"email": provider},
        dedup=dedup,
        caps_store=MemoryCapStore(dedup),
        settings=ChannelSettings(owner_lease_s=10),
        sleep=time.sleep,
        clock=time.clock,
        owner=owner,
    )
    return dispatcher, dedup


async def test_a_dead_owners_claim_is_taken_over_at_once() -> None:
    """A worker killed during a send leaves its claim; the restarted one must not wait 120 s."""
    time = FakeTime()
    provider = ScriptedProvider()
    dispatcher, dedup = owned_dispatcher(time, provider, "w-new")
    key = "omni:send:{cust-1}:send-1:0"
    assert (await dedup.claim(key, "w-dead/1", 120_000)).status == "claimed"  # no lease: dead
    before = metric("omnistream_channel_claims_taken_over_total", channel="email")
    result = await dispatcher.handle(make_send(category="transactional"), T0)
    assert types(result) == ["message_sent"]
    assert sum(time.slept) == 0
    assert len(provider.calls) == 1
    assert metric("omnistream_channel_claims_taken_over_total", channel="email") == before + 1
    assert await dedup.leased("omni:owner:w-new")  # the new owner announced itself first


async def held_by_a_live_owner() -> tuple[
    FakeTime, ScriptedProvider, Dispatcher, MemoryDedupStore, str
]:
    """A dispatcher ("w-new") and send-1's claim, held by a live other worker ("w-alive")."""
    time = FakeTime()
    provider = ScriptedProvider()
    dispatcher, dedup = owned_dispatcher(time, provider, "w-new")
    key = "omni:send:{cust-1}:send-1:0"
    await dedup.lease("omni:owner:w-alive", 60_000)
    assert (await dedup.claim(key, "w-alive/1", 60_000)).status == "claimed"
    return time, provider, dispatcher, dedup, key


async def test_a_live_owners_claim_is_waited_for_briefly_then_put_back() -> None:
    """A live worker mid-send (after a rebalance) holds the claim: the channel must not queue
    behind it for up to in_flight_ttl_s, so the send is handed back after held_claim_wait_s."""
    time, provider, dispatcher, dedup, key = await held_by_a_live_owner()
    send = make_send(category="transactional")
    held = await dispatcher.handle(send, T0)
    assert held.retry == send and provider.calls == []
    assert 0 < sum(time.slept) <= 1.0
    await dedup.complete(key, b'{"o": [], "f": false}', 60_000)  # it finishes meanwhile
    result = await dispatcher.handle(send, T0)
    assert result.outcomes == [] and result.forward is None and result.retry is None
    assert provider.calls == []  # replayed, not sent again


async def test_a_claim_that_finishes_within_the_wait_is_replayed_without_putting_back() -> None:
    time, provider, dispatcher, dedup, key = await held_by_a_live_owner()

    async def finish_on_first_poll(seconds: float) -> None:
        await time.sleep(seconds)
        await dedup.complete(key, b'{"o": [], "f": false}', 60_000)

    dispatcher._sleep = finish_on_first_poll
    result = await dispatcher.handle(make_send(category="transactional"), T0)
    assert result.retry is None and provider.calls == []


async def test_a_rebalance_does_not_wait_out_a_retry_sequence() -> None:
    """A rebalance waits for the record a channel agent is handling: a send whose provider
    failed transiently releases its claim and is put back instead of sleeping for retries."""
    time = FakeTime()
    provider = ScriptedProvider(script=[transient(503)])
    dispatcher, _ = owned_dispatcher(time, provider, "w-1")
    dispatcher.should_yield = lambda: True  # the worker started rebalancing
    before = metric("omnistream_channel_sends_put_back_total", channel="email", reason="rebalance")
    send = make_send(category="transactional")
    result = await dispatcher.handle(send, T0)
    assert result.retry == send and result.outcomes == [] and result.forward is None
    assert len(provider.calls) == 1 and time.slept == []  # one attempt, no backoff
    after = metric("omnistream_channel_sends_put_back_total", channel="email", reason="rebalance")
    assert after == before + 1
    # The claim was released: the next owner (here: the same dispatcher after the
    # rebalance) claims it at once and sends.
    dispatcher.should_yield = lambda: False
    provider.script = [ProviderResult("pm-2")]
    again = await dispatcher.handle(send, T0)
    assert types(again) == ["message_sent"] and len(provider.calls) == 2
    assert time.slept == []
