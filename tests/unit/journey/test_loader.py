from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path

import pytest

from omnistream.journey.loader import JourneyError, JourneyLoadError, load_catalog
from omnistream.journey.model import SendStep, WaitStep

LEGACY = """\
id: cart
name: Cart
status: active
trigger: {event: cart_updated}
steps:
  - id: remind
    type: send
    channels: [email]
    category: marketing
    content: {email: {subject: "Your cart", body: "Hi {{ profile.traits.first_name }}"}}
    next: other_step
  - id: other_step
    type: exit
"""


def load_one(tmp_path: Path, text: str) -> list[JourneyError]:
    (tmp_path / "j.yaml").write_text(textwrap.dedent(text))
    with pytest.raises(JourneyLoadError) as caught:
        load_catalog(tmp_path)
    assert all(e.file.endswith("j.yaml") for e in caught.value.errors)
    return caught.value.errors


def only(errors: list[JourneyError]) -> JourneyError:
    assert len(errors) == 1, errors
    return errors[0]


def test_the_documented_legacy_send_form_still_loads(tmp_path: Path) -> None:
    (tmp_path / "cart.yaml").write_text(LEGACY)
    catalog = load_catalog(tmp_path)
    journey = catalog.journeys["cart"]
    first = journey.first_step
    assert (
        isinstance(first, SendStep) and first.channels == ("email",) and first.next == "other_step"
    )
    assert len(journey.version) == 12
    assert catalog.triggered_by("cart_updated") == (journey,)


def test_sample_journeys_load() -> None:
    catalog = load_catalog(Path(__file__).resolve().parents[3] / "journeys")
    assert len(catalog.journeys) >= 8
    assert catalog.policies.quiet_hours is not None


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    errors = load_one(tmp_path, LEGACY.replace("    channels:", "    chanels:"))
    assert any(e.message == "steps.0.send.channels: Field required" for e in errors)
    error = next(e for e in errors if "chanels" in e.message)
    assert error.line == 8
    assert "unknown key 'chanels'" in error.message
    assert error.hint == "did you mean 'channels'?"


def test_unknown_target_and_unreachable_step(tmp_path: Path) -> None:
    errors = load_one(tmp_path, LEGACY.replace("next: other_step", "next: other_stp"))
    by_message = {e.message: e for e in errors}
    target = next(e for m, e in by_message.items() if "unknown step 'other_stp'" in m)
    assert target.line == 11 and target.hint == "did you mean 'other_step'?"
    assert any("unreachable" in m and e.line == 12 for m, e in by_message.items())


def test_unknown_channel_suggests(tmp_path: Path) -> None:
    error = load_one(tmp_path, LEGACY.replace("channels: [email]", "channels: [emial]"))[0]
    assert error.line == 8
    assert "unknown channel 'emial'" in error.message
    assert error.hint == "did you mean 'email'?"


def test_unknown_step_type_suggests(tmp_path: Path) -> None:
    error = only(load_one(tmp_path, LEGACY.replace("type: exit", "type: exti")))
    assert error.line == 12 and "unknown step type 'exti'" in error.message
    assert error.hint == "did you mean 'exit'?"


def test_invalid_expression_and_template_point_at_their_lines(tmp_path: Path) -> None:
    text = LEGACY.replace(
        "trigger: {event: cart_updated}",
        "trigger:\n  event: cart_updated\n  when: event.propertes.total > 1",
    ).replace("{{ profile.traits.first_name }}", "{{ profile.traits.first_name | upcse }}")
    errors = sorted(load_one(tmp_path, text), key=lambda e: e.line)
    assert [e.line for e in errors] == [6, 12]
    assert "event has no field 'propertes'" in errors[0].message
    assert errors[0].hint == "did you mean 'properties'?"
    assert "unknown filter 'upcse'" in errors[1].message
    assert str(errors[1]).startswith(f"{tmp_path / 'j.yaml'}:12: ")


def test_loop_without_a_wait_is_an_error_but_a_loop_with_one_is_fine(tmp_path: Path) -> None:
    looping = textwrap.dedent(
        """\
        id: loop
        name: Loop
        trigger: {event: x}
        steps:
          - {id: a, type: branch, branches: [{when: "true", next: b}], else: b}
          - {id: b, type: update_profile, increment: {n: 1}, next: a}
        """
    )
    error = only(load_one(tmp_path, looping))
    assert "loop without a wait: a -> b -> a" in error.message
    assert error.hint is not None
    waiting = looping.replace(
        "next: a}", "next: w}\n  - {id: w, type: wait, duration: 1d, next: a}"
    )
    (tmp_path / "j.yaml").write_text(waiting)
    assert "loop" in load_catalog(tmp_path).journeys


def test_yaml_hardening(tmp_path: Path) -> None:
    alias = LEGACY + "description: &x hello\nname2: *x\n"
    assert "anchors and aliases are not allowed" in only(load_one(tmp_path, alias)).message
    duplicate = LEGACY.replace("name: Cart", "name: Cart\nname: Again")
    error = only(load_one(tmp_path, duplicate))
    assert error.line == 3 and "duplicate key 'name'" in error.message
    broken = only(load_one(tmp_path, "id: [unclosed\n"))
    assert "invalid YAML" in broken.message


def test_times_stay_times_of_day(tmp_path: Path) -> None:
    text = """\
    id: morning
    name: Morning
    trigger: {event: x}
    steps:
      - {id: w, type: wait, until: 10:00, days: [mon, tue]}
    """
    (tmp_path / "j.yaml").write_text(textwrap.dedent(text))
    step = load_catalog(tmp_path).journeys["morning"].first_step
    assert isinstance(step, WaitStep) and step.until == time(10, 0) and step.days == ("mon", "tue")


def test_errors_of_all_files_and_policies_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(LEGACY)
    (tmp_path / "b.yaml").write_text(LEGACY)  # same id
    (tmp_path / "c.yaml").write_text("id: c\n")
    (tmp_path / "policies.yaml").write_text("default_timezone: Mars/Olympus\n")
    with pytest.raises(JourneyLoadError) as caught:
        load_catalog(tmp_path)
    text = str(caught.value)
    assert "policies.yaml:1: default_timezone: unknown IANA time zone" in text
    assert "b.yaml:1: duplicate journey id 'cart'" in text
    assert "c.yaml:1: name: Field required" in text


@pytest.mark.parametrize(
    ("snippet", "fragment"),
    [
        ("trigger: {event: x, date: {trait: birthday}}", "exactly one of 'event' or 'date'"),
        ("trigger: {event: x, repeat: 2}", "'repeat' needs 'after'"),
        ("entry: {reentry: cooldown}", "cooldown"),
        ("entry: {control_percent: 120}", "less than or equal to 100"),
    ],
)
def test_rule_errors(tmp_path: Path, snippet: str, fragment: str) -> None:
    key = snippet.split(":")[0]
    text = LEGACY.replace("trigger: {event: cart_updated}", "") + snippet + "\n"
    if key == "entry":
        text += "trigger: {event: cart_updated}\n"
    assert any(fragment in e.message for e in load_one(tmp_path, text))
