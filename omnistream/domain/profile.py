"""The unified customer profile and how one event changes it.

``apply_event`` is a pure function of (profile, event): every channel's events land here, so
every channel knows what the others did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from omnistream.domain.events import Event

__all__ = ["Profile", "apply_event"]


class Profile(BaseModel):
    """Everything omnistream knows about one customer."""

    model_config = ConfigDict(extra="forbid")

    traits: dict[str, Any] = Field(default_factory=dict)
    addresses: dict[str, str] = Field(default_factory=dict)
    """Channel -> address: email, sms (phone), mobile_push (token), viber, telegram, ..."""
    consents: dict[str, dict[str, bool]] = Field(default_factory=dict)
    """Channel -> category (marketing / transactional) -> granted."""
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
