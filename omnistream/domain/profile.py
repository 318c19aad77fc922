"""The unified customer profile and how one event changes it.

``apply_event`` is a pure function of (profile, event): every channel's events land here, so
every channel knows what the others did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from omnistream.domain.events import Event

__all__ = ["ChannelEngagement", "Profile", "apply_event"]


class ChannelEngagement(BaseModel):
    """Counters of one channel's messages to this customer."""

    model_config = ConfigDict(extra="forbid")

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    last_engaged_at: datetime | None = None


class Profile(BaseModel):
    """Everything omnistream knows about one customer."""

    model_config = ConfigDict(extra="forbid")

    traits: dict[str, Any] = Field(default_factory=dict)
    addresses: dict[str, str] = Field(default_factory=dict)
    """Channel -> address: email, sms (phone), mobile_push (token), viber, telegram, ..."""
    consents: dict[str, dict[str, bool]] = Field(default_factory=dict)
    """Channel -> category (marketing / transactional) -> granted."""
    engagement: dict[str, ChannelEngagement] = Field(default_factory=dict)
    """Channel -> what happened to the messages sent there."""
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def timezone(self) -> str | None:
        tz = self.traits.get("timezone")
        return tz if isinstance(tz, str) else None

    def consents_to(self, channel: str, category: str) -> bool:
        """Transactional messages need no opt-in unless refused; marketing needs an opt-in."""
        granted = self.consents.get(channel, {}).get(category)
        if granted is None:
            return category == "transactional"
        return granted

    def preferred_channel(self, candidates: Sequence[str]) -> str | None:
        """The candidate this customer engages with most (opens + clicks), latest first on ties.

        ``None`` when the customer never engaged with any candidate.
        """
        best: tuple[int, datetime] | None = None
        choice: str | None = None
        for channel in candidates:
            stats = self.engagement.get(channel)
            if stats is None or stats.last_engaged_at is None:
                continue
            score = (stats.opened + stats.clicked, stats.last_engaged_at)
            if best is None or score > best:
                best, choice = score, channel
        return choice


_ADDRESS_TRAITS = {"email": "email", "phone": "sms"}


def apply_event(profile: Profile, event: Event) -> Profile:
    """Return the profile after ``event``; the input is never mutated."""
    updated = profile.model_copy(deep=True)
    if updated.first_seen is None or event.timestamp < updated.first_seen:
        updated.first_seen = event.timestamp
    if updated.last_seen is None or event.timestamp > updated.last_seen:
        updated.last_seen = event.timestamp
    if event.type in ("identify", "profile_updated", "signed_up"):
        traits = event.properties.get("traits", {})
        if isinstance(traits, dict):
            updated.traits.update(traits)
            for trait, channel in _ADDRESS_TRAITS.items():
                value = traits.get(trait)
                if isinstance(value, str) and value:
                    updated.addresses[channel] = value
    return updated
