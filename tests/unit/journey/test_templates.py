from __future__ import annotations

import pytest

from omnistream.journey.templates import TemplateError, compile_template


def test_renders_profile_and_event_with_filters() -> None:
    template = compile_template(
        "Hi {{ profile.traits.first_name | default: 'friend' }}, "
        "{% for i in event.properties.items %}{{ i.name | upcase }} {% endfor %}"
    )
    text = template.render(
        {"profile": {"traits": {}}, "event": {"properties": {"items": [{"name": "a"}]}}}
    )
    assert text == "Hi friend, A "


def test_plain_text_needs_no_liquid() -> None:
    assert compile_template("No markup here.").render({}) == "No markup here."


@pytest.mark.parametrize(
    ("source", "fragment", "hint"),
    [
        ("{{ profil.traits.x }}", "unknown variable 'profil'", "did you mean 'profile'?"),
        ("{{ event.type | upcse }}", "unknown filter 'upcse'", "did you mean 'upcase'?"),
        ('{% include "secrets" %}', "the 'include' tag is not allowed", None),
        ("{% if event %}never closed", "invalid template", None),
    ],
)
def test_load_time_errors(source: str, fragment: str, hint: str | None) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    assert fragment in caught.value.message
    assert caught.value.hint == hint


def test_resource_limits_stop_runaway_templates() -> None:
    loop = compile_template("{% for i in (1..100000) %}x{% endfor %}")
    with pytest.raises(TemplateError, match="template failed"):
        loop.render({})
    big = compile_template("{% for i in (1..900) %}{{ event.properties.blob }}{% endfor %}")
    with pytest.raises(TemplateError, match="template failed"):
        big.render({"event": {"properties": {"blob": "y" * 1000}}})
