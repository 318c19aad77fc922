"""The customer agent's handlers are plain functions (no Faust closure) with explicit inputs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from omnistream.runtime import customers


def test_on_record_dead_letters_an_unkeyed_input_and_parses_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead: list[tuple[str, str]] = []
    parsed: list[tuple[bytes, str]] = []

    async def dead_letter(_runtime: Any, _message: Any, reason: str, detail: str) -> None:
        dead.append((reason, detail))

    async def on_parsed(_rt: Any, _batch: Any, key: bytes, event: Any, _msg: Any) -> None:
        parsed.append((key, event.event_id))

    monkeypatch.setattr(customers, "dead_letter", dead_letter)
    monkeypatch.setattr(customers, "on_parsed", on_parsed)
    runtime, batch = object(), object()
    unkeyed = SimpleNamespace(key=None, value=b"{}")
    asyncio.run(customers.on_record(runtime, batch, unkeyed))  # type: ignore[arg-type]
    assert dead == [("no_key", "customer inputs must be keyed")]
    good = SimpleNamespace(
        key=b"c-1",
        value=b'{"event_id":"e1","type":"x","source":"site","customer_id":"c-1",'
        b'"timestamp":"2026-01-01T00:00:00Z"}',
    )
    asyncio.run(customers.on_record(runtime, batch, good))  # type: ignore[arg-type]
    assert parsed == [(b"c-1", "e1")]
    asyncio.run(customers.on_record(runtime, batch, SimpleNamespace(key=b"c-1", value=b"{")))  # type: ignore[arg-type]
    assert dead[-1][0] == "malformed_json"
