"""Two live workers, two listeners each (issue 16): customer data and metrics need a bearer token
on the internal listener, the public listener serves only webhooks and probes, and Faust's table
routing carries the token to the worker that owns the key, which checks it again.

The workers accept different token sets, which makes the routing visible from outside: w0
accepts A, w1 accepts A and B (a rotation). A request to w1 with B succeeds for the keys w1 owns
and is refused (401, by w0) for the keys it forwards to w0; the same keys with A answer 200
through w1: table routing with a valid token reaches the owner.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable

import pytest

from .conftest import Stack, Worker, wait_until
from .test_identity import event, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

KEYS = [f"c-{n}" for n in range(16)]
"""Enough keys that both workers own some (4 partitions, 2 workers)."""


def status(worker: Worker, path: str, token: str | bool = True) -> int:
    return worker.fetch(path, token=token)[0]


def test_tokens_guard_internal_routes_and_travel_with_table_routing(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    token_b = secrets.token_urlsafe(32)
    w0 = start_worker("w0")
    w1 = start_worker(
        "w1", OMNISTREAM_INTERNAL_TOKENS=f"{stack.token},{token_b}", OMNISTREAM_METRICS_OPEN="true"
    )
    records = [("site", event(n, "product_viewed", customer_id=k, product_id="p"))
               for n, k in enumerate(KEYS)]  # fmt: skip
    asyncio.run(produce(stack, records))
    wait_until(
        lambda: all(status(w, f"/customers/{k}") == 200 for w in (w0, w1) for k in KEYS),
        60,
        "every customer through both workers (the group settled after w1 joined)",
    )

    # Refused before any routing or table read: no token, a wrong one, on either worker.
    for worker in (w0, w1):
        assert status(worker, f"/customers/{KEYS[0]}", token=False) == 401
        assert status(worker, f"/customers/{KEYS[0]}", token="x" * 32) == 401
        assert status(worker, "/ready", token=False) == 401

    # Routing carries the Authorization header and the owner checks it.
    via_b = {k: status(w1, f"/customers/{k}", token=token_b) for k in KEYS}
    owned_by_w0 = [k for k, code in via_b.items() if code == 401]
    owned_by_w1 = [k for k, code in via_b.items() if code == 200]
    assert owned_by_w0 and owned_by_w1 and len(owned_by_w0) + len(owned_by_w1) == len(KEYS), via_b
    for key, (front, token) in [(owned_by_w0[0], (w1, True)), (owned_by_w1[0], (w0, True))]:
        code, body = front.fetch(f"/customers/{key}", token=token)
        assert (code, json.loads(body)["customer_key"]) == (200, key)

    # The public listener: probes without details, no customer data, no metrics.
    for worker in (w0, w1):
        assert worker.fetch_public("/ready") == (200, '{"ready": true}')
        assert worker.fetch_public("/health") == (200, '{"live": true}')
        assert worker.fetch_public(f"/customers/{KEYS[0]}")[0] == 404
        assert worker.fetch_public("/metrics")[0] == 404

    # /metrics: a token unless OMNISTREAM_METRICS_OPEN (w1); Faust's own views are gone.
    assert status(w0, "/metrics", token=False) == 401
    assert "omnistream_internal_requests_refused_total" in w0.metrics()
    assert status(w1, "/metrics", token=False) == 200
    for path in ("/router/", "/table/", "/table/customers/"):
        assert status(w0, path) == 404, path
