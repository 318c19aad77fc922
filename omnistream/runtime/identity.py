"""Identity messages on the customer topic: claims, releases and merges (docs/identity.md).

Every message is keyed by the row it changes, so only the owner of that key's partition writes
``customers[K]`` and ``aliases[K]``. The rules themselves are pure (``domain/identity.py``);
this module reads and writes the two tables and produces the follow-up messages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from omnistream.domain.identity import (
    Claim,
    MergeRequest,
    Release,
    decide_claim,
    decide_release,
    forget,
    merge,
)
from omnistream.domain.identity_messages import is_identity_message, parse_identity_message
from omnistream.domain.state import CustomerState
from omnistream.observability.metrics import M
from omnistream.runtime.commands import execute, load_row
from omnistream.runtime.delivery import Pending, delivered
from omnistream.runtime.dlq import dead_letter
from omnistream.runtime.faust_types import Message

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["alias_of", "forget_customer", "is_identity_message", "on_message", "publish"]

log = logging.getLogger(__name__)


def alias_of(runtime: Runtime, key: bytes) -> str | None:
    raw = runtime.aliases.get(key)
    return raw.decode() if raw else None


async def publish(runtime: Runtime, claims: list[Claim], releases: list[Release]) -> Pending:
    """Produce the claims and releases; returns their deliveries (``runtime/delivery.py``)."""
    messages: list[Claim | Release] = [*claims, *releases]
    return [
        await runtime.topics.customer_events.send(
            key=message.identifier.encode(), value=message.model_dump_json().encode()
        )
        for message in messages
    ]


def _delete_row(runtime: Runtime, key: bytes) -> None:
    if key in runtime.customers:
        del runtime.customers[key]
    runtime.timers.drop_customer(key.decode())


async def on_message(runtime: Runtime, key: bytes, raw: bytes, message: Message) -> None:
    try:
        parsed = parse_identity_message(raw)
        if isinstance(parsed, Claim):
            await _on_claim(runtime, key, parsed)
        elif isinstance(parsed, Release):
            _on_release(runtime, key, parsed)
        elif isinstance(parsed, MergeRequest):
            await _on_merge(runtime, key, parsed)
        else:
            await dead_letter(runtime, message, "unknown_kind", raw[:60].decode(errors="replace"))
    except ValidationError as exc:
        await dead_letter(runtime, message, "invalid_identity_message", str(exc)[:500])


async def _on_claim(runtime: Runtime, key: bytes, claim: Claim) -> None:
    decision = decide_claim(alias_of(runtime, key), load_row(runtime, key), claim)
    M.identity_messages.labels("claim", "accepted" if decision.accepted else "refused").inc()
    if not decision.accepted:
        return
    handover = decision.handover
    if handover is not None:  # on the broker before the alias and the row deletion record it
        value = handover.model_dump_json().encode()
        sent = await runtime.topics.customer_events.send(key=handover.into.encode(), value=value)
        await delivered([sent])
    if decision.alias is not None:
        runtime.aliases[key] = decision.alias.encode()
    if handover is not None:
        _delete_row(runtime, key)


def _on_release(runtime: Runtime, key: bytes, release: Release) -> None:
    delete_alias, delete_row = decide_release(alias_of(runtime, key), release)
    M.identity_messages.labels("release", "forget" if release.forget else "release").inc()
    if delete_alias and key in runtime.aliases:
        del runtime.aliases[key]
    if delete_row:
        _delete_row(runtime, key)


async def _on_merge(runtime: Runtime, key: bytes, request: MergeRequest) -> None:
    known = load_row(runtime, key) or CustomerState(key=key.decode())
    result = merge(known, request.state)
    M.identity_messages.labels("merge", "again" if result.already_merged else "merged").inc()
    pending = await execute(runtime, result.commands)
    pending += await publish(runtime, result.claims, result.releases)
    await delivered(pending)
    runtime.customers[key] = result.state.to_bytes()


async def forget_customer(runtime: Runtime, key: bytes) -> None:
    """Right to erasure: row, identity links, pending timers, Redis keys, journeys.

    The row goes last, so erasure is idempotent when it fails half-way (Redis or Kafka down):
    the replay (``guarded``'s retry, or the request redelivered after a crash) still finds the
    row and does every step again; each is idempotent (deterministic releases and exits, timer
    cancels, deleting keys already gone). Only a replay that finds no row has nothing to do.
    """
    state = load_row(runtime, key)
    if state is None:  # nothing (left) to forget; a redelivered request creates nothing
        return
    plan = forget(state, prefix=runtime.channels.settings.redis_prefix)
    pending = await execute(runtime, [*plan.cancel, *plan.exits])
    pending += await publish(runtime, [], plan.releases)
    await delivered(pending)
    deleted = 0
    redis = runtime.redis
    for pattern in plan.redis_patterns:
        async for redis_key in redis.scan_iter(match=pattern, count=500):
            deleted += int(await redis.delete(redis_key))
    _delete_row(runtime, key)
    M.identity_messages.labels("forget", "done").inc()
    log.info("customer forgotten: %d aliases released, %d redis keys", len(plan.releases), deleted)
