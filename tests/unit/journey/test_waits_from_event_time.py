"""Waits run from when the input happened (its timestamp, never later than ``now``), not from
when the worker got to it: a cart read 30 s late after a failover still ends its 20 s wait 20 s
after the cart. An elapsed wait is still parked (due in the past): the timer loop, not the
engine, decides when it fires, once the partition's inputs were read up to that time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from omnistream.domain.state import CustomerState
from omnistream.journey.engine import step
from tests.unit.journey.helpers import T0, catalog_of, ev, scheduled, sends

WAIT_FOR = """
id: cart
name: Cart
trigger: {event: cart_updated}
steps:
  - id: wait
    type: wait_for
    event: order_placed
    timeout: 20s
    on_timeout: push
  - id: push
    type: send
    channels: [mobile_push]
    content: {mobile_push: {body: "Still there?"}}
"""
WAIT = """
id: nudge
name: Nudge
trigger: {event: cart_updated}
steps:
  - {id: hold, type: wait, duration: 20s, next: push}
  - id: push
    type: send
    channels: [mobile_push]
    content: {mobile_push: {body: "Still there?"}}
"""
LATE = timedelta(seconds=30)


def test_a_late_input_starts_its_timeout_at_its_own_time(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, WAIT_FOR)
    _, commands = step(catalog, CustomerState(key="c1"), ev("cart_updated", T0), T0 + LATE)
    (timer,) = scheduled(commands)
    assert timer.due == T0 + timedelta(seconds=20)  # not T0 + 30 s + 20 s


def test_an_elapsed_wait_is_parked_not_skipped(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, WAIT)
    _, commands = step(catalog, CustomerState(key="c1"), ev("cart_updated", T0), T0 + LATE)
    (timer,) = scheduled(commands)
    assert timer.due == T0 + timedelta(seconds=20)
    assert not sends(commands)  # the push waits for the timer loop, which checks the inputs


def test_a_clock_ahead_of_the_worker_does_not_stretch_the_wait(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, WAIT_FOR)
    ahead = ev("cart_updated", T0 + timedelta(minutes=5))  # within the allowed skew
    _, commands = step(catalog, CustomerState(key="c1"), ahead, T0)
    (timer,) = scheduled(commands)
    assert timer.due == T0 + timedelta(seconds=20)
