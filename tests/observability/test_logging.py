"""Logging: JSON and text rendering, context fields, settings, and that contact details never
reach a log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from omnistream.observability.logging import (
    LogSettings,
    bind_log_context,
    clear_log_context,
    log_context,
    redact,
    setup_logging,
)

EMAIL = "ada.lovelace+news@example.co.uk"
FCM = "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx" + "x" * 80
APNS = "a" * 32 + "0123456789abcdef" * 2


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    """Logging into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buf = io.StringIO()
    setup_logging("INFO", "json", buf)
    clear_log_context()
    yield buf
    clear_log_context()
    root.handlers[:], root.level = saved
    structlog.reset_defaults()


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"mail to {EMAIL} now", "mail to [email] now"),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("call +1-555-123-4567", "call [phone]"),
        ("call (555) 123-4567 or 555-123-4567", "call [phone] or [phone]"),
        (f"token {FCM}", "token [push-token]"),
        (f"apns {APNS}", "apns [push-token]"),
        ("ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]", "[push-token]"),
    ],
)
def test_patterns_are_redacted_in_text(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T10:00:00Z",
        "rejected record omni.events.site[3]@1234567: malformed_json",
        "customer c-42 entered order_confirmation step confirm",
        "send 1b4e28ba-2fa1-11d2-883f-0016d3cca427 took 0.0123 s",
        "offset 9876543210",
    ],
)
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_sensitive_keys_are_dropped_whole_even_nested() -> None:
    event = {"traits": {"email": "x", "first_name": "Ada", "plan": "pro"},
             "content": {"body": "Hi Ada", "subject": "Your order"}, "to": "+447700900123",
             "channels": [{"push_token": "abc"}], "journey": "welcome"}  # fmt: skip
    assert redact(event) == {
        "traits": {"email": "[redacted]", "first_name": "[redacted]", "plan": "pro"},
        "content": "[redacted]",
        "to": "[redacted]",
        "channels": [{"push_token": "[redacted]"}],
        "journey": "welcome",
    }


def test_json_lines_carry_context_and_never_contact_details(out: io.StringIO) -> None:
    log = logging.getLogger("omnistream.runtime.customers")
    with log_context(customer_id="c-1", event_id="e-1", stage="customer"):
        with log_context(journey="welcome", step="mail"):
            log.info("sending to %s", EMAIL, extra={"phone": "+44 20 7946 0958", "attempt": 2})
        log.warning("after the journey")
    log.info("outside")
    first, second, third = lines(out)
    assert first["message"] == "sending to [email]"
    assert first["phone"] == "[redacted]" and first["attempt"] == 2
    assert {k: first[k] for k in ("customer_id", "event_id", "journey", "step", "stage")} == {
        "customer_id": "c-1", "event_id": "e-1", "journey": "welcome", "step": "mail",
        "stage": "customer",
    }  # fmt: skip
    assert first["level"] == "info" and first["logger"] == "omnistream.runtime.customers"
    assert "journey" not in second and second["customer_id"] == "c-1"
    assert "customer_id" not in third
    assert EMAIL not in out.getvalue()


def test_tracebacks_are_redacted(out: io.StringIO) -> None:
    try:
        raise ValueError(f"input_value='{EMAIL}'")
    except ValueError:
        logging.getLogger("x").exception("engine failed")
    (record,) = lines(out)
    assert "ValueError: input_value='[email]'" in str(record["exception"])
    assert EMAIL not in out.getvalue()


def test_structlog_loggers_share_the_pipeline(out: io.StringIO) -> None:
    with log_context(customer_id="c-7"):
        structlog.get_logger("omnistream.test").info("sent", body="Hello Ada", channel="sms")
    (record,) = lines(out)
    assert record == record | {"message": "sent", "body": "[redacted]", "customer_id": "c-7"}


def test_context_is_per_task(out: io.StringIO) -> None:
    log = logging.getLogger("t")

    async def handle(customer: str) -> None:
        with log_context(customer_id=customer):
            await asyncio.sleep(0)
            log.info("handled")

    async def main() -> None:
        await asyncio.gather(handle("c-1"), handle("c-2"))

    asyncio.run(main())
    assert sorted(str(r["customer_id"]) for r in lines(out)) == ["c-1", "c-2"]


def test_only_known_fields_can_be_bound() -> None:
    with pytest.raises(TypeError, match="email"):
        bind_log_context(email="a@b.c")


def test_text_format_is_one_readable_line() -> None:
    buf = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("WARNING", "text", buf)
        with log_context(customer_id="c-1"):
            logging.getLogger("omnistream.dev").warning("quiet hours for %s", EMAIL)
            logging.getLogger("omnistream.dev").info("not shown at WARNING")
    finally:
        root.handlers[:], root.level = saved
        structlog.reset_defaults()
    (line,) = buf.getvalue().splitlines()
    assert line.endswith("WARNING omnistream.dev: quiet hours for [email]  customer_id=c-1")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNISTREAM_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("OMNISTREAM_LOG_FORMAT", "text")
    assert LogSettings().model_dump() == {"level": "ERROR", "format": "text"}
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging()
        assert root.level == logging.ERROR
        assert logging.getLogger("aiokafka").level == logging.ERROR
    finally:
        root.handlers[:], root.level = saved
        structlog.reset_defaults()


def test_noisy_libraries_stay_at_warning(out: io.StringIO) -> None:
    logging.getLogger("aiokafka.consumer").info("fetch")
    logging.getLogger("faust.transport").warning("slow")
    assert [r["message"] for r in lines(out)] == ["slow"]
