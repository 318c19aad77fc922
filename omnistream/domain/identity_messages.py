"""Telling identity messages from events on ``omni.customer-events``, for the worker and harness.

Identity messages (claims, releases, merges; ``domain/identity.py``) are serialised with ``kind``
first, and events never carry ``kind``, so a prefix check tells them apart without parsing.
"""

from __future__ import annotations

from typing import Final

from omnistream.domain.identity import Claim, MergeRequest, Release

__all__ = ["IdentityMessage", "is_identity_message", "parse_identity_message"]

_PREFIX: Final = b'{"kind":"'

IdentityMessage = Claim | Release | MergeRequest


def is_identity_message(raw: bytes) -> bool:
    """Identity messages are serialised with ``kind`` first; events never carry ``kind``."""
    return raw.startswith(_PREFIX)


def parse_identity_message(raw: bytes) -> IdentityMessage | None:
    """The message, or ``None`` for an unknown kind; raises pydantic's ``ValidationError``."""
    if raw.startswith(b'{"kind":"claim"'):
        return Claim.model_validate_json(raw)
    if raw.startswith(b'{"kind":"release"'):
        return Release.model_validate_json(raw)
    if raw.startswith(b'{"kind":"merge"'):
        return MergeRequest.model_validate_json(raw)
    return None
