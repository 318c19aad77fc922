"""Logging: JSON (or plain text for ``omnistream dev``) over stdlib logging, with PII redaction.

Why this shape:

- Faust, mode and aiokafka log through stdlib ``logging``, so one stdlib handler with structlog's
  ``ProcessorFormatter`` renders their records and ours alike (one JSON object per line).
- We configure logging ourselves instead of letting Faust do it: Faust's own setup
  (``faust worker -l ...``) sets the root logger to DEBUG, which makes every aiokafka/faust
  ``log.debug`` build a record (about a fifth of the time of a table-heavy run).
- Contact details never reach a log line: the redaction processor runs last, after exceptions
  are formatted, over every value (including the message and nested dicts), by key (``email``,
  ``phone``, ``body``, ...) and by pattern (emails, phone numbers, push tokens).
- Context (customer id, journey, step, event id, stage) is carried in ``contextvars``, so the
  runtime binds it once per input and every line logged while handling that input carries it,
  including lines from libraries. Faust agents are asyncio tasks: each has its own context.

Settings: ``OMNISTREAM_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR) and ``OMNISTREAM_LOG_FORMAT``
(``json`` or ``text``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import orjson
import structlog
from pydantic_settings import BaseSettings, SettingsConfigDict
from structlog.contextvars import bind_contextvars, reset_contextvars
from structlog.types import EventDict, Processor, WrappedLogger

__all__ = [
    "LOG_CONTEXT_FIELDS",
    "LogSettings",
    "bind_log_context",
    "build_formatter",
    "clear_log_context",
    "log_context",
    "redact",
    "redact_pii",
    "setup_logging",
]

_NOISY = ("aiokafka", "faust", "mode", "aiohttp", "kafka")

LOG_CONTEXT_FIELDS = ("customer_id", "event_id", "journey", "step", "stage", "channel", "send_id")
"""The only fields the runtime may bind into the log context (no contact details)."""

REDACTED = "[redacted]"

_SENSITIVE_KEYS = frozenset(
    {
        "email", "emails", "email_address", "phone", "phone_number", "mobile", "msisdn",
        "to", "recipient", "address", "addresses", "push_token", "device_token", "token",
        "fcm_token", "apns_token", "registration_token", "webpush_subscription", "subscription",
        "body", "text", "html", "content", "subject", "message_body", "template_output",
        "first_name", "last_name", "full_name", "password", "secret", "api_key",
        "authorization", "auth_token", "telegram_chat_id", "viber_id",
    }
)  # fmt: skip
"""Keys whose values are dropped whole, wherever they appear (nested dicts included)."""

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[email]"),
    # FCM registration tokens (id:long-opaque) and Expo push tokens.
    (re.compile(r"\b[A-Za-z0-9_-]{8,}:[A-Za-z0-9_-]{60,}"), "[push-token]"),
    (re.compile(r"ExponentPushToken\[[^\]]*\]"), "[push-token]"),
    # APNs device tokens: 64 hex digits.
    (re.compile(r"\b[0-9a-fA-F]{64}\b"), "[push-token]"),
    # International numbers (+CC ...), the form every channel stores.
    (re.compile(r"(?<![\w+])\+\d(?:[\s().-]{0,2}\d){6,14}(?!\d)"), "[phone]"),
    # National formats: (555) 123-4567, 555-123-4567, 555 123 4567.
    (re.compile(r"(?<!\d)(?:\(\d{2,4}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\d)"), "[phone]"),
)


class LogSettings(BaseSettings):
    """``OMNISTREAM_LOG_LEVEL`` and ``OMNISTREAM_LOG_FORMAT``."""

    model_config = SettingsConfigDict(env_prefix="OMNISTREAM_LOG_", env_file=".env", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


def redact(value: Any, key: str | None = None) -> Any:
    """``value`` with contact details removed (by ``key`` name, then by pattern, recursively)."""
    if key is not None and key.lower() in _SENSITIVE_KEYS:
        return REDACTED if value not in (None, "") else value
    if isinstance(value, str):
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    return value


def redact_pii(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: apply :func:`redact` to every field except the fixed metadata."""
    for key, value in list(event_dict.items()):
        if key in ("level", "logger", "timestamp"):
            continue
        event_dict[key] = redact(value, None if key == "event" else key)
    return event_dict


@contextmanager
def log_context(
    *,
    customer_id: str | None = None,
    event_id: str | None = None,
    journey: str | None = None,
    step: str | None = None,
    stage: str | None = None,
    channel: str | None = None,
    send_id: str | None = None,
) -> Iterator[None]:
    """Bind context fields for the lines logged inside the block; restore the outer ones after.

    Keyword-only and fixed, so nothing but these identifiers can be bound (no contact details).
    ``None`` leaves a field as the enclosing context has it.
    """
    tokens = bind_log_context(
        customer_id=customer_id,
        event_id=event_id,
        journey=journey,
        step=step,
        stage=stage,
        channel=channel,
        send_id=send_id,
    )
    try:
        yield
    finally:
        reset_contextvars(**tokens)


def bind_log_context(**fields: str | None) -> Mapping[str, Any]:
    """Bind fields (from :data:`LOG_CONTEXT_FIELDS`) until cleared; returns reset tokens.

    For loops where a ``with`` block is awkward: ``clear_log_context()`` at the top of each
    iteration, then ``bind_log_context(customer_id=..., event_id=...)``.
    """
    unknown = set(fields) - set(LOG_CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"not a log context field: {sorted(unknown)}")
    return bind_contextvars(**{k: v for k, v in fields.items() if v is not None})


def clear_log_context() -> None:
    """Drop every bound context field of the current task."""
    structlog.contextvars.clear_contextvars()


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=str).decode()


def _text_renderer(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
    """One readable line: ``10:00:00 INFO name: message key=value``, then the traceback."""
    event_dict = dict(event_dict)
    stamp = str(event_dict.pop("timestamp", ""))[11:19]
    level = str(event_dict.pop("level", method_name)).upper()
    name = event_dict.pop("logger", "")
    message = event_dict.pop("event", "")
    exception = event_dict.pop("exception", None)
    extras = " ".join(f"{k}={v}" for k, v in sorted(event_dict.items()))
    line = f"{stamp} {level:<7} {name}: {message}" + (f"  {extras}" if extras else "")
    return f"{line}\n{exception}" if exception else line


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def build_formatter(fmt: Literal["json", "text"]) -> logging.Formatter:
    """The formatter of the one handler: shared processors, exception text, redaction, render."""
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if fmt == "json"
        else _text_renderer
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_pii,
            *([structlog.processors.EventRenamer("message")] if fmt == "json" else []),
            renderer,
        ],
    )


def setup_logging(
    level: str | None = None,
    fmt: Literal["json", "text"] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Route stdlib and structlog logging through one redacting handler on ``stream``.

    ``level``/``fmt`` default to ``OMNISTREAM_LOG_LEVEL``/``OMNISTREAM_LOG_FORMAT``. Noisy
    libraries (aiokafka, faust, mode) stay at WARNING unless the level is higher.
    """
    if level is None or fmt is None:  # the worker passes both, read once with its settings
        settings = LogSettings()
        level, fmt = level or settings.level, fmt or settings.format
    level = level.upper()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(build_formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    numeric = logging.getLevelName(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            *_shared_processors()[:1],
            structlog.stdlib.filter_by_level,
            *_shared_processors()[1:],
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
