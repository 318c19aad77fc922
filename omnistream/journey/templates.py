"""Message templates: Liquid (python-liquid) in a bounded sandbox, compiled once at load.

Liquid is what authors of Braze, Customer.io, Knock and Dittofeed already write, and it exposes
no Python object model: templates see plain JSON data (``profile``, ``event``, ``trigger``,
``vars``, ``journey``). Resource limits cap loops, output and context depth so a template can
never stall the engine or balloon a message; Jinja2's sandbox, by contrast, let a template build
a 100 MB string. Templates cannot include other files (no loader, and the tags are refused).

python-liquid's limits do not cover sizes that come from data *inside* a filter:
``(1..event.properties.n) | join: ","`` built a billion-item string before the output limit
could see it. So every filter is wrapped: a range or list of more than ``MAX_ITEMS`` items (the
loop limit) is refused as input, the filters that multiply sizes (``join``, ``replace``) have
their result's length computed before they run, and any string a filter returns is held to
``MAX_OUTPUT``. Each check costs O(1) or one pass over a bounded input, so a refusal is as quick
as a success.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from liquid import Environment
from liquid.exceptions import LiquidError, ResourceLimitError

from omnistream.journey.expr import ROOTS, HintedError, suggest

__all__ = [
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_TEMPLATE",
    "Template",
    "TemplateError",
    "compile_template",
]

MAX_TEMPLATE: Final = 16 * 1024
MAX_OUTPUT: Final = 64 * 1024
MAX_ITEMS: Final = 1000
"""Longest range or list a filter accepts: the loop iteration limit, so no filter does more."""
_FORBIDDEN_TAGS: Final = frozenset({"include", "render", "macro", "call", "extends", "block"})


class FilterSizeError(ResourceLimitError):
    """A filter's input or result is larger than the sandbox allows."""


def _text(value: object) -> str:
    """A value as a string filter sees it (python-liquid's ``string_filter`` coercion)."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def _check_items(value: object) -> None:
    if isinstance(value, range | list | tuple) and len(value) > MAX_ITEMS:
        kind = "range" if isinstance(value, range) else "list"
        raise FilterSizeError(
            f"a {kind} of {len(value)} items is longer than {MAX_ITEMS}", token=None
        )


def _check_length(length: int) -> None:
    if length > MAX_OUTPUT:
        raise FilterSizeError(f"a filter result longer than {MAX_OUTPUT} characters", token=None)


def _join_length(left: object, separator: object = " ", *_: object) -> int:
    if not isinstance(left, range | list | tuple):
        return 0  # python-liquid joins other values as they are: no growth
    items = sum(len(_text(item)) for item in left)
    return items + max(len(left) - 1, 0) * len(_text(separator))


def _replace_length(value: object, old: object = "", new: object = "", *_: object) -> int:
    text, old_text, new_text = _text(value), _text(old), _text(new)
    count = text.count(old_text) if old_text else len(text) + 1
    return len(text) + count * max(len(new_text) - len(old_text), 0)


_RESULT_LENGTH: Final[dict[str, Callable[..., int]]] = {
    "join": _join_length,
    "replace": _replace_length,
}
"""Filters whose result can be many times their input, with the result's length beforehand."""


def _bounded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its inputs and result held to the sandbox's sizes.

    ``functools.wraps`` copies python-liquid's markers (``with_environment``), so the filter is
    still called the way python-liquid expects.
    """
    length_of = _RESULT_LENGTH.get(name)

    @functools.wraps(func)
    def bounded(left: object, *args: object, **kwargs: object) -> Any:
        for value in (left, *args, *kwargs.values()):
            _check_items(value)
        if length_of is not None:
            _check_length(length_of(left, *args))
        result = func(left, *args, **kwargs)
        if isinstance(result, str):
            _check_length(len(result))
        return result

    return bounded


class _Sandbox(Environment):
    """A Liquid environment with every resource limit python-liquid offers set, and filters
    bounded by ``_bounded``."""

    context_depth_limit: ClassVar[int] = 10
    loop_iteration_limit: ClassVar[int | None] = MAX_ITEMS
    local_namespace_limit: ClassVar[int | None] = 64 * 1024
    output_stream_limit: ClassVar[int | None] = MAX_OUTPUT

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        self.filters = {name: _bounded(name, func) for name, func in self.filters.items()}


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
        """Render, or raise ``TemplateError``: never anything else, since data the author did
        not foresee (an integer too long to print, a wrong type in a filter) must fail this one
        message, not the customer's whole input."""
        if self._bound is None:
            return self.source
        try:
            return self._bound.render(**context)
        except LiquidError as exc:
            raise TemplateError(f"template failed: {_first_line(exc)}") from None
        except (ArithmeticError, LookupError, RecursionError, TypeError, ValueError) as exc:
            raise TemplateError(f"template failed: {type(exc).__name__}: {exc}"[:300]) from None

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
