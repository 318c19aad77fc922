"""Normalisation of emails and phones, and the total parsers of property values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omnistream.domain.profile_values import (
    as_currency,
    as_date,
    as_id,
    as_locale,
    as_money,
    as_quantity,
    as_timezone,
    normalize_email,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann.Lee@Example.COM \n", "ann.lee@example.com"),
        ("a+tag@mail.example.org", "a+tag@mail.example.org"),
        ("", None),
        ("   ", None),
        ("no-at-sign.example.com", None),
        ("two@@example.com", None),
        ("a@b@example.com", None),
        ("@example.com", None),
        ("ann@", None),
        ("ann@localhost", None),
        ("ann@.example.com", None),
        ("ann@example.com.", None),
        ("ann@exa..mple.com", None),
        ("ann lee@example.com", None),
        ("a" * 250 + "@example.com", None),
        (None, None),
        (42, None),
        (["ann@example.com"], None),
    ],
)
def test_normalize_email(raw: object, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "default_cc", "expected"),
    [
        ("+44 7700 900123", None, "+447700900123"),
        ("+44 (0)7700-900.123", None, "+447700900123"),
        ("0044 7700 900123", None, "+447700900123"),
        ("+1 (212) 555-0134", None, "+12125550134"),
        ("447700900123", None, "+447700900123"),
        (447700900123, None, "+447700900123"),
        ("07700 900123", None, None),
        ("07700 900123", "44", "+447700900123"),
        ("2125550134", "1", "+12125550134"),
        ("+44 7700 900123 ext 5", None, None),
        ("+123", None, None),
        ("+1234567890123456", None, None),
        ("+0123456789", None, None),
        ("", None, None),
        ("+", None, None),
        ("+٤٤٧٧٠٠٩٠٠١٢٣", None, None),  # non-ASCII digits are not accepted
        (True, None, None),
        (None, None, None),
        (7.7, None, None),
    ],
)
def test_normalize_phone(raw: object, default_cc: str | None, expected: str | None) -> None:
    assert normalize_phone(raw, default_cc) == expected


def test_same_phone_written_differently_normalises_to_one_number() -> None:
    forms = ["+44 7700 900123", "+44-7700-900-123", "0044 7700 900123", "+447700900123"]
    assert {normalize_phone(f) for f in forms} == {"+447700900123"}


@pytest.mark.parametrize(
    ("parse", "raw", "expected"),
    [
        (as_id, "sku-1", "sku-1"),
        (as_id, 17, "17"),
        (as_id, True, None),
        (as_id, "", None),
        (as_id, "has space", None),
        (as_id, "x" * 200, None),
        (as_money, 19.99, Decimal("19.99")),
        (as_money, "5", Decimal(5)),
        (as_money, 0, Decimal(0)),
        (as_money, -1, None),
        (as_money, float("nan"), None),
        (as_money, float("inf"), None),
        (as_money, "abc", None),
        (as_money, True, None),
        (as_money, 10**13, None),
        (as_quantity, None, 1),
        (as_quantity, 3, 3),
        (as_quantity, 2.0, 2),
        (as_quantity, 0, None),
        (as_quantity, 1000, None),
        (as_quantity, "2", None),
        (as_currency, "eur", "EUR"),
        (as_currency, "EURO", None),
        (as_locale, "pt_BR", "pt-BR"),
        (as_locale, "en", "en"),
        (as_locale, "english!", None),
        (as_date, "1990-02-28", "1990-02-28"),
        (as_date, "1990-02-30", None),
        (as_date, "28/02/1990", None),
        (as_timezone, "Europe/Kyiv", "Europe/Kyiv"),
        (as_timezone, "Mars/Olympus", None),
        (as_timezone, "../../etc/passwd", None),
        (as_timezone, 3, None),
    ],
)
def test_parsers(parse: object, raw: object, expected: object) -> None:
    assert callable(parse)
    assert parse(raw) == expected
