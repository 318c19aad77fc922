"""Frequency caps: the policy model and which counters one send touches. Pure.

Caps protect customers from marketing fatigue, so they apply to ``marketing`` sends only;
transactional messages (receipts, password resets) always bypass them. Three scopes, each with
any number of sliding windows:

- per customer per channel (``per_channel``, e.g. 1 per day on each channel),
- per customer across all channels (``across_channels``, e.g. 3 per week),
- per customer per journey (``per_journey``, e.g. 1 per day from the same journey).

Windows slide (the last 24 h, not the calendar day) so there is no burst at midnight, and the
counter members are send ids, so a retried claim or a send that falls back to another channel is
counted once in the cross-channel and journey windows. The store checks and counts every window
in one atomic step (see ``omnistream.storage.redis_caps``).

One touch on several channels (a journey's ``together`` send: an email and a push with the same
offer) is several sends sharing ``Send.touch_id``, which is then the counted member: each send
takes a slot in its own channel's window, and the touch takes one slot in the cross-channel and
per-journey windows. A send of a touch that is not delivered gives back its channel slot only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from omnistream.ports import CapCounter
from omnistream.redis_keys import cap_counters

__all__ = [
    "MAX_CAP_LIMIT",
    "CapWindow",
    "CapsPolicy",
    "CapsPolicyError",
    "counters_for",
    "load_caps_policy",
]

MAX_CAP_LIMIT: Final = 10_000
"""Most sends one window may allow. The store keeps one sorted-set member per counted send, so
this bounds a customer's counters in Redis; a channel that needs no cap is listed in
``exempt_channels`` instead."""

_UNITS: Final = {
    "s": 1,
    "second": 1,
    "m": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_SPEC: Final = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+?)s?\s*$")


class CapWindow(BaseModel):
    """At most ``limit`` sends in any ``seconds``-long window; written ``"3/week"``, ``"2/6h"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=0, le=MAX_CAP_LIMIT)
    seconds: int = Field(gt=0, le=366 * 86400)

    @model_validator(mode="before")
    @classmethod
    def _parse_spec(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _SPEC.match(value.lower())
        if match is None or match.group(3) not in _UNITS:
            raise ValueError(f"cap window {value!r}: expected e.g. '1/day', '3/week', '2/6h'")
        count, multiple, unit = match.groups()
        return {"limit": int(count), "seconds": int(multiple or 1) * _UNITS[unit]}

    @property
    def label(self) -> str:
        return f"{self.limit}/{self.seconds}s"


def _windows(*specs: str) -> list[CapWindow]:
    return [CapWindow.model_validate(spec) for spec in specs]


class CapsPolicy(BaseModel):
    """The caps configuration (YAML or JSON file, or defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    per_channel: list[CapWindow] = Field(default_factory=lambda: _windows("1/day"))
    across_channels: list[CapWindow] = Field(default_factory=lambda: _windows("3/week"))
    per_journey: list[CapWindow] = Field(default_factory=lambda: _windows("1/day"))
    channel_overrides: dict[str, list[CapWindow]] = Field(
        default_factory=dict,
        description="Replaces per_channel for the named channels (e.g. app_inbox: ['5/day']).",
    )
    exempt_channels: tuple[str, ...] = Field(
        default=(), description="Channels whose marketing sends are never capped or counted."
    )


def counters_for(
    policy: CapsPolicy,
    *,
    prefix: str,
    customer_key: str,
    channel: str,
    journey_id: str,
    category: str,
) -> list[CapCounter]:
    """The counters a send must fit into; empty when caps do not apply to it.

    Keys share the customer in a ``{hash tag}`` so a Redis Cluster keeps them (and the dedup key)
    in one slot, which an atomic script over all of them requires.
    """
    if not policy.enabled or category != "marketing" or channel in policy.exempt_channels:
        return []
    base = cap_counters(prefix, customer_key)
    counters: list[CapCounter] = []
    for window in policy.channel_overrides.get(channel, policy.per_channel):
        counters.append(_counter(f"{base}:ch:{channel}", window, "cap_channel"))
    for window in policy.across_channels:
        counters.append(_counter(f"{base}:all", window, "cap_global"))
    for window in policy.per_journey:
        counters.append(_counter(f"{base}:j:{journey_id}", window, "cap_journey"))
    return counters


def _counter(scope: str, window: CapWindow, reason: str) -> CapCounter:
    return CapCounter(
        key=f"{scope}:{window.seconds}",
        limit=window.limit,
        window_ms=window.seconds * 1000,
        reason=reason,
    )


class CapsPolicyError(ValueError):
    """A caps file that cannot be used; the message is ``file:line: what (hint)``, so the worker
    refuses to start with one line instead of a traceback."""


def load_caps_policy(path: Path | None) -> CapsPolicy:
    """The policy in ``path`` (``.json``, or YAML otherwise), or the defaults when ``None``."""
    if path is None:
        return CapsPolicy()
    text, data = _parse(path)
    try:
        return CapsPolicy.model_validate(data or {})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = tuple(error["loc"])
        where = ".".join(str(part) for part in loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "less_than_equal" and loc[-1:] == ("limit",):
            message += (
                " (each counted send is kept in Redis; list uncapped channels in exempt_channels)"
            )
        text_of = f"{where}: {message}" if where else message
        raise CapsPolicyError(f"{path}:{_line_of(text, loc)}: {text_of}") from None


def _parse(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        return text, json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise CapsPolicyError(f"{path}:1: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CapsPolicyError(f"{path}:1: not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise CapsPolicyError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise CapsPolicyError(f"{path}:{line}: invalid YAML: {exc}".splitlines()[0]) from None


def _line_of(text: str, loc: tuple[int | str, ...]) -> int:
    """1-based line of the value at ``loc`` (JSON is YAML here); the nearest parent if absent."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [value for key, value in node.value if key.value == part]
            node = found[0] if found else node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else node
    return int(node.start_mark.line) + 1 if node is not None else 1
