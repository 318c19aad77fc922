"""HTML responses of the console's handlers (one place for the content type and error page)."""

from __future__ import annotations

from aiohttp import web

from omnistream.console.markup import Markup, page, tag

__all__ = ["html", "problem"]


def html(body: Markup, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def problem(title: str, detail: str, status: int) -> web.Response:
    """An error page whose detail says precisely what was wrong (``data-testid="problem"``)."""
    return html(page(title, tag("p", detail, class_="error", data_testid="problem")), status)
