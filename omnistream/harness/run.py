"""Run the customer agent's step in process: inputs, timers and sends on the memory broker.

The loop is the worker's, in one thread and on the manual clock: an input is produced to
``omni.customer-events`` at its timestamp (keyed, so it lands in its customer's partition);
before it, every timer due by then fires, earliest first, as a ``timer_fired`` record built by
the worker's constructor; each consumed record follows its key's alias (a merged-away key),
runs the pure engine on the row read from the table, writes the row back and carries out the
commands: a send is produced to ``omni.send.<channel>``, a timer goes into the worker's
``TimerIndex``. What the worker adds around this (batching, acks, DLQ, metrics, the channel
agents) is not modelled here yet; see docs/architecture.md. Identity messages (claims, releases,
merges) follow the pure rules of ``domain/identity.py`` as ``runtime/identity.py`` applies them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pydantic import ValidationError

from omnistream.channels.dispatcher import Dispatch, Dispatcher
from omnistream.domain.commands import CancelTimer, Command, ScheduleTimer, Send
from omnistream.domain.events import Event, EventError, parse_event
from omnistream.domain.identity import (
    Claim,
    MergeRequest,
    Release,
    claims_for,
    decide_claim,
    decide_release,
    merge,
    resolve,
    route_key,
)
from omnistream.domain.identity_messages import is_identity_message, parse_identity_message
from omnistream.domain.state import CustomerState
from omnistream.domain.timers import timer_fired_event
from omnistream.domain.vocabulary import CHANNELS
from omnistream.harness.broker import MemoryBroker, MemoryRecord
from omnistream.harness.clock import ManualClock
from omnistream.harness.delivery import Delivery, build_dispatcher, dispatch
from omnistream.harness.tables import MemoryTable
from omnistream.journey.engine import step
from omnistream.journey.model import Catalog
from omnistream.runtime.timer_index import TimerIndex

__all__ = [
    "CUSTOMER_EVENTS",
    "DispatchObserver",
    "Harness",
    "Observer",
    "Rejected",
    "send_topic",
]

CUSTOMER_EVENTS: Final = "omni.customer-events"
_MAX_INPUTS: Final = 100_000


def send_topic(channel: str) -> str:
    """The topic a channel agent reads, as the worker names it with the default prefix."""
    return f"omni.send.{channel}"


def _by_seq(record: MemoryRecord) -> int:
    return record.seq


Observer = Callable[[Event, CustomerState, CustomerState, list[Command]], None]
"""Called after each step with the input, the row before and after, and the commands."""

DispatchObserver = Callable[[datetime, Send, Dispatch], None]
"""Called after the dispatcher handled a send, with the time and its outcomes and forward."""


@dataclass(frozen=True)
class Rejected:
    """A record the worker would dead-letter, with the same reason."""

    record: MemoryRecord
    reason: str
    detail: str


@dataclass
class Harness:
    """One worker owning every partition; ``publish`` inputs, then ``run_until`` a time."""

    catalog: Catalog
    clock: ManualClock
    partitions: int = 4
    broker: MemoryBroker = field(init=False)
    customers: MemoryTable = field(default_factory=MemoryTable)
    aliases: dict[str, str] = field(default_factory=dict)
    timers: TimerIndex = field(default_factory=TimerIndex)
    rejected: list[Rejected] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)
    delivery: Delivery | None = None
    """With a delivery model, sends go through the dispatcher; without, they stay on the topics."""
    dispatch_observers: list[DispatchObserver] = field(default_factory=list)
    _dispatcher: Dispatcher | None = field(default=None, init=False)
    _inputs: list[tuple[datetime, int, str, bytes]] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        self.broker = MemoryBroker(self.partitions)
        if self.delivery is not None:
            self._dispatcher = build_dispatcher(self.delivery, self._now)

    def _now(self) -> datetime:
        return self.clock.now

    def publish(self, event: Event) -> None:
        """Schedule ``event`` to be produced at its timestamp (ties keep publication order).

        It goes under its highest-ranked identifier, as ingest routes a source event."""
        self._seq += 1
        item = (event.timestamp, self._seq, route_key(event), event.to_json())
        heapq.heappush(self._inputs, item)

    def run_until(self, until: datetime) -> None:
        """Produce every input and fire every timer due by ``until``, in time order."""
        for _ in range(_MAX_INPUTS):
            due = self.timers.oldest_due()
            next_input = self._inputs[0][0] if self._inputs else None
            if due is not None and due <= until and (next_input is None or due <= next_input):
                self._fire(due)
            elif next_input is not None and next_input <= until:
                at, _, key, raw = heapq.heappop(self._inputs)
                self.clock.advance_to(at)
                self.broker.send(CUSTOMER_EVENTS, key.encode(), raw)
            else:
                break
            self._drain()
        self.clock.advance_to(until)

    def sends(self) -> list[Send]:
        """Every send command produced, in the order the channel topics hold them."""
        channels = [t for t in self.broker.topics() if t.startswith(send_topic(""))]
        records = sorted((r for t in channels for r in self.broker.records(t)), key=_by_seq)
        return [Send.model_validate_json(r.value) for r in records]

    def seed(self, state: CustomerState) -> None:
        """Put a row in the table before the run (a scenario's known profile)."""
        self.customers[state.key.encode()] = state.to_bytes()

    def row(self, key: str) -> CustomerState | None:
        raw = self.customers.get(key.encode())
        return CustomerState.from_bytes(raw) if raw else None

    def _fire(self, due: datetime) -> None:
        self.clock.advance_to(due)
        for key, timer_id, when in self.timers.pop_due(due):
            event = timer_fired_event(key, timer_id, when)
            self.broker.send(CUSTOMER_EVENTS, key.encode(), event.to_json())

    def _drain(self) -> None:
        """Consume until quiet: the customer agent, then (with a delivery model) the channels."""
        while True:
            for record in self.broker.poll(CUSTOMER_EVENTS):
                self.handle(record)
                record.ack()
            if self._dispatcher is None or not self._deliver():
                return

    def _deliver(self) -> bool:
        """The channel agents: each unread send through the dispatcher; False when none was."""
        assert self._dispatcher is not None
        handled = False
        for channel in CHANNELS:
            for record in self.broker.poll(send_topic(channel)):
                send = Send.model_validate_json(record.value)
                result = dispatch(self._dispatcher, send, self.clock.now)
                for event in result.outcomes:
                    self.broker.send(CUSTOMER_EVENTS, send.customer_key.encode(), event.to_json())
                if result.forward is not None:
                    forward = result.forward
                    value = forward.to_json()
                    self.broker.send(send_topic(forward.channel), record.key, value)
                for observer in self.dispatch_observers:
                    observer(self.clock.now, send, result)
                record.ack()
                handled = True
        return handled

    def handle(self, record: MemoryRecord) -> None:
        """The customer agent's step for one record of ``omni.customer-events``."""
        if record.key is None:
            self.rejected.append(Rejected(record, "no_key", "customer inputs must be keyed"))
            return
        key = record.key.decode()
        if is_identity_message(record.value):
            self._identity(record, key)
            return
        target = resolve(key, self.aliases.get(key))
        if target is not None:  # merged away: follow the alias, as the worker forwards
            self.broker.send(CUSTOMER_EVENTS, target.encode(), record.value)
            return
        try:
            event = parse_event(record.value)
        except EventError as exc:
            self.rejected.append(Rejected(record, exc.reason, exc.detail))
            return
        state = self.row(key) or CustomerState(key=key)
        new_state, commands = step(self.catalog, state, event, self.clock.now)
        for observer in self.observers:  # a repeated event id too: the timeline shows it
            observer(event, state, new_state, commands)
        if new_state is state:  # a repeated event id: nothing to write or do
            return
        new_state, claims, releases = claims_for(new_state, event)
        self.customers[record.key] = new_state.to_bytes()
        self._execute(commands)
        self._publish([*claims, *releases])

    def _publish(self, messages: Iterable[Claim | Release]) -> None:
        for message in messages:
            value = message.model_dump_json().encode()
            self.broker.send(CUSTOMER_EVENTS, message.identifier.encode(), value)

    def _identity(self, record: MemoryRecord, key: str) -> None:
        """Claims, releases and merges, by the pure rules, as ``runtime/identity.py`` does."""
        try:
            message = parse_identity_message(record.value)
        except ValidationError as exc:
            self.rejected.append(Rejected(record, "invalid_identity_message", str(exc)[:500]))
            return
        if isinstance(message, Claim):
            self._claim(key, message)
        elif isinstance(message, Release):
            remove_alias, remove_row = decide_release(self.aliases.get(key), message)
            if remove_alias:
                self.aliases.pop(key, None)
            if remove_row:
                self._delete_row(key)
        elif isinstance(message, MergeRequest):
            result = merge(self.row(key) or CustomerState(key=key), message.state)
            self._execute(result.commands)
            self._publish([*result.claims, *result.releases])
            self.customers[key.encode()] = result.state.to_bytes()
        else:
            self.rejected.append(Rejected(record, "unknown_kind", record.value[:60].decode()))

    def _claim(self, key: str, claim: Claim) -> None:
        decision = decide_claim(self.aliases.get(key), self.row(key), claim)
        if not decision.accepted:
            return
        handover = decision.handover
        if handover is not None:  # the row moves to the claimant as a merge request
            value = handover.model_dump_json().encode()
            self.broker.send(CUSTOMER_EVENTS, handover.into.encode(), value)
        if decision.alias is not None:
            self.aliases[key] = decision.alias
        if handover is not None:
            self._delete_row(key)

    def _delete_row(self, key: str) -> None:
        self.customers.pop(key.encode(), None)
        self.timers.drop_customer(key)

    def _execute(self, commands: Iterable[Command]) -> None:
        for command in commands:
            if isinstance(command, Send):
                self.broker.send(
                    send_topic(command.channel), command.customer_key.encode(), command.to_json()
                )
            elif isinstance(command, ScheduleTimer):
                self.timers.schedule(command.customer_key, command.timer_id, command.due)
            elif isinstance(command, CancelTimer):
                self.timers.cancel(command.customer_key, command.timer_id)
