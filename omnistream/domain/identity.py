"""Identity resolution: which row an event belongs to, and how rows of one person become one.

Keys. A row of the customer table is keyed by a *customer key*: a ``customer_id`` (canonical) or
a provisional identifier key: ``crm:<id>``, ``email:<hash>``, ``phone:<hash>``, ``anon:<id>``.
Emails and phone numbers are normalised and hashed (sha256, 128 bits) so that Kafka keys, table
keys and log lines never carry contact details; the raw values live only in the profile.

Ranks. ``customer > crm > email > phone > anon``. A row claims only identifiers ranked below its
own key, and an alias always points to a higher rank, so alias chains are acyclic and at most four
hops long. Canonical (customer id) claims win over earlier ones (latest login owns the device);
a provisional claim only takes a free identifier.

Tables, both keyed like ``omni.customer-events`` and co-partitioned with it, so the partition
owner of key K changes both ``customers[K]`` and ``aliases[K]`` and nothing else:
``aliases[identifier] -> customer key`` and ``customers[key] -> CustomerState``. A key holds a
row or an alias, never both: handing a row over deletes it in the same step that sets the alias.
The data flow on the topics is in ``docs/identity.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from omnistream.domain.commands import CancelTimer, Command, Emit
from omnistream.domain.events import ANONYMOUS_PREFIX, Event
from omnistream.domain.profile_merge import merge_profiles, move_journeys
from omnistream.domain.profile_model import MAX_IDENTIFIERS, MAX_MERGED_FROM
from omnistream.domain.profile_values import as_id, normalize_email, normalize_phone
from omnistream.domain.state import (
    RECENT_EVENT_IDS,
    RECENT_EVENTS,
    CustomerState,
    EventSummary,
    JourneyRecord,
)
from omnistream.domain.vocabulary import FORGET_EVENT
from omnistream.redis_keys import customer_patterns

__all__ = [
    "FORGET_EVENT",
    "RANKS",
    "Claim",
    "ClaimDecision",
    "ForgetPlan",
    "MergeRequest",
    "MergeResult",
    "Release",
    "claims_for",
    "decide_claim",
    "decide_release",
    "forget",
    "identifier_key",
    "identifiers_of",
    "is_canonical",
    "merge",
    "merge_states",
    "merge_token",
    "rank",
    "resolve",
    "route_key",
]


RANKS: Final = {"customer": 5, "crm": 4, "email": 3, "phone": 2, "anon": 1}
_PREFIXES: Final = {"crm:": "crm", "email:": "email", "phone:": "phone", ANONYMOUS_PREFIX: "anon"}
_TRAIT_EVENTS: Final = frozenset({"identify", "signed_up", "profile_updated"})


def _hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def identifier_key(kind: str, value: object) -> str | None:
    """The alias key of one identifier, or ``None`` when the value does not normalise.

    ``kind`` is ``anon``, ``crm``, ``email`` or ``phone``; phones must be international
    (``+`` or ``00``), see ``normalize_phone``.
    """
    if kind == "email":
        email = normalize_email(value)
        return None if email is None else f"email:{_hash('email', email)}"
    if kind == "phone":
        phone = normalize_phone(value)
        return None if phone is None else f"phone:{_hash('phone', phone)}"
    if kind in ("anon", "crm"):
        ident = as_id(value)
        return None if ident is None else f"{kind}:{ident}"
    return None


def kind_of(key: str) -> str:
    for prefix, kind in _PREFIXES.items():
        if key.startswith(prefix):
            return kind
    return "customer"


def rank(key: str) -> int:
    return RANKS[kind_of(key)]


def is_canonical(key: str) -> bool:
    return kind_of(key) == "customer"


def identifiers_of(event: Event) -> list[str]:
    """Every identifier key the event carries, highest rank first, without duplicates.

    Read from ``customer_id`` (a reserved prefix there means a row key, as ``key_fields``
    writes for system events), ``anonymous_id``, ``context.identifiers``
    (``{"crm_id", "email", "phone", "anonymous_id"}``) and, for identify/signed_up/
    profile_updated, ``properties.traits.email``/``phone``. Values that do not normalise are
    ignored: identity is never guessed.
    """
    keys: list[str] = []
    if event.customer_id is not None:
        keys.append(event.customer_id)
    if event.anonymous_id is not None:
        keys.append(ANONYMOUS_PREFIX + event.anonymous_id)
    extra = event.context.get("identifiers")
    if isinstance(extra, dict):
        for name, kind in (("crm_id", "crm"), ("email", "email"), ("phone", "phone")):
            key = identifier_key(kind, extra.get(name))
            if key is not None:
                keys.append(key)
        anon = identifier_key("anon", extra.get("anonymous_id"))
        if anon is not None:
            keys.append(anon)
    if event.type in _TRAIT_EVENTS:
        traits = event.properties.get("traits")
        if isinstance(traits, dict):
            for kind in ("email", "phone"):
                key = identifier_key(kind, traits.get(kind))
                if key is not None:
                    keys.append(key)
    return sorted(dict.fromkeys(keys), key=rank, reverse=True)


def route_key(event: Event) -> str:
    """Ingest: the key to produce the event under on ``omni.customer-events``."""
    return identifiers_of(event)[0]


def resolve(key: str, alias: str | None) -> str | None:
    """At key K: where to forward an input (``aliases[K]``), or ``None`` to process it here.

    An alias that does not point upwards in rank is ignored (defensive: it cannot loop).
    """
    if alias is None or alias == key or rank(alias) <= rank(key):
        return None
    return alias


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Claim(_Message):
    """'``identifier`` belongs to ``customer_key``': produced keyed by ``identifier``."""

    kind: Literal["claim"] = "claim"
    identifier: str
    customer_key: str


class Release(_Message):
    """Drop the alias ``identifier -> customer_key`` (if it still says so); keyed by
    ``identifier``. With ``forget`` also delete an unmerged row found at ``identifier``."""

    kind: Literal["release"] = "release"
    identifier: str
    customer_key: str
    forget: bool = False


class MergeRequest(_Message):
    """A handed-over row for ``into``: produced keyed by ``into``."""

    kind: Literal["merge"] = "merge"
    into: str
    state: CustomerState


@dataclass(frozen=True)
class ClaimDecision:
    """What the owner of the identifier's partition does with a claim."""

    alias: str | None
    """The alias value to store (unchanged when the claim is refused)."""
    accepted: bool
    handover: MergeRequest | None = None
    """Produce this to ``handover.into`` and delete ``customers[identifier]``."""


