"""The ``fcm`` provider: Firebase Cloud Messaging HTTP v1, for ``mobile_push`` and ``web_push``.

``POST <base>/v1/projects/<project>/messages:send`` with ``Authorization: Bearer <token>`` and
``{"message": {"token": <device token>, "notification": {...}, "data": {...}}}``; the answer is
``{"name": "projects/<p>/messages/<id>"}``. Errors carry ``error.status`` (UNREGISTERED,
INVALID_ARGUMENT, QUOTA_EXCEEDED, UNAVAILABLE, ...), used as the reason; 429/5xx are transient.
The FCM ``errorCode`` in ``error.details`` is more precise than the status (an uninstalled app is
HTTP 404 ``NOT_FOUND`` with ``errorCode: UNREGISTERED``): token errors become the shared reasons
``token_unregistered`` (UNREGISTERED) and ``address_invalid`` (SENDER_ID_MISMATCH, or
INVALID_ARGUMENT whose ``BadRequest`` violation names ``message.token``); an INVALID_ARGUMENT
about the payload stays ``fcm_invalid_argument``.
The access token is supplied by the deployment (``OMNISTREAM_FCM_ACCESS_TOKEN``, e.g. refreshed
by a sidecar); minting it from a service-account key is not done here. FCM has no idempotency
key (the send id travels in ``data``) and no delivery callbacks.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderResult
from omnistream.providers.base import (
    ADDRESS_INVALID,
    TOKEN_UNREGISTERED,
    HttpProvider,
    NoReceipts,
    classify_status,
    json_or_empty,
)

__all__ = ["SETTINGS", "FcmProvider", "FcmSettings", "from_settings"]

_STATUSES: Final = frozenset(
    {
        "UNSPECIFIED_ERROR",
        "INVALID_ARGUMENT",
        "UNREGISTERED",
        "SENDER_ID_MISMATCH",
        "QUOTA_EXCEEDED",
        "UNAVAILABLE",
        "INTERNAL",
        "THIRD_PARTY_AUTH_ERROR",
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
    }
)


class FcmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNISTREAM_FCM_", env_file=".env", extra="ignore")

    base_url: str = "https://fcm.googleapis.com"
    project_id: str = ""
    access_token: SecretStr = SecretStr("")


class FcmProvider(NoReceipts, HttpProvider):
    name = "fcm"

    def __init__(
        self, base_url: str, project_id: str, access_token: SecretStr, timeout_s: float = 10.0
    ) -> None:
        HttpProvider.__init__(self, timeout_s)
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._token = access_token

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        message = outgoing.message
        notification = {"body": message.body}
        if message.subject:
            notification["title"] = message.subject
        payload = {
            "message": {
                "token": outgoing.address,
                "notification": notification,
                "data": {**message.data, "send_id": outgoing.send_id},
            }
        }
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        status, response_headers, body = await self._request(
            "POST", self._url, headers=headers, json=payload
        )
        data = json_or_empty(body)
        error = classify_status(status, response_headers)
        if error is not None:
            reason = _reason(data.get("error"))
            if reason is not None:
                error.reason = reason
            raise error
        name = data.get("name")
        return ProviderResult(str(name) if name is not None else None)


def _reason(error: object) -> str | None:
    """The shared reason for a token error, else ``fcm_<status>``, else ``None``."""
    if not isinstance(error, dict):
        return None
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    codes = {d.get("errorCode") for d in details} | {error.get("status")}
    if "UNREGISTERED" in codes:
        return TOKEN_UNREGISTERED
    if "SENDER_ID_MISMATCH" in codes or _names_token(details):
        return ADDRESS_INVALID
    status = error.get("status")
    return f"fcm_{str(status).lower()}" if status in _STATUSES else None


def _names_token(details: list[dict[str, Any]]) -> bool:
    """Whether a ``google.rpc.BadRequest`` detail blames the token (not the payload)."""
    for detail in details:
        for violation in detail.get("fieldViolations") or ():
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                return True
    return False


SETTINGS = FcmSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: FcmSettings, settings: Settings, channel_settings: ChannelSettings
) -> FcmProvider:
    return FcmProvider(
        own.base_url, own.project_id, own.access_token, channel_settings.provider_timeout_s
    )
