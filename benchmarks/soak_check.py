"""The soak's plan (seeded traffic and kills) and its verdict, from the outside only.

The verdict reads two things: what the soak produced (customer, event type, when) and what the
``log`` provider wrote (one JSON line per send: ``send_id``, ``customer_key``, ``step_id``,
``sent_at``; fields that stay when the provider redacts). It never asks omnistream how it did.

What the journeys promise (``CONFIRMATION`` and ``CART`` in ``benchmarks/soak.py``):
- every ``order_placed`` gets one confirmation email (step ``confirm``), at once;
- a customer who put something in the cart and did not order gets one push (step ``cart_push``)
  no earlier than 20 s after the cart; one who ordered right after the cart gets none.

So: *lost* is an expected send that never came, *duplicated* a send line beyond one per expected
send (the same send id twice, or more distinct sends than orders), *sent after purchase* a cart
push to a buyer, *early* a push before its 20 s were up. *Resume* of a kill: how long after the
kill the sends that were due (or fell due before the next kill) waited, worst case.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "CART_WAIT",
    "Kill",
    "Planned",
    "PlannedKill",
    "Produced",
    "SendLine",
    "Verdict",
    "make_plan",
    "plan_kills",
    "resume_worst",
    "verdict",
]

CART_WAIT = timedelta(seconds=20)
CONFIRM_STEP = "confirm"
PUSH_STEP = "cart_push"
EventType = Literal[
    "signed_up", "push_token_registered", "consent_updated", "cart_updated", "order_placed",
    "product_viewed",
]  # fmt: skip
SETUP: tuple[EventType, ...] = ("signed_up", "push_token_registered", "consent_updated")


@dataclass(frozen=True)
class Planned:
    """One event to produce ``at`` seconds after traffic starts."""

    at: float
    customer: str
    type: EventType
    seq: int
    """Unique per customer: the event id is ``<customer>-<seq>``."""


@dataclass(frozen=True)
class Produced:
    customer: str
    type: str
    at: datetime
    """The event's timestamp, taken just before it was handed to the producer."""


@dataclass(frozen=True)
class Kill:
    at: datetime
    victims: tuple[int, ...]
    """Worker slots killed at once (two = both workers down)."""


@dataclass(frozen=True)
class PlannedKill:
    at: float
    victims: tuple[int, ...]
    restart_after: float


@dataclass(frozen=True)
class SendLine:
    send_id: str
    customer: str
    step: str
    sent_at: datetime


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    after_purchase: list[str] = field(default_factory=list)
    early: list[str] = field(default_factory=list)
    resume_s: list[float] = field(default_factory=list)
    """One figure per kill, in kill order."""
    resume_worst: list[str] = field(default_factory=list)
    """Per kill, the send that set its figure (customer, step, due and sent times)."""
    longest_delay_s: float = 0.0
    """The longest a send due after the first kill waited, across any later kills."""
    expected: int = 0
    seen: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.duplicated or self.after_purchase or self.early)

    def line(self) -> str:
        worst = max(self.resume_s, default=0.0)
        return (
            f"lost {len(self.lost)} / duplicated {len(self.duplicated)} / "
            f"sent-after-purchase {len(self.after_purchase)} / early {len(self.early)} / "
            f"max resume {worst:.1f}s  (longest send delay {self.longest_delay_s:.1f}s, "
            f"expected sends {self.expected}, seen {self.seen})"
        )


def make_plan(
    rng: random.Random, customers: int, events: int, duration: float
) -> tuple[list[Planned], set[str]]:
    """Keyed traffic over ``duration`` seconds: every customer signs up (email, push token,
    push consent), then puts something in the cart; about half order right after it (back to
    back), the others never order. Events beyond those go to repeat orders of buyers and to
    product views. Returns the plan in time order and the set of buyers."""
    plan: list[Planned] = []
    buyers: set[str] = set()
    seqs: Counter[str] = Counter()

    def add(at: float, customer: str, type_: EventType) -> None:
        seqs[customer] += 1
        plan.append(Planned(at, customer, type_, seqs[customer]))

    carts: dict[str, float] = {}
    joined: dict[str, float] = {}
    for n in range(customers):
        customer = f"soak-{n}"
        joined[customer] = rng.uniform(0, duration * 0.5)
        for type_ in SETUP:
            add(joined[customer], customer, type_)
        carts[customer] = cart = rng.uniform(joined[customer] + 1, duration)
        add(cart, customer, "cart_updated")
        if rng.random() < 0.5:
            buyers.add(customer)
            add(cart, customer, "order_placed")  # back to back with the cart
    names = sorted(carts)
    for _ in range(max(0, events - len(plan))):
        customer = rng.choice(names)
        if customer in buyers and rng.random() < 0.5:
            add(rng.uniform(carts[customer], duration), customer, "order_placed")
        else:  # after the sign-up, so the customer has addresses before anything is sent
            add(rng.uniform(joined[customer], duration), customer, "product_viewed")
    plan.sort(key=lambda p: (p.at, p.customer, p.seq))  # same moment: in the order added
    return plan, buyers


def plan_kills(
    rng: random.Random, kills: int, start: float, end: float, workers: int = 2
) -> list[PlannedKill]:
    """``kills`` kill -9 moments in [start, end] (later if they do not fit), each at least 5 s
    after the previous kill's restart, so every kill finds its victims up; one of them (seeded)
    takes every worker down at once when there are two or more; restarts after 2-15 s."""
    if kills <= 0:
        return []
    both = rng.randrange(kills) if kills >= 2 else -1
    times = sorted(rng.uniform(start, end) for _ in range(kills))
    restarts = [rng.uniform(2.0, 15.0) for _ in range(kills)]
    for i in range(1, kills):
        times[i] = max(times[i], times[i - 1] + restarts[i - 1] + 5.0)
    planned = []
    for i, at in enumerate(times):
        down_all = i == both or rng.random() < 0.15
        victims = tuple(range(workers)) if down_all else (rng.randrange(workers),)
        planned.append(PlannedKill(at, victims, restarts[i]))
    return planned


