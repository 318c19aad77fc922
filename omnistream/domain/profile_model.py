"""The unified customer profile: the data every channel reads and every event updates.

The models here are plain values. ``apply_event`` (in ``profile.py``) returns a *new* profile that
may share unchanged sub-objects with the old one (copy on write keeps the hot path cheap), so
treat a profile as immutable: replace fields with ``model_copy(update=...)``, never edit them in
place. Every collection has a bound so one table row cannot grow without limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_CART_ITEMS",
    "MAX_IDENTIFIERS",
    "MAX_MERGED_FROM",
    "MAX_PUSH_TOKENS",
    "MAX_RECENT_ORDERS",
    "MAX_STORES",
    "MAX_TRAITS",
    "MAX_VIEWED_PRODUCTS",
    "PREFERRED_RECENCY",
    "Cart",
    "CartItem",
    "ChannelEngagement",
    "OrderRef",
    "Orders",
    "Profile",
    "StoreVisits",
    "ViewedProduct",
    "WebPushSubscription",
]

MAX_VIEWED_PRODUCTS: Final = 20
MAX_CART_ITEMS: Final = 50
MAX_RECENT_ORDERS: Final = 100
"""Order ids kept for idempotency: a redelivered ``order_placed`` older than this many orders
would count again (producers retry within minutes; customers do not place 100 orders in them)."""
MAX_STORES: Final = 10
MAX_PUSH_TOKENS: Final = 5
MAX_TRAITS: Final = 100
MAX_IDENTIFIERS: Final = 50
MAX_MERGED_FROM: Final = 50
PREFERRED_RECENCY: Final = timedelta(days=30)
"""``preferred_channel`` only compares channels engaged with within this span of the most recent
engagement among the candidates: a channel the customer abandoned loses to the one in use."""


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelEngagement(_Value):
    """Counters of one channel's messages to this customer (from omnistream's outcome events)."""

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    last_sent_at: datetime | None = None
    last_engaged_at: datetime | None = None
    """Latest open or click: the customer acted, not just the provider."""

    @property
    def engagements(self) -> int:
        return self.opened + self.clicked


class CartItem(_Value):
    product_id: str
    quantity: int = 1
    price: Decimal | None = None
    name: str | None = None
    added_at: datetime


class Cart(_Value):
    """Product id -> line; insertion ordered. At most ``MAX_CART_ITEMS`` lines (oldest go)."""

    items: dict[str, CartItem] = Field(default_factory=dict)
    updated_at: datetime | None = None

    @property
    def total(self) -> Decimal:
        """Value of the priced lines (unpriced lines count as zero)."""
        return sum(
            (i.price * i.quantity for i in self.items.values() if i.price is not None),
            Decimal(0),
        )

    @property
    def quantity(self) -> int:
        return sum(i.quantity for i in self.items.values())


class ViewedProduct(_Value):
    product_id: str
    viewed_at: datetime
    name: str | None = None
    category: str | None = None
    price: Decimal | None = None


class OrderRef(_Value):
    """One recent order, kept for idempotency and for de-duplication when profiles merge."""

    order_id: str
    total: Decimal
    currency: str | None = None
    placed_at: datetime
    product_ids: list[str] = Field(default_factory=list)
    """What was bought (at most ``MAX_CART_ITEMS`` ids): a cart line added before this order
    and merged in from another row, or arriving late, is not resurrected."""


class Orders(_Value):
    """Order aggregates.

    ``count``/``revenue`` cover orders in ``currency`` (the first currency seen) so that the
    average order value is meaningful; orders in another currency are counted in
    ``other_currency_count`` and still update the ``last_order_*`` fields.
    """

    count: int = 0
    revenue: Decimal = Decimal(0)
    currency: str | None = None
    other_currency_count: int = 0
    last_order_at: datetime | None = None
    last_order_id: str | None = None
    last_order_total: Decimal | None = None
    recent: list[OrderRef] = Field(default_factory=list)
    """The last ``MAX_RECENT_ORDERS`` orders, oldest first."""
    first_order_at: datetime | None = None
    """Computed traits (``domain/traits.py``), kept on every order. The first order ever seen
    (``recent`` forgets it after ``MAX_RECENT_ORDERS`` orders)."""
    weekday_counts: dict[str, int] = Field(default_factory=dict)
    """Orders per local weekday (``mon`` .. ``sun``), in the ``timezone`` trait when the order
    arrived (UTC when unknown); weekdays without orders are absent."""
    hour_counts: dict[str, int] = Field(default_factory=dict)
    """Orders per local hour of day (``"0"`` .. ``"23"``), same zone rule."""
    avg_interval_days: float | None = None
    """(last order - first order) / (orders - 1), in days; None before the second order."""
    expected_next_order_at: datetime | None = None
    """``last_order_at + avg_interval_days``: when a regular customer should order again."""

    @property
    def average_order_value(self) -> Decimal | None:
        return self.revenue / self.count if self.count else None

    def has(self, order_id: str) -> bool:
        return any(ref.order_id == order_id for ref in self.recent)

    def bought_since(self, product_id: str, since: datetime) -> bool:
        """Whether a recent order at or after ``since`` contained ``product_id``."""
        return any(r.placed_at >= since and product_id in r.product_ids for r in self.recent)


class StoreVisits(_Value):
    count: int = 0
    last_visit_at: datetime | None = None
    last_store_id: str | None = None
    stores: list[str] = Field(default_factory=list)
    """Distinct stores visited, most recent last, at most ``MAX_STORES``."""


class WebPushSubscription(_Value):
    endpoint: str
    p256dh: str
    auth: str
    subscribed_at: datetime


_SENSITIVE: Final = frozenset(
    {"traits", "addresses", "push_tokens", "web_push_subscriptions", "undeliverable"}
)


class Profile(_Value):
    """Everything omnistream knows about one customer (or one not-yet-known visitor)."""

    traits: dict[str, Any] = Field(default_factory=dict)
    """Name, locale, timezone, birthday, email, phone and custom traits (JSON scalars/lists)."""
    addresses: dict[str, str] = Field(default_factory=dict)
    """Channel -> current address: email, sms (phone), mobile_push (latest token), web_push
    (latest endpoint), viber (user id), telegram (chat id). A bounced address is removed."""
    consents: dict[str, dict[str, bool]] = Field(default_factory=dict)
    """Channel -> category (marketing / transactional) -> granted."""
    engagement: dict[str, ChannelEngagement] = Field(default_factory=dict)
    """Channel -> what happened to the messages sent there."""
    cart: Cart = Field(default_factory=Cart)
    viewed_products: list[ViewedProduct] = Field(default_factory=list)
    """Distinct products, most recently viewed last, at most ``MAX_VIEWED_PRODUCTS``."""
    orders: Orders = Field(default_factory=Orders)
    store_visits: StoreVisits = Field(default_factory=StoreVisits)
    push_tokens: list[str] = Field(default_factory=list)
    """Mobile push tokens (phone, tablet...), most recent last, at most ``MAX_PUSH_TOKENS``."""
    web_push_subscriptions: list[WebPushSubscription] = Field(default_factory=list)
    undeliverable: dict[str, str] = Field(default_factory=dict)
    """Channel -> address that hard-bounced. Re-sending the same address in traits does not
    restore it (identify calls resend all traits); a different address does."""
    identifiers: list[str] = Field(default_factory=list)
    """Identity bookkeeping, written only by ``identity.py``: alias keys (``anon:…``,
    ``email:…``, ``phone:…``, ``crm:…``) that belong to this row, oldest first."""
    merged_from: list[str] = Field(default_factory=list)
    """Identity bookkeeping: tokens of the rows merged into this one (merge idempotency)."""
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Contact details never reach a log line through ``repr``/``str`` of a profile."""
        for name, value in super().__repr_args__():
            if name in _SENSITIVE and value:
                yield name, f"<redacted {len(value)}>"
            else:
                yield name, value

    @property
    def timezone(self) -> str | None:
        tz = self.traits.get("timezone")
        return tz if isinstance(tz, str) else None

    @property
    def locale(self) -> str | None:
        locale = self.traits.get("locale")
        return locale if isinstance(locale, str) else None

    def send_address(self, channel: str) -> str | None:
        """What a provider needs to reach this customer on ``channel``: the stored address, and
        for web push the whole subscription (endpoint and keys, as ``PushSubscription.toJSON()``
        gives it), since the payload is encrypted for the browser's keys."""
        address = self.addresses.get(channel)
        if address is None or channel != "web_push":
            return address
        for sub in reversed(self.web_push_subscriptions):
            if sub.endpoint == address:
                keys = {"p256dh": sub.p256dh, "auth": sub.auth}
                return orjson.dumps({"endpoint": sub.endpoint, "keys": keys}).decode()
        return address

    def consents_to(self, channel: str, category: str) -> bool:
        """Transactional messages need no opt-in unless refused; marketing needs an opt-in."""
        granted = self.consents.get(channel, {}).get(category)
        if granted is None:
            return category == "transactional"
        return granted

    def preferred_channel(self, candidates: Sequence[str]) -> str | None:
        """The candidate this customer engages with most recently and most often.

        The rule, exactly: among the candidates with at least one open or click, keep those
        whose last engagement is within ``PREFERRED_RECENCY`` (30 days) of the latest
        engagement among all candidates; of those pick the most engagements (opens + clicks),
        then the latest engagement, then the earlier candidate. ``None`` when the customer
        never engaged with any candidate (the journey then keeps its own channel order).
        """
        engaged: list[tuple[int, ChannelEngagement, str]] = []
        for position, channel in enumerate(candidates):
            stats = self.engagement.get(channel)
            if stats is not None and stats.last_engaged_at is not None:
                engaged.append((position, stats, channel))
        if not engaged:
            return None
        latest = max(stats.last_engaged_at for _, stats, _ in engaged if stats.last_engaged_at)
        horizon = latest - PREFERRED_RECENCY
        best: tuple[int, datetime, int] | None = None
        choice: str | None = None
        for position, stats, channel in engaged:
            assert stats.last_engaged_at is not None
            if stats.last_engaged_at < horizon:
                continue
            score = (stats.engagements, stats.last_engaged_at, -position)
            if best is None or score > best:
                best, choice = score, channel
        return choice
