"""What the providers share: HTTP calls with error classification, and signature helpers.

Error classification is the one rule every provider follows, because the dispatcher's retry and
fallback decisions depend on it: timeouts, connection errors, 408, 425, 429 and 5xx are
*transient* (retried with backoff, honouring ``Retry-After``); every other 4xx is *permanent*
(the request itself is wrong for this customer: move on to the next channel).

Provider API calls carry credentials (headers, Basic auth, a token in the path), so they never
follow redirects: a 3xx is the permanent ``redirect_refused`` (the base URL is wrong), and no
credential reaches whatever the ``Location`` names. Response bodies are read incrementally up to
``MAX_RESPONSE_BYTES`` after decompression; a bigger one is the permanent ``response_too_large``
instead of a memory spike (a 4 KiB gzip body can inflate to 64 MiB).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import aiohttp
import orjson

from omnistream.clock import monotonic
from omnistream.observability.metrics import M
from omnistream.ports import ProviderError, Receipt, ReceiptRejected

__all__ = [
    "ADDRESS_INVALID",
    "MAX_RESPONSE_BYTES",
    "MAX_SKEW_S",
    "RECIPIENT_BLOCKED",
    "TOKEN_UNREGISTERED",
    "HttpProvider",
    "NoReceipts",
    "classify_status",
    "hmac_sha256_hex",
    "json_or_empty",
    "parse_retry_after",
    "sign_timestamped",
    "verify_timestamped",
]

log = logging.getLogger(__name__)

MAX_SKEW_S: Final = 300.0
"""Callbacks signed further than this from our clock are refused (replays of old requests)."""

MAX_RESPONSE_BYTES: Final = 1024 * 1024
"""Largest provider response body read (decompressed); a bigger one is ``response_too_large``.
Provider answers are small JSON documents; 1 MiB is far above any of them."""
_READ_CHUNK: Final = 64 * 1024

_TRANSIENT_STATUSES: Final = frozenset({408, 425, 429})

# The one vocabulary for "this address will never work", whichever provider says it, so the
# ``message_failed`` reason (and the metric label) means the same on every channel. All three
# are permanent: retrying cannot help, the next channel can.
ADDRESS_INVALID: Final = "address_invalid"
"""The address does not exist or is malformed (no such chat, mailbox, Viber user, FCM token)."""
RECIPIENT_BLOCKED: Final = "recipient_blocked"
"""The address exists but its owner refuses us (blocked the bot, unsubscribed from it)."""
TOKEN_UNREGISTERED: Final = "token_unregistered"  # noqa: S105 (a reason label, not a secret)
"""A push token that was valid and is not any more (app uninstalled, token rotated)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; the HTTP-date form is treated as absent."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def classify_status(status: int, headers: Mapping[str, str]) -> ProviderError | None:
    """``None`` for 2xx, else the ``ProviderError`` the status means."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return ProviderError("redirect_refused", transient=False)
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return ProviderError(f"http_{status}", transient=True, retry_after=retry_after)
    return ProviderError(f"http_{status}", transient=False)


class HttpProvider:
    """Base of the HTTP providers: one pooled ``aiohttp`` session, per-request timeout."""

    name = "http"

    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._client: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(timeout=self._timeout)
        return self._client

    async def _request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One attempt. Network failures become transient ``ProviderError``s; redirects are not
        followed (``classify_status`` refuses them) and the body is capped."""
        started = monotonic()
        try:
            async with self._session().request(
                method, url, headers=headers, json=json, data=data, allow_redirects=False
            ) as response:
                if 300 <= response.status < 400:
                    log.warning(
                        "provider %s answered HTTP %d (a redirect): not followed, so no "
                        "credential leaves for another address; check its base URL",
                        self.name,
                        response.status,
                    )
                body = await _read_capped(response, MAX_RESPONSE_BYTES)
                return response.status, response.headers, body
        except TimeoutError:
            raise ProviderError("timeout", transient=True) from None
        except aiohttp.ClientError:
            raise ProviderError("connection", transient=True) from None
        finally:
            M.provider_request_seconds.labels(self.name).observe(monotonic() - started)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, read in chunks (decompressed as they come), or ``response_too_large``."""
    too_large = ProviderError("response_too_large", transient=False)
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


class NoReceipts:
    """Mixin for providers that have no delivery callbacks: the webhook answers 404."""

    name = "none"

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        raise ReceiptRejected(404, f"provider {self.name} has no delivery callbacks")


def hmac_sha256_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def sign_timestamped(secret: str, body: bytes, timestamp: int) -> str:
    """The ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`` header value."""
    digest = hmac_sha256_hex(secret, str(timestamp).encode() + b"." + body)
    return f"t={timestamp},v1={digest}"


def verify_timestamped(header: str | None, secret: str, body: bytes, now: datetime) -> int:
    """Check a ``sign_timestamped`` header; return its timestamp or raise ``ReceiptRejected``.

    The timestamp is inside the signed payload, so an attacker cannot refresh an old request;
    the skew check bounds how long a captured request stays usable, and the replay cache
    (in the receipts module) refuses a second use within that time.
    """
    if not secret.strip():  # an empty key is one everybody has: never verify with it
        raise ReceiptRejected(401, "no signing secret configured")
    if not header:
        raise ReceiptRejected(401, "missing signature")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise ReceiptRejected(401, "malformed signature") from None
    expected = sign_timestamped(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise ReceiptRejected(401, "bad signature")
    if abs(now.timestamp() - timestamp) > MAX_SKEW_S:
        raise ReceiptRejected(401, "timestamp outside the allowed skew")
    return timestamp


def json_or_empty(body: bytes) -> dict[str, Any]:
    """A JSON object response body, or ``{}`` when it is empty or not an object."""
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
