"""Per-session CSRF token for the console's one write (the test send).

The session is the login cookie (an internal token, HttpOnly, SameSite=Strict). The form token
is an HMAC of that cookie, so it needs no server-side storage, differs per token, and a page on
another origin can neither read the cookie nor compute the token. The POST also checks that
``Origin``, when the browser sends one, is this listener (``same_origin``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final
from urllib.parse import urlsplit

__all__ = ["csrf_token", "csrf_valid", "same_origin"]

_PURPOSE: Final = b"omnistream-console-csrf-v1"


def csrf_token(cookie: str) -> str:
    """The form token of the session whose cookie is ``cookie``."""
    return hmac.new(cookie.encode("utf-8", "surrogateescape"), _PURPOSE, hashlib.sha256).hexdigest()


def csrf_valid(cookie: str | None, given: str | None) -> bool:
    """Does ``given`` match the session's token (constant-time)?"""
    if not cookie or not given:
        return False
    return hmac.compare_digest(csrf_token(cookie).encode(), given.encode("utf-8", "replace"))


def same_origin(origin: str | None, host: str | None) -> bool:
    """``Origin`` absent (an old browser; the CSRF token still holds) or naming ``host``."""
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
