"""Every Redis key omnistream writes, in one place (as arq's ``constants.py``).

``prefix`` is ``OMNISTREAM_CHANNELS_REDIS_PREFIX`` with its trailing colon (``omni:``): give each
deployment sharing a Redis its own. Per-customer keys are ``<prefix><kind>:{<customer_key>}…``:
the braces are a Redis Cluster hash tag that keeps one customer's keys in one slot (the caps
script touches the dedup key and every window at once), and the shape is what erasure scans for
(``customer_patterns``), so a new per-customer key must follow it. Pure: no imports.
"""

from __future__ import annotations

__all__ = [
    "cap_counters",
    "customer_patterns",
    "message_index",
    "owner_lease",
    "rate_bucket",
    "receipt_replay",
    "recipient_index",
    "send_claim",
]


def send_claim(prefix: str, customer_key: str, send_id: str, position: int) -> str:
    """The dedup claim of one send on one position of its channel chain."""
    return f"{prefix}send:{{{customer_key}}}:{send_id}:{position}"


def cap_counters(prefix: str, customer_key: str) -> str:
    """The base of a customer's frequency-cap windows (``…:ch:<channel>``, ``…:all``, …)."""
    return f"{prefix}cap:{{{customer_key}}}"


def rate_bucket(prefix: str, provider: str) -> str:
    """A provider's token bucket (not per customer)."""
    return f"{prefix}rate:{provider}"


def owner_lease(prefix: str, owner: str) -> str:
    """A worker's lease: while it exists, the worker's send claims are alive."""
    return f"{prefix}owner:{owner}"


def receipt_replay(prefix: str, provider: str, digest: str) -> str:
    """The replay guard of one provider receipt."""
    return f"{prefix}rcpt:{provider}:{digest}"


def message_index(prefix: str, provider: str, digest: str) -> str:
    """The send a provider message id carried (``digest`` hashes the id); not per customer:
    it expires (``channels/message_tokens.py``) instead of being found by erasure."""
    return f"{prefix}msgidx:{provider}:{digest}"


def recipient_index(prefix: str, provider: str, digest: str) -> str:
    """The latest send to a provider recipient (``digest`` hashes the address, never stored)."""
    return f"{prefix}msgrcpt:{provider}:{digest}"


def customer_patterns(prefix: str, customer_key: str) -> list[str]:
    """SCAN patterns matching every per-customer key of ``customer_key`` (glob-escaped)."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in customer_key)
    return [f"{prefix}*:{{{escaped}}}", f"{prefix}*:{{{escaped}}}:*"]
