"""Broker URLs for our Faust transport driver."""

from __future__ import annotations

from omnistream.runtime.transport import SCHEME, consumer_url


def test_consumer_url_rewrites_every_broker() -> None:
    assert consumer_url("kafka://a:9092;kafka://b:9093") == f"{SCHEME}://a:9092;{SCHEME}://b:9093"
    assert consumer_url("b:9092") == f"{SCHEME}://b:9092"