def verdict(
    produced: Sequence[Produced],
    sends: Sequence[SendLine],
    buyers: set[str],
    kills: Sequence[Kill],
) -> Verdict:
    """Compare what was produced with what the provider wrote (see the module docstring)."""
    result = Verdict(seen=len(sends))
    orders: dict[str, list[datetime]] = defaultdict(list)
    carts: dict[str, datetime] = {}
    for event in produced:
        if event.type == "order_placed":
            orders[event.customer].append(event.at)
        elif event.type == "cart_updated":
            carts.setdefault(event.customer, event.at)
    by_step: dict[tuple[str, str], list[SendLine]] = defaultdict(list)
    for line in sorted(sends, key=lambda s: s.sent_at):
        by_step[(line.customer, line.step)].append(line)
    for (customer, send_id), n in Counter((s.customer, s.send_id) for s in sends).items():
        if n > 1:
            result.duplicated.extend([f"{customer} send {send_id} written {n} times"] * (n - 1))
    due: list[tuple[datetime, datetime]] = []
    names: list[str] = []
    for customer, times in orders.items():
        result.expected += len(times)
        matched = _match(customer, CONFIRM_STEP, sorted(times), by_step, result)
        due += matched
        names += [f"{customer} {CONFIRM_STEP}"] * len(matched)
    for customer, cart in carts.items():
        pushes = by_step.get((customer, PUSH_STEP), [])
        if customer in buyers:
            result.after_purchase += [_describe(s, f"bought at {cart:%H:%M:%S.%f}") for s in pushes]
            continue
        result.expected += 1
        matched = _match(customer, PUSH_STEP, [cart + CART_WAIT], by_step, result)
        due += matched
        names += [f"{customer} {PUSH_STEP}"] * len(matched)
        result.early += [
            _describe(s, f"due {cart + CART_WAIT:%H:%M:%S.%f}")
            for s in pushes
            if s.sent_at < cart + CART_WAIT
        ]
    result.resume_s = resume_seconds(due, [k.at for k in kills])
    result.resume_worst = resume_worst(due, names, [k.at for k in kills])
    if kills:
        result.longest_delay_s = longest_delay(due, min(k.at for k in kills))
    return result


def _match(
    customer: str,
    step: str,
    due: list[datetime],
    by_step: Mapping[tuple[str, str], list[SendLine]],
    result: Verdict,
) -> list[tuple[datetime, datetime]]:
    """Pair the expected sends of one customer and step with the distinct sends seen (both in
    time order); count the missing as lost and the extra as duplicated. Returns (due, sent)."""
    first: dict[str, SendLine] = {}
    for line in by_step.get((customer, step), []):
        first.setdefault(line.send_id, line)
    seen = list(first.values())
    result.lost += [f"{customer} {step} due {d:%H:%M:%S.%f}" for d in due[len(seen) :]]
    result.duplicated += [_describe(s, f"{len(due)} expected") for s in seen[len(due) :]]
    return [(d, s.sent_at) for d, s in zip(due, seen, strict=False)]


def _describe(line: SendLine, why: str) -> str:
    return f"{line.customer} {line.step} send {line.send_id} at {line.sent_at:%H:%M:%S.%f} ({why})"


def resume_seconds(
    due_sent: Iterable[tuple[datetime, datetime]], kills: Sequence[datetime]
) -> list[float]:
    """Per kill: the longest a send waited because of it. Counted are the sends that fell due
    between this kill and the next one, each from the later of its due time and the kill, up to
    when it was sent or the next kill, whichever came first: a send still waiting at the next
    kill is that kill's to resume too, so its wait after it is not charged to this one twice."""
    return [wait for wait, _ in _worst_per_kill(list(due_sent), kills)]


def _worst_per_kill(
    pairs: list[tuple[datetime, datetime]], kills: Sequence[datetime]
) -> list[tuple[float, int | None]]:
    """Per kill (in time order): its figure (see ``resume_seconds``) and which pair set it."""
    ordered = sorted(kills)
    figures: list[tuple[float, int | None]] = []
    for i, kill in enumerate(ordered):
        until = ordered[i + 1] if i + 1 < len(ordered) else datetime.max.replace(tzinfo=kill.tzinfo)
        waits = [
            ((min(sent, until) - max(due, kill)).total_seconds(), n)
            for n, (due, sent) in enumerate(pairs)
            if sent >= kill and due < until
        ]
        best = max(waits, default=(0.0, None))
        figures.append((best[0], best[1]))
    return figures


def resume_worst(
    due_sent: Sequence[tuple[datetime, datetime]],
    names: Sequence[str],
    kills: Sequence[datetime],
) -> list[str]:
    """Per kill: the send that set its resume figure (``names[i]`` names ``due_sent[i]``), with
    its due and sent times, so a slow kill can be looked up in the worker logs."""
    described = []
    for wait, n in _worst_per_kill(list(due_sent), kills):
        if n is None:
            described.append("none waited")
            continue
        due, sent = due_sent[n]
        described.append(f"{names[n]} due {due:%H:%M:%S.%f} sent {sent:%H:%M:%S.%f} ({wait:.1f}s)")
    return described


def longest_delay(due_sent: Iterable[tuple[datetime, datetime]], since: datetime) -> float:
    """The longest any send due after ``since`` (the first kill) waited, however many kills it
    waited through."""
    waits = [(sent - due).total_seconds() for due, sent in due_sent if due >= since]
    return max(waits, default=0.0)
