"""Version pinning (issue 18): who entered v1 stays on v1 after the file is edited.

The issue's case: v1 waits 2 days and offers to everyone; v2 waits 1 hour and keeps a VIP-only
branch. A customer in v1's wait used to be moved to v2 at the same step id and exit ``not_vip``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog, Journey
from omnistream.journey.versions import VersionsError, restore_versions, save_versions
from tests.unit.journey.helpers import T0, catalog_of, ev, fire_next, hours, sends

V1 = """
id: offer
name: Offer
trigger: {event: x}
steps:
  - {id: wait, type: wait, duration: 2d, next: offer}
  - {id: offer, type: send, channels: [email], content: {email: {body: "v1 offer"}}}
"""
V2 = """
id: offer
name: Offer
trigger: {event: x}
steps:
  - {id: wait, type: wait, duration: 1h, next: vip}
  - id: vip
    type: branch
    branches: [{when: '"vip" in profile.traits.tags', next: offer}]
    else: not_vip
  - {id: offer, type: send, channels: [email], content: {email: {body: "v2 offer"}}}
  - {id: not_vip, type: exit, reason: not_vip}
"""


def emitted(commands: list[object], name: str) -> list[Emit]:
    return [c for c in commands if isinstance(c, Emit) and c.name == name]


def entered_v1(tmp_path: Path) -> tuple[Catalog, CustomerState]:
    v1 = catalog_of(tmp_path / "v1", V1)
    state, _ = step(v1, CustomerState(key="c1"), ev("x"), T0)
    return v1, state


def test_an_instance_stays_on_the_version_it_entered(tmp_path: Path) -> None:
    v1, state = entered_v1(tmp_path)
    v2 = catalog_of(tmp_path / "v2", V2).carry_over(v1)
    v1_version, v2_version = v1.journeys["offer"].version, v2.journeys["offer"].version
    assert set(v2.version_rows()) == {
        ("offer", v2_version, "current"),
        ("offer", v1_version, "retained"),
    }
    state, commands = fire_next(v2, state)
    assert state.instances == {}
    (send,) = sends(commands)  # v1's 2-day wait ran out and v1's offer went out
    assert send.messages["email"].body == "v1 offer"
    assert send.caused_at == T0 + hours(48)
    assert send.journey_version == v1_version
    assert [e.reason for e in emitted(commands, "journey_exited")] == ["completed"]
    assert not [e for e in emitted(commands, "journey_step") if e.reason == "version_changed"]


def test_new_entries_take_the_current_version(tmp_path: Path) -> None:
    v1, _ = entered_v1(tmp_path)
    v2 = catalog_of(tmp_path / "v2", V2).carry_over(v1)
    state, _ = step(v2, CustomerState(key="c2"), ev("x", key="c2"), T0)
    (instance,) = state.instances.values()
    assert instance.version == v2.journeys["offer"].version
    state, commands = fire_next(v2, state)
    assert [e.reason for e in emitted(commands, "journey_exited")] == ["not_vip"]


def test_migrate_rule_moves_people_when_their_wait_ends(tmp_path: Path) -> None:
    v1, state = entered_v1(tmp_path)
    migrating = V2.replace("  - id: vip\n", "  - id: vip\n    migrate: {from: [wait]}\n")
    v2 = catalog_of(tmp_path / "v2", migrating).carry_over(v1)
    state, commands = fire_next(v2, state)
    assert state.instances == {} and not sends(commands)
    (moved,) = [e for e in emitted(commands, "journey_step") if e.reason == "migrated"]
    assert moved.attributes["to"] == v2.journeys["offer"].version
    assert moved.attributes["at"] == "wait" and moved.step_id == "vip"
    assert [e.reason for e in emitted(commands, "journey_exited")] == ["not_vip"]


def test_migrate_true_resumes_the_same_step_on_the_new_version(tmp_path: Path) -> None:
    v1, state = entered_v1(tmp_path)
    text = V1.replace("v1 offer", "v2 offer").replace(
        "{id: offer, type: send,", "{id: offer, migrate: true, type: send,"
    )
    text = text.replace("next: offer}", "next: offer, migrate: true}")
    v2 = catalog_of(tmp_path / "v2", text).carry_over(v1)
    state, commands = fire_next(v2, state)
    (send,) = sends(commands)
    assert send.messages["email"].body == "v2 offer"


def test_a_restart_keeps_pinned_versions_through_the_saved_file(tmp_path: Path) -> None:
    v1, state = entered_v1(tmp_path)
    running = catalog_of(tmp_path / "v2", V2).carry_over(v1)
    path = tmp_path / "journeys.versions.json"
    save_versions(running, path)
    restarted = restore_versions(catalog_of(tmp_path / "v2b", V2), path)
    assert restarted.version_rows() == running.version_rows()
    _, commands = fire_next(restarted, state)
    assert [s.messages["email"].body for s in sends(commands)] == ["v1 offer"]


def test_without_the_version_the_instance_moves_at_the_same_step(tmp_path: Path) -> None:
    _, state = entered_v1(tmp_path)
    v2 = catalog_of(tmp_path / "v2", V2)  # no carry_over: v1 is gone (old behaviour)
    _, commands = fire_next(v2, state)
    assert [e.reason for e in emitted(commands, "journey_step") if e.reason] == ["version_changed"]
    assert [e.reason for e in emitted(commands, "journey_exited")] == ["not_vip"]


def test_retained_versions_are_bounded_and_dropped_with_their_journey(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path / "0", V1)
    for i in range(1, 5):
        edited = catalog_of(tmp_path / str(i), V1.replace("v1 offer", f"offer {i}"))
        catalog = edited.carry_over(catalog, keep=2)
    assert len(catalog.retained) == 2
    other = catalog_of(tmp_path / "other", V1.replace("id: offer\n", "id: other\n"))
    assert other.carry_over(catalog).retained == {}


def test_an_unreadable_versions_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "journeys.versions.json"
    path.write_text("{not json")
    with pytest.raises(VersionsError, match=r"journeys\.versions\.json"):
        restore_versions(catalog_of(tmp_path / "v", V1), path)
    assert restore_versions(catalog_of(tmp_path / "w", V1), tmp_path / "absent") is not None


def test_every_sample_journey_survives_the_versions_file(tmp_path: Path) -> None:
    samples = load_catalog(Path(__file__).resolve().parents[3] / "journeys")
    path = tmp_path / "journeys.versions.json"
    save_versions(samples, path)
    data = orjson.loads(path.read_bytes())
    for item in data["journeys"]:
        journey = Journey.model_validate(item)
        original = samples.journeys[journey.id]
        assert journey.version == original.version
        assert journey.model_dump(mode="json") == original.model_dump(mode="json")
