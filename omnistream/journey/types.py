"""Scalar types of the journey language: durations, channels, compiled conditions and templates.

Each is an ``Annotated`` pydantic type with its own validator and JSON Schema, so an invalid
value is reported by the ordinary validation errors (with the YAML line of the value).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field, PlainSerializer, PlainValidator, WithJsonSchema

from omnistream.domain.vocabulary import CHANNELS
from omnistream.journey.expr import Expr, HintedError, compile_expr, suggest
from omnistream.journey.templates import Template, compile_template

__all__ = [
    "BEST",
    "CHANNELS",
    "ChainEntry",
    "Channel",
    "Condition",
    "Duration",
    "EventType",
    "SignedDuration",
    "StepId",
    "TemplateText",
    "parse_duration",
]

BEST: Final = "best"
ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_EVENT_TYPE = r"^[a-z][a-z0-9_.]{0,63}$"
_DURATION = re.compile(r"^(-)?((?:\d+[wdhms])+)$")
_UNITS: Final = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> timedelta:
    """``"1h30m"`` / ``"27d"`` / ``"-1d"`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration like '30m', '1h', '27d' or '1d12h', got {value!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([wdhms])", match.group(2)))
    return timedelta(seconds=-seconds if match.group(1) else seconds)


def _positive(value: Any) -> timedelta:
    parsed = parse_duration(value)
    if parsed <= timedelta(0):
        raise ValueError("the duration must be positive")
    if parsed > timedelta(days=3660):
        raise ValueError("durations are limited to ten years")
    return parsed


def _serialize_duration(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


_DURATION_SCHEMA = {"type": "string", "pattern": r"^-?(\d+[wdhms])+$", "examples": ["1h", "27d"]}
Duration = Annotated[
    timedelta,
    PlainValidator(_positive),
    PlainSerializer(_serialize_duration),
    WithJsonSchema(_DURATION_SCHEMA),
]
SignedDuration = Annotated[
    timedelta,
    PlainValidator(parse_duration),
    PlainSerializer(_serialize_duration),
    WithJsonSchema(_DURATION_SCHEMA),
]
Condition = Annotated[
    Expr,
    PlainValidator(compile_expr),
    PlainSerializer(lambda e: e.source),
    WithJsonSchema({"type": "string", "description": "A condition over event, profile, vars."}),
]
TemplateText = Annotated[
    Template,
    PlainValidator(compile_template),
    PlainSerializer(lambda t: t.source),
    WithJsonSchema({"type": "string", "description": "Liquid template."}),
]
StepId = Annotated[str, Field(pattern=ID_PATTERN)]
EventType = Annotated[str, Field(pattern=_EVENT_TYPE)]


def _channel(value: Any) -> str:
    if value in CHANNELS:
        return str(value)
    raise HintedError(f"unknown channel {value!r}", suggest(str(value), CHANNELS))


def _chain_entry(value: Any) -> str:
    return BEST if value == BEST else _channel(value)


Channel = Annotated[str, BeforeValidator(_channel), WithJsonSchema({"enum": list(CHANNELS)})]
ChainEntry = Annotated[
    str, BeforeValidator(_chain_entry), WithJsonSchema({"enum": [*CHANNELS, BEST]})
]
