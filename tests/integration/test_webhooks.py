"""POST /webhooks/{provider} on a live worker's public listener: a signed receipt becomes an
event on the customer's row; unsigned and replayed requests are refused with a clear status; the
internal listener does not route webhooks."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import orjson
import pytest

from omnistream.providers.base import sign_timestamped
from omnistream.providers.webhook import SIGNATURE_HEADER

from .conftest import Stack, Worker, wait_until
from .test_identity import customer
from .test_walking_skeleton import envelope, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "webhook-test-secret"


def post(
    worker: Worker, body: bytes, headers: dict[str, str], *, base_url: str | None = None
) -> tuple[int, dict[str, object]]:
    """POST to the public listener (or ``base_url``)."""
    request = urllib.request.Request(
        f"{base_url or worker.public_url}/webhooks/webhook", data=body, headers=headers,
        method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text.startswith(b"{") else {"text": text.decode()}


def test_signed_receipts_reach_the_profile_and_bad_ones_are_refused(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker(
        OMNISTREAM_PROVIDER_SMS="webhook",
        OMNISTREAM_WEBHOOK_SECRET=SECRET,
        OMNISTREAM_WEBHOOK_URL="http://127.0.0.1:9/unused",
    )
    asyncio.run(produce(stack, [envelope("e1", "signed_up", "c-1", traits={"first_name": "A"})]))
    wait_until(lambda: customer(worker, "c-1")[0] == 200, 30, "the customer row")

    body = orjson.dumps({"events": [{
        "id": "rcpt-1", "type": "opened", "send_id": "s-1", "customer_key": "c-1",
        "occurred_at": "2026-11-24T10:05:00+00:00",
    }]})  # fmt: skip
    signed = {SIGNATURE_HEADER: sign_timestamped(SECRET, body, int(time.time()))}

    internal = {**signed, "Authorization": f"Bearer {worker.token}"}
    assert post(worker, body, internal, base_url=worker.base_url)[0] == 404  # public only
    assert post(worker, body, {})[0] == 401  # unsigned
    forged = {SIGNATURE_HEADER: sign_timestamped("wrong", body, int(time.time()))}
    assert post(worker, body, forged)[0] == 401
    status, answer = post(worker, body, signed)
    assert (status, answer) == (200, {"accepted": 1})
    assert post(worker, body, signed)[0] == 409  # the same request again: a replay

    def opened() -> int:
        engagement = customer(worker, "c-1")[1]["profile"]["engagement"]
        return int(engagement.get("sms", {}).get("opened", 0))

    wait_until(lambda: opened() == 1, 30, "the open on the customer's profile")
