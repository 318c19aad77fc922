"""Retries: exponential backoff with full jitter for providers, patient waiting for Redis.

Two different stances, on purpose. A provider's transient error is retried a few times and then
reported (the send falls back and the worker moves on to other customers). Redis being away is
an infrastructure loss: without it no send can be claimed safely, so the agent waits with capped
backoff until it is back (by default forever), keeping the Kafka offset uncommitted: nothing is
lost and nothing is sent twice.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from omnistream.clock import monotonic
from omnistream.observability.metrics import M
from omnistream.ports import ProviderError, StoreUnavailable

__all__ = [
    "CircuitBreaker",
    "RedisUnavailable",
    "RetryPolicy",
    "Sleep",
    "backoff_delay",
    "call_with_retries",
    "wait_for_redis",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_s: float = 0.25
    max_s: float = 8.0
    retry_after_max_s: float = 30.0


def backoff_delay(policy: RetryPolicy, retry: int, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**retry)], so retrying workers spread out."""
    return rand() * min(policy.max_s, policy.base_s * (2.0**retry))


class StopRetrying(Exception):
    """The caller asked to stop between attempts (its worker is rebalancing or stopping)."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(f"stopped retrying after {error.reason}")
        self.error = error


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[ProviderError], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> T:
    """Run ``call``; retry transient ``ProviderError``s; re-raise the last or a permanent one.

    ``Retry-After`` raises the delay to what the provider asked for; one longer than
    ``retry_after_max_s`` ends the retries at once (waiting that long would stall the channel).
    When ``stop()`` is true before a retry, ``StopRetrying`` is raised instead of waiting: a
    rebalance waits for the record being handled, so it must not wait out a retry sequence.
    """
    for retry in range(policy.attempts):
        try:
            return await call()
        except ProviderError as error:
            if not error.transient or retry + 1 >= policy.attempts:
                raise
            delay = backoff_delay(policy, retry, rand)
            if error.retry_after is not None:
                if error.retry_after > policy.retry_after_max_s:
                    raise
                delay = max(delay, error.retry_after)
            if stop is not None and stop():
                raise StopRetrying(error) from error
            if on_retry is not None:
                on_retry(error)
            await sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


class RedisUnavailable(RuntimeError):
    """Redis stayed unreachable longer than the configured maximum wait."""


async def wait_for_redis(
    op: str,
    call: Callable[[], Awaitable[T]],
    *,
    sleep: Sleep,
    max_backoff_s: float,
    max_wait_s: float | None,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run one Redis round trip, waiting out connection loss with capped, jittered backoff.

    Only "cannot reach Redis" errors are waited out (counted in
    ``omnistream_channel_redis_errors_total`` by the store, waiting time in
    ``omnistream_channel_redis_wait_seconds_total``); anything else is a bug and propagates.
    """
    waited = 0.0
    retry = 0
    while True:
        try:
            return await call()
        except StoreUnavailable:
            if max_wait_s is not None and waited >= max_wait_s:
                raise RedisUnavailable(f"redis unreachable for {waited:.1f}s ({op})") from None
        delay = min(max_backoff_s, 0.05 * (2.0**retry)) * (0.5 + rand() / 2)
        retry = min(retry + 1, 20)
        M.channel_redis_waits.inc(delay)
        await sleep(delay)
        waited += delay


class CircuitBreaker:
    """Fail fast on a provider that keeps failing, so one dead provider does not stall a channel.

    After ``threshold`` consecutive sends that ended in transient failure, the breaker opens for
    ``cooldown_s``: sends fail at once as ``provider_unavailable`` (and fall back); then one send
    is let through to probe, closing the breaker on success.
    """

    def __init__(
        self, threshold: int = 5, cooldown_s: float = 30.0, clock: Callable[[], float] = monotonic
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0

    def allow(self) -> bool:
        if self._failures < self._threshold:
            return True
        now = self._clock()
        if now >= self._open_until:
            self._open_until = now + self._cooldown_s  # one probe per cooldown
            return True
        return False

    def record(self, ok: bool) -> None:
        if ok:
            self._failures = 0
        else:
            self._failures += 1
            if self._failures == self._threshold:
                self._open_until = self._clock() + self._cooldown_s