def decide_claim(current: str | None, row: CustomerState | None, claim: Claim) -> ClaimDecision:
    """At ``claim.identifier``: given ``aliases[identifier]`` and ``customers[identifier]``.

    Idempotent: a redelivered claim finds the alias already set and changes nothing, except
    that a row still present (a crash between the two writes) is handed over again, which the
    merge ignores the second time.
    """
    ident, claimer = claim.identifier, claim.customer_key
    if is_canonical(ident) or rank(claimer) <= rank(ident):
        return ClaimDecision(alias=current, accepted=False)
    free = current is None or current == claimer
    if not (free or is_canonical(claimer) or rank(claimer) > rank(current or ident)):
        return ClaimDecision(alias=current, accepted=False)
    handover = None if row is None else MergeRequest(into=claimer, state=row)
    return ClaimDecision(alias=claimer, accepted=True, handover=handover)


def decide_release(current: str | None, release: Release) -> tuple[bool, bool]:
    """At ``release.identifier``: (delete the alias?, delete the row there?)."""
    ours = current == release.customer_key
    return ours, release.forget and (current is None or ours)


def _bound(ids: list[str]) -> tuple[list[str], list[str]]:
    """At most ``MAX_IDENTIFIERS``: the oldest anonymous ids go first (a cookie from years ago)."""
    released: list[str] = []
    ids = list(ids)
    while len(ids) > MAX_IDENTIFIERS:
        victim = next((i for i in ids if kind_of(i) == "anon"), ids[0])
        ids.remove(victim)
        released.append(victim)
    return ids, released


def claims_for(
    state: CustomerState, event: Event
) -> tuple[CustomerState, list[Claim], list[Release]]:
    """After the engine step at ``state.key``: the identifiers this row now claims.

    Cheap when nothing is new (the usual case): the same state object comes back.
    """
    mine = set(state.profile.identifiers)
    own = rank(state.key)
    new = [k for k in identifiers_of(event) if k != state.key and rank(k) < own and k not in mine]
    if not new:
        return state, [], []
    ids, dropped = _bound([*state.profile.identifiers, *new])
    profile = state.profile.model_copy(update={"identifiers": ids})
    claims = [Claim(identifier=k, customer_key=state.key) for k in new if k in ids]
    releases = [Release(identifier=k, customer_key=state.key) for k in dropped]
    return state.model_copy(update={"profile": profile}), claims, releases


def merge_token(anonymous: CustomerState) -> str:
    """Names one life of a handed-over row: its key and when it was first seen."""
    first = anonymous.profile.first_seen
    return f"{anonymous.key}@{first.isoformat() if first else '-'}"


@dataclass(frozen=True)
class MergeResult:
    state: CustomerState
    commands: list[Command] = field(default_factory=list)
    """ScheduleTimer for moved timers (under the known key), Emit for dropped instances. The old
    key's timers need no command: deleting a row drops its entries from the timer index, and a
    late firing for a deleted row is forwarded by the alias and then ignored as stale."""
    claims: list[Claim] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    already_merged: bool = False


