"""HTML building with escaping by default: the console's only templating.

Jinja2 is not a dependency (pyproject), and the pages are small, so they are Python functions
that return ``Markup``. The rule that keeps customer data inert: every value that is not already
``Markup`` is escaped (``html.escape`` with quotes) when it is put into markup, whether as text
or as an attribute. A profile name ``<script>`` therefore reaches the browser as
``&lt;script&gt;``. Only this module and literal strings in the views make ``Markup``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["Markup", "attrs", "esc", "join", "page", "tag"]

STYLESHEET: Final = "/console/static/console.css"
VOID: Final = frozenset({"br", "input", "meta", "link", "img", "hr"})


class Markup(str):
    """A string that is already safe HTML (not escaped again)."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """``value`` as safe HTML: ``Markup`` unchanged, ``None`` empty, anything else escaped."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


def attrs(values: Mapping[str, object]) -> Markup:
    """`` name="value"`` pairs, escaped; ``None`` and ``False`` values are left out."""
    parts = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        parts.append(f' {name}="{esc("" if value is True else value)}"')
    return Markup("".join(parts))


def tag(name: str, /, *children: object, **attributes: object) -> Markup:
    """``<name attrs>children</name>``; ``class_`` and ``data_x`` become ``class`` / ``data-x``."""
    named = {key.rstrip("_").replace("_", "-"): value for key, value in attributes.items()}
    if name in VOID:
        return Markup(f"<{name}{attrs(named)}>")
    return Markup(f"<{name}{attrs(named)}>{join(children)}</{name}>")


def join(children: Iterable[object]) -> Markup:
    """Children escaped and concatenated."""
    return Markup("".join(esc(child) for child in children))


def page(title: str, *body: object, nav: bool = True, scripts: Iterable[str] = ()) -> Markup:
    """A whole console page (assets from the package only: no CDN)."""
    links = (
        tag(
            "nav",
            tag("a", "Journeys", href="/console"),
            " · ",
            tag("a", "Dead letters", href="/console/dlq"),
            " · ",
            tag("form", tag("input", type="text", name="key", placeholder="customer key"),
                tag("button", "Open customer"), action="/console/customers", method="get",
                class_="inline"),
        )
        if nav
        else ""
    )  # fmt: skip
    script_tags = join(tag("script", src=src) for src in scripts)
    return Markup(
        "<!doctype html>"
        + tag(
            "html",
            tag(
                "head",
                Markup('<meta charset="utf-8">'),
                tag("title", f"{title} · omnistream console"),
                Markup(f'<link rel="stylesheet" href="{STYLESHEET}">'),
            ),
            tag("body", links, tag("h1", title), *body, script_tags),
            lang="en",
        )
    )
