"""Small, total parsers for the values that arrive in event properties.

Producers are many teams' code, so a property can have any JSON shape. Every function here
returns a clean value or ``None`` and never raises: the profile handlers skip what does not parse
(and report it as an issue) instead of failing the event or storing junk in the row.

Email and phone normalisation live here because both the profile (channel addresses) and identity
resolution (alias keys) must agree on them byte for byte.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omnistream.domain.vocabulary import CHANNELS

__all__ = [
    "CATEGORIES",
    "KNOWN_CHANNELS",
    "MAX_MONEY",
    "as_aware_datetime",
    "as_channel",
    "as_currency",
    "as_date",
    "as_id",
    "as_locale",
    "as_money",
    "as_quantity",
    "as_text",
    "as_timezone",
    "is_scalar",
    "normalize_email",
    "normalize_phone",
]

KNOWN_CHANNELS: Final = frozenset({*CHANNELS, "in_app"})
"""Channels a profile keeps addresses, consents and engagement for; others are ignored, which
also bounds the size of those maps."""

CATEGORIES: Final = ("marketing", "transactional")

MAX_MONEY: Final = Decimal("1000000000000")
"""Largest accepted order total or price: beyond it the value is a bug, not a purchase."""

_EMAIL_MAX = 254
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+\-/]{0,127}")
_TZ_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]{0,63}")
_LOCALE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_PHONE_PUNCT = str.maketrans("", "", " -.()/\t")


def normalize_email(raw: object) -> str | None:
    """Trimmed, lower-cased email, or ``None`` when it is not plausibly an address.

    The whole address is lower-cased: local parts are case-sensitive in theory and never in
    practice, and one customer typing ``Ann@X.com`` and ``ann@x.com`` must be one customer.
    Provider-specific rewrites (gmail dots, ``+tags``) are deliberately not applied: they would
    merge different people on other providers.
    """
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    if not email or len(email) > _EMAIL_MAX or any(ch.isspace() for ch in email):
        return None
    local, sep, domain = email.rpartition("@")
    if not sep or not local or "@" in local or "." not in domain:
        return None
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return None
    return email


def normalize_phone(raw: object, default_country_code: str | None = None) -> str | None:
    """E.164-style ``+<digits>`` (8-15 digits), or ``None``.

    Separators (space, dash, dot, parentheses, slash) and an optional trunk ``(0)`` after the
    country code are dropped, and ``00`` becomes ``+``.
    A number without a country code needs ``default_country_code`` (digits, e.g. ``"44"``); its
    single national trunk ``0`` is dropped. Without one, only numbers of 11+ digits that do not
    start with ``0`` are taken as already international. Letters (``ext. 12``) make it invalid:
    a guess would route one person's purchases to someone else.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text.startswith(("+", "00")):
        text = text.replace("(0)", "", 1)  # "+44 (0)20...": the optional trunk prefix
    text = text.translate(_PHONE_PUNCT)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif default_country_code is not None and default_country_code.isdigit():
        digits = default_country_code + (text[1:] if text.startswith("0") else text)
    elif len(text) >= 11 and not text.startswith("0"):
        digits = text
    else:
        return None
    if not digits.isascii() or not digits.isdigit() or not 8 <= len(digits) <= 15:
        return None
    if digits.startswith("0"):
        return None
    return "+" + digits


def as_id(value: object) -> str | None:
    """A product/order/store id: a short string or an integer (not a bool)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        value = value.strip()
        if _ID_RE.fullmatch(value):
            return value
    return None


def as_text(value: object, max_len: int = 256) -> str | None:
    """A non-empty display string, trimmed, at most ``max_len`` characters."""
    if isinstance(value, str):
        value = value.strip()
        if value and len(value) <= max_len:
            return value
    return None


def as_money(value: object) -> Decimal | None:
    """A finite amount in ``[0, MAX_MONEY]`` as an exact ``Decimal``.

    Decimals keep ``revenue == sum(order totals)`` exact; floats are converted through ``str``
    so ``19.99`` stays ``19.99``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            amount = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
        if amount.is_finite() and 0 <= amount <= MAX_MONEY:
            return amount
    return None


def as_quantity(value: object, default: int | None = 1, limit: int = 999) -> int | None:
    """A positive item count up to ``limit``; ``default`` when absent (``None``)."""
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit:
        return value
    return None


def as_channel(value: object) -> str | None:
    return value if isinstance(value, str) and value in KNOWN_CHANNELS else None


def as_currency(value: object) -> str | None:
    """ISO 4217-shaped code, upper-cased."""
    if isinstance(value, str) and _CURRENCY_RE.fullmatch(value):
        return value.upper()
    return None


def as_locale(value: object) -> str | None:
    """BCP 47-ish tag with ``-`` separators (``pt_BR`` becomes ``pt-BR``)."""
    if isinstance(value, str) and _LOCALE_RE.fullmatch(value):
        return value.replace("_", "-")
    return None


def as_date(value: object) -> str | None:
    """An ISO calendar date ``YYYY-MM-DD`` (kept as the string, JSON-friendly)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def as_aware_datetime(value: object) -> datetime | None:
    """An ISO 8601 time with a UTC offset (as JSON carries profile times), or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def as_timezone(value: object) -> str | None:
    """An IANA zone name that the tz database knows; quiet hours depend on it being real."""
    if isinstance(value, str) and _TZ_RE.fullmatch(value):
        return value if _known_zone(value) else None
    return None


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def is_scalar(value: Any) -> bool:
    """JSON scalars a custom trait may hold (strings bounded, floats finite)."""
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return isinstance(value, str) and len(value) <= 1024
