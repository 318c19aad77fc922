"""Faust objects built in these tests create event loops (the app takes the current one, each
service thread makes its own) and never close them unless started and stopped. Give each test
its own current loop and close every loop made during the test, so none outlives it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def closed_event_loops(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    created: list[asyncio.AbstractEventLoop] = []
    real_new_event_loop = asyncio.new_event_loop

    def tracked_new_event_loop() -> asyncio.AbstractEventLoop:
        loop = real_new_event_loop()
        created.append(loop)
        return loop

    monkeypatch.setattr(asyncio, "new_event_loop", tracked_new_event_loop)
    asyncio.set_event_loop(tracked_new_event_loop())
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        for loop in created:
            loop.close()
