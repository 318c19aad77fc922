"""The console's login form and its "login required" page (401)."""

from __future__ import annotations

from omnistream.console.markup import Markup, page, tag

__all__ = ["login_form", "login_page", "login_required"]


def login_form(error: str | None = None) -> Markup:
    """Paste an internal token (``OMNISTREAM_INTERNAL_TOKENS``); it becomes an HttpOnly cookie."""
    return tag(
        "form",
        tag("p", error, class_="error", data_testid="login-error") if error else "",
        tag("label", "Internal token ", tag("input", type="password", name="token",
                                             autocomplete="off", data_testid="login-token")),
        tag("button", "Log in", type="submit", data_testid="login-submit"),
        action="/console/login",
        method="post",
        data_testid="login-form",
    )  # fmt: skip


def login_page(error: str | None = None) -> Markup:
    return page("Log in", login_form(error), nav=False)


def login_required() -> Markup:
    """What an unauthenticated browser gets on any console page (with status 401)."""
    return page(
        "Login required",
        tag(
            "p",
            "The console needs an internal token. Log in with one of the worker's "
            "OMNISTREAM_INTERNAL_TOKENS.",
            data_testid="login-required",
        ),
        login_form(),
        nav=False,
    )
