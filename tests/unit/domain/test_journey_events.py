"""The journey event stream's mapping: engine commands and outcome events -> records."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from omnistream.domain.commands import Emit, Send
from omnistream.domain.events import Event, key_fields
from omnistream.domain.journey_events import (
    Cause,
    JourneyEvent,
    journey_event_json_schema,
    journey_events,
)
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.event_lookup import CatalogLookup
from omnistream.journey.model import Catalog
from tests.unit.journey.helpers import T0, catalog_of, ev, outcome

JOURNEY = """
id: promo
name: Promo
trigger: {event: signed_up}
goal: {event: order_placed}
steps:
  - id: pick
    type: split
    paths:
      - {name: sms_first, weight: 50, next: texted}
      - {name: mail_first, weight: 50, next: mailed}
  - id: texted
    type: send
    category: transactional
    channels: [sms, email]
    content:
      sms: {body: "Hi"}
      email: {subject: "Hi", body: "Hi"}
    next: hold
  - id: mailed
    type: send
    category: transactional
    channels: [email]
    content:
      email: {subject: "Hi", body: "Hi"}
    next: hold
  - id: hold
    type: wait_for
    event: order_placed
    timeout: 1d
"""
POLICIES = """
channel_costs: {sms: 0.05, email: 0.0001}
cost_currency: USD
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return catalog_of(tmp_path, JOURNEY, policies=POLICIES)


def run(
    catalog: Catalog, state: CustomerState, event: Event, at: object = T0
) -> tuple[CustomerState, list[JourneyEvent]]:
    new, commands = step(catalog, state, event, T0)
    cause = Cause(state.key, T0, event, before=state, after=new)
    return new, journey_events(commands, cause, CatalogLookup(catalog))


def sent_send(catalog: Catalog, key: str = "c1") -> tuple[CustomerState, Send]:
    state = CustomerState(key=key)
    new, commands = step(catalog, state, ev("signed_up", key=key), T0)
    send = next(c for c in commands if isinstance(c, Send))
    return new, send


def test_entry_split_and_send_become_records_in_command_order(catalog: Catalog) -> None:
    state = CustomerState(key="c1")
    new, records = run(catalog, state, ev("signed_up"))
    kinds = [(r.kind, r.step_id) for r in records]
    assert kinds[0] == ("entered", None)
    assert ("step", "pick") in kinds
    assert [r.kind for r in records].count("send") == 1
    (instance,) = new.instances.values()
    for record in records:
        assert record.journey_id == "promo"
        assert record.journey_version == instance.version
        assert record.instance_id == instance.instance_id
        assert record.customer_key == "c1" and record.control is False
        assert record.at == T0 and record.caused_by is not None
    split = next(r for r in records if r.step_id == "pick")
    send = next(r for r in records if r.kind == "send")
    assert split.path in ("sms_first", "mail_first")
    assert send.step_id == ("texted" if split.path == "sms_first" else "mailed")
    assert send.send_id is not None and send.channel in ("sms", "email")


def test_record_ids_are_deterministic_and_distinct(catalog: Catalog) -> None:
    state = CustomerState(key="c1")
    event = ev("signed_up")
    _, first = run(catalog, state, event)
    _, again = run(catalog, state, event)  # a replay of the same input on the same row
    assert [r.record_id for r in first] == [r.record_id for r in again]
    assert len({r.record_id for r in first}) == len(first)
    _, other = run(catalog, CustomerState(key="c2"), event)
    assert not {r.record_id for r in first} & {r.record_id for r in other}


def test_sent_outcome_carries_the_channel_price(catalog: Catalog) -> None:
    state, send = sent_send(catalog)
    later = T0 + timedelta(seconds=3)
    _, records = run(catalog, state, outcome("message_sent", send, later))
    (record,) = records
    assert (record.kind, record.outcome, record.channel) == ("outcome", "sent", send.channel)
    assert record.cost == {"sms": 0.05, "email": 0.0001}[send.channel]
    assert record.currency == "USD"
    assert record.at == later  # an outcome is dated by its event
    assert record.journey_version == send.journey_version and record.step_id == send.step_id


