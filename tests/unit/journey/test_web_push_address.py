"""A web push send carries the browser's whole subscription: the payload is encrypted for its
keys, so the endpoint alone (what the profile keeps as the address) cannot be sent to."""

from __future__ import annotations

from pathlib import Path

import orjson

from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from omnistream.providers.webpush import _subscription
from tests.unit.journey.helpers import T0, catalog_of, ev, sends

PUSH = """
id: push_hello
name: Push hello
trigger: {event: signed_up}
steps:
  - id: hello
    type: send
    channels: [web_push]
    category: transactional
    content:
      web_push: {subject: "Hi", body: "Welcome"}
"""
ENDPOINT = "https://push.example/send/abc"


def test_the_send_carries_the_subscription_the_webpush_provider_accepts(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, PUSH)
    state = CustomerState(key="c1")
    subscribed = ev("web_push_subscribed", endpoint=ENDPOINT, keys={"p256dh": "P", "auth": "A"})
    state, _ = step(catalog, state, subscribed, T0)
    state, commands = step(catalog, state, ev("signed_up"), T0)
    [send] = sends(commands)
    address = send.addresses["web_push"]
    assert orjson.loads(address) == {"endpoint": ENDPOINT, "keys": {"p256dh": "P", "auth": "A"}}
    assert _subscription(address)["endpoint"] == ENDPOINT  # what the provider reads
    assert state.profile.addresses["web_push"] == ENDPOINT  # the profile keeps the endpoint
