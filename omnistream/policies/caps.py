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
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from omnistream.ports import CapCounter

__all__ = ["CapWindow", "CapsPolicy", "counters_for", "load_caps_policy"]

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

    limit: int = Field(ge=0, le=10_000)
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
    base = f"{prefix}cap:{{{customer_key}}}"
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


def load_caps_policy(path: Path | None) -> CapsPolicy:
    """The policy in ``path`` (``.json``, or YAML otherwise), or the defaults when ``None``."""
    if path is None:
        return CapsPolicy()
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return CapsPolicy.model_validate(data or {})
