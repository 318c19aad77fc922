from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from omnistream.domain.commands import Emit
from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.journey.templates import TemplateError, compile_template

from .helpers import T0, catalog_of, ev, sends


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


# --- sizes that come from event data are bounded (issue 15.7) --------------------------------

JOIN_RANGE = '{{ (1..event.properties.n) | join: "," }}'


def test_a_short_range_still_joins() -> None:
    out = compile_template(JOIN_RANGE).render({"event": {"properties": {"n": 5}}})
    assert out == "1,2,3,4,5"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n", [1001, 10**7, 10**9])
def test_a_range_sized_by_event_data_fails_fast_and_small(n: int) -> None:
    template = compile_template(JOIN_RANGE)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateError, match=r"range of \d+ items is longer than 1000"):
            template.render({"event": {"properties": {"n": n}}})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 1_000_000


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "source",
    [
        # a 10 KB string, each character replaced by the whole string: 100 MB unchecked
        "{{ event.properties.s | replace: 'a', event.properties.s }}",
        # 1000 items joined with a 10 KB separator: 10 MB unchecked
        "{{ event.properties.items | join: event.properties.s }}",
    ],
)
def test_filters_that_multiply_sizes_are_refused_before_they_run(source: str) -> None:
    context = {"event": {"properties": {"s": "a" * 10_000, "items": list(range(1000))}}}
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateError, match="longer than 65536 characters"):
            compile_template(source).render(context)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 5_000_000


def test_a_too_long_sequence_given_to_a_filter_is_refused() -> None:
    template = compile_template("{{ event.properties.items | sort | first }}")
    assert template.render({"event": {"properties": {"items": [3, 1, 2]}}}) == "1"
    with pytest.raises(TemplateError, match="list of 1001 items is longer than 1000"):
        template.render({"event": {"properties": {"items": list(range(1001))}}})


def test_a_render_over_the_limit_exits_the_instance_with_template_error(tmp_path: Path) -> None:
    catalog = catalog_of(
        tmp_path,
        """\
        id: big
        name: Big
        trigger: {event: signed_up}
        steps:
          - id: hello
            type: send
            channels: [email]
            category: transactional
            content:
              email: {subject: "Hi", body: '{{ (1..event.properties.n) | join: "," }}'}
        """,
    )
    started = time.perf_counter()
    _, commands = step(catalog, CustomerState(key="c1"), ev("signed_up", n=10**9), T0)
    assert time.perf_counter() - started < 0.5
    assert not sends(commands)
    exits = [c for c in commands if isinstance(c, Emit) and c.name == "journey_exited"]
    assert [e.reason for e in exits] == ["template_error"]
    assert "longer than 1000" in str(exits[0].attributes["error"])


def test_data_a_filter_cannot_handle_fails_the_render_not_the_worker() -> None:
    squares = "{% assign x = 10 %}{% for i in (1..14) %}{% assign x = x | times: x %}{% endfor %}"
    with pytest.raises(TemplateError, match="ValueError: Exceeds the limit"):
        compile_template(squares + "{{ x }}").render({})  # 16,385 digits: str() refuses