def test_a_cap_suppression_is_capped_and_a_fallback_keeps_its_reason(catalog: Catalog) -> None:
    state, send = sent_send(catalog)
    _, capped = run(catalog, state, outcome("message_suppressed", send, T0, reason="cap_channel"))
    assert capped[0].outcome == "capped" and capped[0].reason == "cap_channel"
    assert capped[0].cost is None
    _, plain = run(catalog, state, outcome("message_suppressed", send, T0, reason="no_consent"))
    assert plain[0].outcome == "suppressed"
    fallback = outcome("message_fallback", send, T0, reason="cap_global", to_channel="email")
    _, records = run(catalog, state, fallback)
    assert records[0].outcome == "fallback" and records[0].attributes["to_channel"] == "email"


def receipt(send: Send, kind: str, send_id: str | None = None) -> Event:
    return Event(
        event_id=f"rcpt.{kind}.{send_id or send.send_id}"[:60],
        type=kind,
        source="omnistream",
        timestamp=T0,
        properties={"send_id": send_id or send.send_id, "provider": "webhook"},
        **key_fields(send.customer_key),
    )


ENGAGE = """
id: nudge
name: Nudge
trigger: {event: signed_up}
steps:
  - id: push
    type: send
    category: transactional
    channels: [sms, email]
    content:
      sms: {body: "Hi"}
      email: {subject: "Hi", body: "Hi"}
    engagement_fallback: {within: 1h}
"""


def test_a_receipt_is_attributed_through_the_instance_that_sent_it(tmp_path: Path) -> None:
    """Receipts name only the send: the instance still waiting for engagement holds it."""
    catalog = catalog_of(tmp_path, ENGAGE, policies=POLICIES)
    state, send = sent_send(catalog)
    _, records = run(catalog, state, receipt(send, "message_opened"))
    record = records[0]  # then the engagement moves the instance on: step, exited
    assert [r.kind for r in records] == ["outcome", "step", "exited"]
    assert record.outcome == "opened" and record.journey_id == "nudge"
    assert record.instance_id == send.instance_id and record.step_id == send.step_id
    assert record.channel == send.channel


def test_a_receipt_for_a_send_no_instance_holds_has_no_journey(catalog: Catalog) -> None:
    state, send = sent_send(catalog)
    _, records = run(catalog, state, receipt(send, "message_clicked", send_id="gone"))
    (record,) = records
    assert record.outcome == "clicked" and record.journey_id is None
    assert record.send_id == "gone"


def test_goal_carries_the_customers_split_path(catalog: Catalog) -> None:
    paths = {}
    for key in ("c1", "c2", "c3", "c4", "c5", "c6"):
        state = CustomerState(key=key)
        state, entered = run(catalog, state, ev("signed_up", key=key))
        chosen = next(r.path for r in entered if r.step_id == "pick")
        _, records = run(catalog, state, ev("order_placed", key=key))
        goal = next(r for r in records if r.kind == "goal")
        assert goal.path == chosen  # the lookup recomputes what the engine chose
        paths[key] = chosen
    assert set(paths.values()) == {"sms_first", "mail_first"}


def test_control_instances_are_flagged(tmp_path: Path) -> None:
    text = JOURNEY.replace("goal:", "entry: {control_percent: 100}\ngoal:")
    catalog = catalog_of(tmp_path, text, policies=POLICIES)
    _, records = run(catalog, CustomerState(key="c1"), ev("signed_up"))
    assert records and all(r.control is True for r in records)
    assert not [r for r in records if r.kind == "send"]


def test_merges_without_an_event_get_ids_from_the_instance(catalog: Catalog) -> None:
    emit = Emit(
        name="journey_exited",
        journey_id="promo",
        step_id="hold",
        reason="merged",
        attributes={"instance_id": "promo:1"},
    )
    cause = Cause("c1", T0)
    (one,) = journey_events([emit], cause, CatalogLookup(catalog))
    (two,) = journey_events([emit], Cause("c1", T0 + timedelta(hours=1)), CatalogLookup(catalog))
    assert one.record_id == two.record_id and one.caused_by is None
    assert one.journey_version == catalog.journeys["promo"].version


def test_schema_names_every_field_and_the_version() -> None:
    schema = journey_event_json_schema()
    for name in ("record_id", "journey_id", "journey_version", "step_id", "instance_id",
                 "control", "path", "channel", "send_id", "cost", "at", "reason",
                 "caused_by", "schema_version"):  # fmt: skip
        assert name in schema["properties"], name
    assert set(schema["properties"]["kind"]["enum"]) == {
        "entered", "step", "send", "outcome", "goal", "exited"
    }  # fmt: skip
