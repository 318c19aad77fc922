"""The channel agent's logic: one ``Send`` in, outcome events (and maybe a fallback send) out.

Policy, in order, for the send's current channel:

1. **Dedup**: the send id (per chain position) is claimed in Redis before any provider is called;
   a redelivered command answers from the stored record instead of sending again.
2. **Consent and address**: none for this channel -> fallback.
3. **Frequency caps** (marketing only): checked and counted together with the dedup claim in one
   atomic script; capped -> fallback, or ``message_suppressed`` at the end of the chain.
4. **Expiry**: past ``not_after`` -> ``message_suppressed`` (never sent late, no fallback).
5. **Provider** (rate limit, retries with backoff): permanent failure or exhausted retries ->
   ``message_failed`` and fallback to the next channel.

Checks 2 and 4 need no I/O and depend only on the command, so they run before the Redis round
trip: an expired command never takes a cap slot, and a redelivered command that failed them
fails them again with the same deterministic event ids. (When a send is both capped and expired
it is reported as expired.) Expiry is checked again right before the provider call, because
waiting for Redis or a rate-limit token takes time.

Claim semantics (why no command is lost or doubled): the claim is an *in-flight* marker with a
short expiry (``in_flight_ttl_s``); after the provider answers it becomes a *done* record with
the long dedup expiry, holding the outcomes. A redelivery of a done send replays its outcomes and
fallback (same ids; the customer agent and the next channel's dedup drop repeats), so a worker
that died after marking done but before producing loses nothing. A redelivery that finds another
worker's in-flight marker and the marker names an owner whose lease lapsed takes it over: a
worker killed *during* the provider call no longer holds its lease (``owner_lease_s``, renewed
every third of it), so the send is tried again at once (at-least-once, with the send id as the
provider's idempotency key where the provider has one). A marker whose owner still holds its
lease (a live worker mid-send after a rebalance, or a dead one whose lease has not lapsed yet)
is polled for ``held_claim_wait_s`` at most; then the dispatch answers ``retry``: the runtime
puts the same command back at the end of the channel's topic and goes on with the sends behind
it, so one held claim never stalls a channel, nor a rebalance waiting for the channel agent.
For the same reason a send that needs another provider attempt while the worker rebalances or
stops (``should_yield``) releases its claim and is put back rather than waiting out its retry
sequence (up to ``retry_attempts`` times ``provider_timeout_s`` plus backoffs and ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Final, TypeVar

import orjson

from omnistream.channels.outcomes import not_delivered, outcome_event
from omnistream.channels.owners import OwnerLease
from omnistream.channels.retry import (
    CircuitBreaker,
    RetryPolicy,
    Sleep,
    StopRetrying,
    call_with_retries,
    wait_for_redis,
)
from omnistream.channels.settings import ChannelSettings, RateLimit
from omnistream.clock import utcnow
from omnistream.domain.commands import Send
from omnistream.domain.events import Event
from omnistream.observability.metrics import M
from omnistream.policies.caps import CapsPolicy, counters_for
from omnistream.ports import (
    CapCounter,
    CapStore,
    Claim,
    DedupStore,
    Outgoing,
    Provider,
    ProviderError,
    ProviderResult,
    RateLimiter,
)
from omnistream.redis_keys import rate_bucket, send_claim

__all__ = ["ADDRESSLESS_CHANNELS", "Dispatch", "Dispatcher"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ADDRESSLESS_CHANNELS: Final = frozenset({"app_inbox"})
"""Channels delivered to the profile itself, so they need no address."""


class _Expired(Exception):
    """The send's ``not_after`` passed while it waited to be sent."""


@dataclass(frozen=True)
class Dispatch:
    """What the runtime produces: outcomes to the customer's partition, ``forward`` to the
    next channel's topic."""

    outcomes: list[Event]
    forward: Send | None
    retry: Send | None = None
    """Another worker holds the send's claim: put it back at the end of its topic."""


