"""Message templates: Liquid (python-liquid) in a bounded sandbox, compiled once at load.

Liquid is what authors of Braze, Customer.io, Knock and Dittofeed already write, and it exposes
no Python object model: templates see plain JSON data (``profile``, ``event``, ``trigger``,
``vars``, ``journey``). Resource limits cap loops, output and context depth so a template can
never stall the engine or balloon a message; Jinja2's sandbox, by contrast, let a template build
a 100 MB string. Templates cannot include other files (no loader, and the tags are refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from liquid import Environment
from liquid.exceptions import LiquidError

from omnistream.journey.expr import ROOTS, HintedError, suggest

__all__ = ["MAX_OUTPUT", "MAX_TEMPLATE", "Template", "TemplateError", "compile_template"]

MAX_TEMPLATE: Final = 16 * 1024
MAX_OUTPUT: Final = 64 * 1024
_FORBIDDEN_TAGS: Final = frozenset({"include", "render", "macro", "call", "extends", "block"})


class _Sandbox(Environment):
    """A Liquid environment with every resource limit python-liquid offers set."""

    context_depth_limit: ClassVar[int] = 10
    loop_iteration_limit: ClassVar[int | None] = 1000
    local_namespace_limit: ClassVar[int | None] = 64 * 1024
    output_stream_limit: ClassVar[int | None] = MAX_OUTPUT


_ENV: Final = _Sandbox()


class TemplateError(HintedError):
    """A template that does not parse or refers to something that cannot exist."""


def _first_line(exc: LiquidError) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Template:
    """A compiled template; ``render`` raises ``TemplateError`` when a limit is hit."""

    __slots__ = ("_bound", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._bound = _ENV.from_string(source) if "{" in source else None

    def render(self, context: Mapping[str, Any]) -> str:
        if self._bound is None:
            return self.source
        try:
            return self._bound.render(**context)
        except LiquidError as exc:
            raise TemplateError(f"template failed: {_first_line(exc)}") from None

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def compile_template(source: str) -> Template:
    """Parse ``source`` and check its tags, filters and root variables."""
    if not isinstance(source, str):
        raise TemplateError(f"a template must be a string, got {type(source).__name__}")
    if len(source) > MAX_TEMPLATE:
        raise TemplateError(f"template longer than {MAX_TEMPLATE} characters")
    try:
        template = Template(source)
    except LiquidError as exc:
        raise TemplateError(f"invalid template: {_first_line(exc)}") from None
    bound = template._bound
    if bound is None:
        return template
    for tag in bound.tag_names(include_partials=False):
        if tag in _FORBIDDEN_TAGS:
            raise TemplateError(f"the {tag!r} tag is not allowed in messages")
    for name in bound.filter_names(include_partials=False):
        if name not in _ENV.filters:
            raise TemplateError(f"unknown filter {name!r}", suggest(name, _ENV.filters))
    for root in bound.global_variables(include_partials=False):
        if root not in ROOTS:
            raise TemplateError(f"unknown variable {root!r}", suggest(root, ROOTS))
    return template
