"""``trigger: {attribute_changed: {path, from, to}}``: enter when an event changes a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.profile import Orders, Profile
from omnistream.domain.state import CustomerState
from omnistream.journey.attributes import AttributeChanged
from omnistream.journey.engine import step
from omnistream.journey.loader import JourneyLoadError
from omnistream.journey.model import Catalog, journey_json_schema
from tests.unit.journey.helpers import T0, catalog_of, ev, sends

GOLD = """
id: gold
name: Welcome to gold
trigger:
  attribute_changed: {path: profile.traits.tier, from: silver, to: gold}
steps:
  - id: hello
    type: send
    channels: [email]
    content:
      email:
        subject: "Gold"
        body: >-
          {{ trigger.properties.from }} -> {{ trigger.properties.to }}
          by {{ trigger.properties.cause }}
"""


def journey_with(trigger: str) -> str:
    return f"""
id: j
name: J
trigger: {trigger}
steps:
  - id: s
    type: send
    channels: [email]
    content:
      email: {{subject: "S", body: "B"}}
"""


def tier(value: object | None) -> CustomerState:
    traits = {} if value is None else {"tier": value}
    return CustomerState(key="c1", profile=Profile(traits=traits))


def entered(commands: list[object]) -> list[str | None]:
    return [c.journey_id for c in commands if isinstance(c, Emit) and c.name == "journey_entered"]


def test_upgrade_enters_and_the_trigger_names_the_change(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, GOLD)
    _, commands = step(catalog, tier("silver"), ev("profile_updated", traits={"tier": "gold"}), T0)
    assert entered(commands) == ["gold"]
    (send,) = sends(commands)
    assert send.messages["email"].body == "silver -> gold by profile_updated"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("gold", "gold"),  # the same value again: no change, no entry
        ("gold", "silver"),  # a downgrade
        ("bronze", "gold"),  # to gold, but not from silver
        ("silver", "platinum"),  # from silver, but not to gold
    ],
)
def test_other_changes_do_not_enter(tmp_path: Path, before: str, after: str) -> None:
    catalog = catalog_of(tmp_path, GOLD)
    _, commands = step(catalog, tier(before), ev("profile_updated", traits={"tier": after}), T0)
    assert entered(commands) == []


def test_an_event_that_changes_nothing_is_not_judged(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, GOLD)
    _, commands = step(catalog, tier("silver"), ev("page_viewed"), T0)
    assert commands == []


def test_from_and_to_are_optional_and_lists_mean_any_of(tmp_path: Path) -> None:
    trigger = "{attribute_changed: {path: profile.traits.tier, to: [gold, platinum]}}"
    catalog = catalog_of(tmp_path, journey_with(trigger))
    for before, after, expected in [
        (None, "gold", ["j"]),
        ("bronze", "platinum", ["j"]),
        ("gold", "platinum", ["j"]),
        ("gold", "silver", []),
    ]:
        _, commands = step(catalog, tier(before), ev("identify", traits={"tier": after}), T0)
        assert entered(commands) == expected, (before, after)


def test_any_change_without_from_and_to(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, journey_with("{attribute_changed: {path: profile.traits.tier}}"))
    _, commands = step(catalog, tier("a"), ev("identify", traits={"tier": "b"}), T0)
    assert entered(commands) == ["j"]
    _, commands = step(catalog, tier("a"), ev("identify", traits={"tier": None}), T0)
    assert entered(commands) == ["j"]  # removed: a change to null


def test_from_null_means_first_set(tmp_path: Path) -> None:
    trigger = "{attribute_changed: {path: profile.traits.tier, from: null}}"
    catalog = catalog_of(tmp_path, journey_with(trigger))
    _, commands = step(catalog, tier(None), ev("identify", traits={"tier": "gold"}), T0)
    assert entered(commands) == ["j"]
    _, commands = step(catalog, tier("silver"), ev("identify", traits={"tier": "gold"}), T0)
    assert entered(commands) == []


def test_numbers_and_booleans_are_not_confused(tmp_path: Path) -> None:
    trigger = "{attribute_changed: {path: profile.traits.vip, to: 1}}"
    catalog = catalog_of(tmp_path, journey_with(trigger))
    _, commands = step(catalog, tier(None), ev("identify", traits={"vip": True}), T0)
    assert entered(commands) == []
    _, commands = step(catalog, tier(None), ev("identify", traits={"vip": 1}), T0)
    assert entered(commands) == ["j"]


def test_a_model_field_path_sees_the_json_value(tmp_path: Path) -> None:
    trigger = "{attribute_changed: {path: profile.orders.count, from: 0, to: 1}}"
    catalog = catalog_of(tmp_path, journey_with(trigger))
    first = ev("order_placed", order_id="o1", total=10)
    _, commands = step(catalog, CustomerState(key="c1"), first, T0)
    assert entered(commands) == ["j"]
    state = CustomerState(key="c1", profile=Profile(orders=Orders(count=1)))
    _, commands = step(catalog, state, ev("order_placed", order_id="o2", total=10), T0)
    assert entered(commands) == []


def test_paths_under_free_form_maps_take_any_key(tmp_path: Path) -> None:
    trigger = "{attribute_changed: {path: profile.engagement.email.opened, from: 0}}"
    catalog = catalog_of(tmp_path, journey_with(trigger))
    assert catalog.attribute_triggers


def test_when_sees_the_change(tmp_path: Path) -> None:
    trigger = (
        "{attribute_changed: {path: profile.traits.tier}, "
        'when: \'event.properties.to == "gold" and event.properties.cause == "identify"\'}'
    )
    catalog = catalog_of(tmp_path, journey_with(trigger))
    _, commands = step(catalog, tier("silver"), ev("identify", traits={"tier": "gold"}), T0)
    assert entered(commands) == ["j"]
    _, commands = step(catalog, tier("silver"), ev("signed_up", traits={"tier": "gold"}), T0)
    assert entered(commands) == []


def test_journey_steps_do_not_trigger_it(tmp_path: Path) -> None:
    setter = """