def _merged_summaries(known: CustomerState, anonymous: CustomerState) -> list[EventSummary]:
    """Both rows' recent events, oldest first, each once, bounded like a row's own list."""
    by_id = {e.event_id: e for e in [*anonymous.recent_events, *known.recent_events]}
    ordered = sorted(by_id.values(), key=lambda e: (e.timestamp, e.event_id))
    return ordered[-RECENT_EVENTS:]


def merge_states(known: CustomerState, anonymous: CustomerState) -> CustomerState:
    return merge(known, anonymous).state


def merge(known: CustomerState, anonymous: CustomerState) -> MergeResult:
    """Fold a handed-over row into ``known`` (see docs/identity.md for the precedence).

    Journeys: an anonymous instance of a journey ``known`` is not in moves over with its step
    and its timers (same ids unless they collide); one of a journey both are in is dropped
    (``journey_exited`` with reason ``merged_duplicate``) so the customer never runs a journey
    twice. Idempotent: the second merge of the same row (same ``merge_token``) applies only the
    idempotent parts and yields the same state.
    """
    token = merge_token(anonymous)
    again = token in known.profile.merged_from
    profile = merge_profiles(known.profile, anonymous.profile, additive=not again)
    incoming = [i for i in [*anonymous.profile.identifiers, anonymous.key] if i != known.key]
    ids, released = _bound(
        [*(i for i in incoming if i not in known.profile.identifiers), *known.profile.identifiers]
    )
    merged_from = [*(t for t in known.profile.merged_from if t != token), token]
    profile = profile.model_copy(
        update={"identifiers": ids, "merged_from": merged_from[-MAX_MERGED_FROM:]}
    )
    instances, timers, commands, moved, dropped = move_journeys(known, anonymous)
    history = dict(known.history)
    if not again:
        for journey_id, theirs in anonymous.history.items():
            ours = history.get(journey_id)
            lost = sum(1 for i in dropped if anonymous.instances[i].journey_id == journey_id)
            if ours is None:
                history[journey_id] = theirs
            else:
                later = ours.last_entered_at
                if theirs.last_entered_at and (later is None or theirs.last_entered_at > later):
                    later = theirs.last_entered_at
                history[journey_id] = JourneyRecord(
                    entries=ours.entries + max(theirs.entries - lost, 0),
                    last_entered_at=later,
                    last_exit_reason=ours.last_exit_reason or theirs.last_exit_reason,
                )
    mine = set(known.recent_event_ids)
    recent = [e for e in anonymous.recent_event_ids if e not in mine] + known.recent_event_ids
    state = known.model_copy(
        update={
            "profile": profile,
            "instances": instances,
            "timers": timers,
            "history": history,
            "recent_event_ids": recent[-RECENT_EVENT_IDS:],
            "recent_events": _merged_summaries(known, anonymous),
            "seq": max(known.seq, anonymous.seq),
        }
    )
    own = rank(known.key)
    claims = [
        Claim(identifier=i, customer_key=known.key)
        for i in ids
        if i not in known.profile.identifiers and i != anonymous.key and rank(i) < own
    ]
    return MergeResult(
        state=state,
        commands=commands,
        claims=claims,
        releases=[Release(identifier=i, customer_key=known.key) for i in released],
        moved=moved,
        dropped=dropped,
        already_merged=again,
    )


@dataclass(frozen=True)
class ForgetPlan:
    """Everything the runtime removes for a right-to-erasure request at ``customer_key``."""

    customer_key: str
    releases: list[Release]
    """Produce each, keyed by its identifier: deletes the alias and any unmerged row there."""
    cancel: list[CancelTimer]
    exits: list[Emit]
    redis_patterns: list[str]


def forget(state: CustomerState, prefix: str = "omni:") -> ForgetPlan:
    """What to delete for ``state``: its row (by the caller), aliases, timers, Redis keys, and
    the journeys to stop. Contact addresses are turned into their (hashed) alias keys here, so
    an alias that was never claimed through this row is released too."""
    keys = list(state.profile.identifiers)
    for kind, channel in (("email", "email"), ("phone", "sms")):
        for raw in (state.profile.addresses.get(channel), state.profile.traits.get(kind)):
            key = identifier_key(kind, raw)
            if key is not None:
                keys.append(key)
    keys = [k for k in dict.fromkeys(keys) if k != state.key]
    return ForgetPlan(
        customer_key=state.key,
        releases=[Release(identifier=k, customer_key=state.key, forget=True) for k in keys],
        cancel=[CancelTimer(customer_key=state.key, timer_id=t) for t in sorted(state.timers)],
        exits=[
            Emit(
                name="journey_exited",
                journey_id=inst.journey_id,
                step_id=inst.step_id,
                reason="forgotten",
                control=inst.control,
            )
            for _, inst in sorted(state.instances.items())
        ],
        redis_patterns=customer_patterns(prefix, state.key),
    )