class Dispatcher:
    """Runs the policy for one send at a time; safe to share between channel agents."""

    def __init__(
        self,
        *,
        providers: Mapping[str, Provider],
        dedup: DedupStore,
        caps_store: CapStore,
        caps: CapsPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        settings: ChannelSettings | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
        breakers: Mapping[str, CircuitBreaker] | None = None,
        owner: str | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._dedup = dedup
        self._caps_store = caps_store
        self._caps = caps if caps is not None else CapsPolicy()
        self._limiter = rate_limiter
        self._settings = settings if settings is not None else ChannelSettings()
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        s = self._settings
        self._retry = RetryPolicy(
            s.retry_attempts, s.retry_base_s, s.retry_max_s, s.retry_after_max_s
        )
        self._breakers = dict(breakers or {})
        self.lease = OwnerLease(
            owner,
            dedup,
            prefix=s.redis_prefix,
            lease_s=s.owner_lease_s,
            clock=clock,
            redis=self._redis,
        )
        """This worker's name in its claims, its lease, and the check of other owners'."""
        self.should_yield: Callable[[], bool] = lambda: False
        """True while the worker rebalances or stops (set by the runtime): a send that needs
        another provider attempt is put back instead, with its claim released, because the
        rebalance waits for the record being handled."""

    # --- the policy -------------------------------------------------------------------------

    async def handle(self, send: Send, now: datetime) -> Dispatch:
        """Decide and carry out ``send`` on its current channel. Raises only when Redis stays
        unreachable past ``redis_max_wait_s`` (never by default)."""
        if not 0 <= send.position < len(send.chain):
            log.error("send %s has chain position %d out of range", send.send_id, send.position)
            return self._finish(send, now, "none", "failed", "invalid_position")
        channel = send.channel
        provider = self._providers.get(channel)
        provider_name = provider.name if provider is not None else "none"
        reason = self._precheck(send, now, provider)
        if reason is not None:
            return self._finish(send, now, provider_name, "suppressed", reason)
        assert provider is not None  # _precheck reports a missing provider

        prefix = self._settings.redis_prefix
        key = send_claim(prefix, send.customer_key, send.send_id, send.position)
        counters = counters_for(
            self._caps,
            prefix=self._settings.redis_prefix,
            customer_key=send.customer_key,
            channel=channel,
            journey_id=send.journey_id,
            category=send.category,
        )
        await self.lease.keep()
        token = self.lease.token()
        claim = await self._claim(key, token, send.cap_member, counters, now)
        if claim.status == "in_flight":
            M.channel_sends_put_back.labels(channel, "claim_held").inc()
            log.info("send %s: claim held by %r; put back", send.send_id, claim.record)
            return Dispatch([], None, retry=send)
        if claim.status == "taken_over":
            M.channel_claims_taken_over.labels(channel).inc()
            log.warning("send %s: took over the claim of a dead worker", send.send_id)
        if claim.status == "done":
            return self._replay(send, claim.record or b"{}")
        if claim.status == "capped":
            assert claim.counter is not None
            return self._finish(
                send, now, provider_name, "suppressed", counters[claim.counter].reason
            )

        dispatch = await self._deliver(send, provider, counters)
        if dispatch.retry is not None:  # yielded to a rebalance: let the next owner claim it
            await self._redis("dedup_release", lambda: self._dedup.release(key, token))
            return dispatch
        record = orjson.dumps(
            {
                "o": [event.model_dump(mode="json") for event in dispatch.outcomes],
                "f": dispatch.forward is not None,
            }
        )
        ttl_ms = self._settings.dedup_ttl_s * 1000
        await self._redis("dedup_complete", lambda: self._dedup.complete(key, record, ttl_ms))
        return dispatch

    def _precheck(self, send: Send, now: datetime, provider: Provider | None) -> str | None:
        """The checks that need no I/O: the reason this channel cannot be used, or ``None``."""
        channel = send.channel
        if send.not_after is not None and now > send.not_after:
            return "expired"
        if provider is None:
            return "no_provider"
        if channel not in send.messages:
            return "no_message"
        consent = send.consents.get(channel)
        # Marketing needs an explicit opt-in; transactional mail only respects an explicit opt-out.
        if consent is False or (consent is None and send.category == "marketing"):
            return "no_consent"
        if channel not in ADDRESSLESS_CHANNELS and not send.addresses.get(channel):
            return "no_address"
        return None

    async def _claim(
        self, key: str, token: str, member: str, counters: list[CapCounter], now: datetime
    ) -> Claim:
        """Claim the send. While another worker holds it, poll for ``held_claim_wait_s`` at
        most (it may finish, lapse or turn out dead); then answer the holder's ``in_flight``."""
        ttl_ms = self._settings.in_flight_ttl_s * 1000
        mine = token.encode()
        poll = 0.1
        patience = self._settings.held_claim_wait_s
        now_ms = int(now.timestamp() * 1000)  # the command's time, so windows are reproducible
        while True:
            if counters:
                claim = await self._redis(
                    "caps_claim",
                    partial(
                        self._caps_store.claim_within_caps,
                        key,
                        token,
                        ttl_ms,
                        member,
                        counters,
                        now_ms,
                    ),
                )
            else:
                claim = await self._redis(
                    "dedup_claim", lambda: self._dedup.claim(key, token, ttl_ms)
                )
            if claim.status != "in_flight":
                return claim
            if claim.record == mine:  # our own claim, whose first reply was lost
                return Claim("claimed")
            held = claim.record or b""
            if await self.lease.is_dead(held) and await self._redis(
                "dedup_take_over", partial(self._dedup.take_over, key, held, token, ttl_ms)
            ):
                return Claim("taken_over")
            if patience <= 0:
                return claim
            pause = min(poll, patience)
            await self._sleep(pause)
            patience -= pause
            poll = min(poll * 2, 2.0)

    async def _deliver(
        self, send: Send, provider: Provider, counters: list[CapCounter]
    ) -> Dispatch:
        """Call the provider for a claimed send; refund the cap slots if nothing was delivered."""
        channel = send.channel
        outgoing = Outgoing(
            send_id=send.send_id,
            customer_key=send.customer_key,
            channel=channel,
            address=send.addresses.get(channel, send.customer_key),
            message=send.messages[channel],
            category=send.category,
            journey_id=send.journey_id,
            step_id=send.step_id,
            caused_at=send.caused_at,
        )
        breaker = self._breakers.setdefault(provider.name, CircuitBreaker())
        try:
            if not breaker.allow():
                raise ProviderError("circuit_open", transient=True)
            result = await call_with_retries(
                lambda: self._attempt(provider, outgoing, send.not_after),
                self._retry,
                sleep=self._sleep,
                rand=self._rand,
                on_retry=lambda _error: M.provider_retries.labels(provider.name).inc(),
                stop=self.should_yield,
            )
        except StopRetrying as stopped:
            breaker.record(ok=False)
            await self._refund(send, counters)
            M.channel_sends_put_back.labels(channel, "rebalance").inc()
            log.info("send %s: %s during a rebalance; put back", send.send_id, stopped)
            return Dispatch([], None, retry=send)
        except _Expired:
            await self._refund(send, counters)
            return self._finish(send, self._clock(), provider.name, "suppressed", "expired")
        except ProviderError as error:
            if error.transient and error.reason != "circuit_open":
                breaker.record(ok=False)
            await self._refund(send, counters)
            now = self._clock()
            if error.transient:
                return self._finish(
                    send, now, provider.name, "failed", "provider_unavailable", error=error.reason
                )
            return self._finish(send, now, provider.name, "failed", error.reason)
        breaker.record(ok=True)
        now = self._clock()
        M.sends.labels(channel, provider.name, "sent").inc()
        M.event_to_send_seconds.labels(channel).observe(
            max(0.0, (now - send.caused_at).total_seconds())
        )
        event = outcome_event(
            send,
            "message_sent",
            now,
            provider.name,
            provider_message_id=result.provider_message_id,
            **dict(result.properties),
        )
        return Dispatch([event], None)

    async def _attempt(
        self, provider: Provider, outgoing: Outgoing, not_after: datetime | None
    ) -> ProviderResult:
        """One provider request, after taking a rate-limit token; never once expired (waiting
        for Redis, a token or a retry takes time)."""
        await self._take_token(provider.name)
        if not_after is not None and self._clock() > not_after:
            raise _Expired
        try:
            return await provider.send(outgoing)
        except ProviderError as error:
            kind = "transient" if error.transient else "permanent"
            M.provider_errors.labels(provider.name, error.reason, kind).inc()
            raise
        except Exception:
            # A provider bug must not stop the channel: report it, move to the next channel.
            log.exception("provider %s failed unexpectedly", provider.name)
            M.provider_errors.labels(provider.name, "provider_error", "permanent").inc()
            raise ProviderError("provider_error", transient=False) from None

    async def _take_token(self, provider_name: str) -> None:
        limit: RateLimit | None = self._settings.rate_limits.get(provider_name)
        limiter = self._limiter
        if limit is None or limiter is None:
            return
        key = rate_bucket(self._settings.redis_prefix, provider_name)
        while True:
            now_ms = int(self._clock().timestamp() * 1000)
            wait = await self._redis(
                "rate_acquire",
                partial(limiter.acquire, key, limit.rate, limit.burst, now_ms),
            )
            if wait <= 0:
                return
            M.rate_limit_waits.labels(provider_name).inc()
            M.rate_limit_wait_seconds.labels(provider_name).inc(wait)
            await self._sleep(wait)

    async def _refund(self, send: Send, counters: list[CapCounter]) -> None:
        # A send of a touch gives back its channel's slot only: another channel of the touch
        # may have been delivered, and the touch stays one contact across channels and journey.
        if send.touch_id is not None:
            counters = [c for c in counters if c.reason == "cap_channel"]
        if counters:
            member = send.cap_member
            await self._redis("caps_refund", lambda: self._caps_store.refund(member, counters))

    # --- outcomes ---------------------------------------------------------------------------

    @staticmethod
    def _finish(
        send: Send, now: datetime, provider: str, kind: str, reason: str, error: str | None = None
    ) -> Dispatch:
        """Not delivered on this channel: report it, and fall back when the chain allows."""
        outcomes, forward = not_delivered(send, now, provider, kind, reason, error)
        return Dispatch(outcomes, forward)

    def _replay(self, send: Send, record: bytes) -> Dispatch:
        """A redelivered command: answer what the first handling answered."""
        M.send_duplicates.labels(send.channel).inc()
        M.sends.labels(send.channel, self._provider_name(send.channel), "duplicate").inc()
        data = orjson.loads(record)
        outcomes = [Event.model_validate(item) for item in data.get("o", [])]
        return Dispatch(outcomes, send.fallen_back() if data.get("f") else None)

    def _provider_name(self, channel: str) -> str:
        provider = self._providers.get(channel)
        return provider.name if provider is not None else "none"

    async def _redis(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        return await wait_for_redis(
            op,
            call,
            sleep=self._sleep,
            max_backoff_s=self._settings.redis_backoff_max_s,
            max_wait_s=self._settings.redis_max_wait_s,
            rand=self._rand,
        )

    async def aclose(self) -> None:
        """Close the providers this dispatcher was given (tests and single-process tools; the
        worker closes its shared adapters in ``runtime/wiring.py`` instead)."""
        closed: set[int] = set()
        for provider in self._providers.values():
            if id(provider) not in closed:
                closed.add(id(provider))
                await provider.aclose()