id: setter
name: Setter
trigger: {event: page_viewed}
steps:
  - {id: up, type: update_profile, set: {tier: gold}}
"""
    catalog = catalog_of(tmp_path, GOLD, setter)
    state, commands = step(catalog, tier("silver"), ev("page_viewed"), T0)
    assert state.profile.traits["tier"] == "gold"
    assert entered(commands) == ["setter"]


def test_only_active_journeys_are_listed(tmp_path: Path) -> None:
    paused = GOLD.replace("name: Welcome to gold", "name: Welcome to gold\nstatus: paused")
    assert catalog_of(tmp_path / "a", GOLD).attribute_triggers
    assert not catalog_of(tmp_path / "b", paused).attribute_triggers
    assert not Catalog().attribute_triggers


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("{attribute_changed: {path: traits.tier}}", "profile."),
        ("{attribute_changed: {path: profile.trait.tier}}", "unknown profile field 'trait'"),
        ("{attribute_changed: {path: profile.orders.cont}}", "unknown field 'cont' of orders"),
        ("{attribute_changed: {path: profile.traits._x}}", "profile."),
        ("{attribute_changed: {path: profile.addresses.email}}", "contact details"),
        ("{attribute_changed: {path: profile.traits.tier, from: a, to: a}}", "never"),
        ("{attribute_changed: {path: profile.traits.tier, to: []}}", "at least 1"),
        ("{attribute_changed: {path: profile.traits.tier, to: {a: 1}}}", "to"),
        ("{attribute_changed: {path: profile.traits.tier, form: a}}", "form"),
        ("{attribute_changed: {path: profile.traits.tier}, event: x}", "exactly one"),
        ("{attribute_changed: {path: profile.traits.tier}, after: 1d}", "'after'"),
    ],
)
def test_bad_triggers_are_load_errors(tmp_path: Path, trigger: str, message: str) -> None:
    with pytest.raises(JourneyLoadError) as info:
        catalog_of(tmp_path, journey_with(trigger))
    assert message in str(info.value)


def test_model_round_trip_keeps_from_omitted_vs_null() -> None:
    omitted = AttributeChanged.model_validate({"path": "profile.traits.tier", "to": "gold"})
    null = AttributeChanged.model_validate({"path": "profile.traits.tier", "from": None})
    assert omitted.matches(None, "gold") and omitted.matches("silver", "gold")
    assert null.matches(None, "gold") and not null.matches("silver", "gold")
    dumped = omitted.model_dump(by_alias=True, exclude_unset=True)
    assert dumped == {"path": "profile.traits.tier", "to": "gold"}


def test_the_published_schema_knows_the_trigger() -> None:
    trigger = journey_json_schema()["$defs"]["Trigger"]["properties"]
    assert "attribute_changed" in trigger
