"""``omnistream segments count``: the fan-out, the merge of the workers' answers, the output, the
exit codes; and the worker's per-partition count (``runtime/segments_api.count_rows``)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from omnistream.cli import cli
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState
from omnistream.ops import segments_cli
from omnistream.ops.segments_cli import Answer, ask_all, describe, segments, tally
from omnistream.runtime.segments_api import CHUNK, count_rows

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def ok(url: str, partitions: dict[int, int], size: int = 4, **extra: Any) -> Answer:
    body = {"segment": "loyal", "partitions": {str(p): n for p, n in partitions.items()}}
    return Answer(url, 200, json.dumps({**body, "partition_count": size, **extra}))


def unknown(url: str, known: list[str]) -> Answer:
    return Answer(url, 404, json.dumps({"error": "unknown segment 'x'", "segments": known}))


def test_all_partitions_answered_sum_and_say_so() -> None:
    result = tally("loyal", [ok("w0", {0: 3, 1: 4}), ok("w1", {2: 0, 3: 5})], elapsed_s=0.42)
    assert result.complete and result.total == 12 and not result.problems
    assert describe(result) == (
        "loyal: 12 customers (partitions 0-3 of 4 answered, evaluated in 0.4 s)"
    )


def test_a_missing_worker_is_visible_never_a_silent_undercount() -> None:
    down = Answer("http://w1:6066", 0, "no answer: [Errno 111] Connection refused")
    result = tally("loyal", [ok("w0", {0: 3, 1: 4, 3: 1}), down])
    assert not result.complete and result.missing == [2]
    assert result.problems == ["http://w1:6066: no answer: [Errno 111] Connection refused"]
    assert describe(result) == (
        "loyal: at least 8 customers (partitions 0-1, 3 of 4 answered; missing: 2, "
        "evaluated in 0.0 s)"
    )


def test_refusals_are_named() -> None:
    answers = [
        Answer("w0", 401, '{"error": "unauthorized", "reason": "invalid"}'),
        Answer("w1", 503, '{"error": "rebalancing or recovering: ask again in a few seconds"}'),
        Answer("w2", 500, "<html>oops</html>"),
    ]
    result = tally("loyal", answers)
    assert result.partition_count is None and not result.complete
    assert result.problems == [
        "w0: 401 unauthorized (check --token / OMNISTREAM_INTERNAL_TOKENS)",
        "w1: HTTP 503: rebalancing or recovering: ask again in a few seconds",
        "w2: HTTP 500: <html>oops</html>",
    ]
    assert describe(result) == "loyal: no worker answered (evaluated in 0.0 s)"


def test_a_partition_answered_twice_is_counted_once() -> None:
    result = tally("loyal", [ok("w0", {0: 3, 1: 4}), ok("w1", {1: 4, 2: 1, 3: 0})])
    assert result.total == 8 and result.complete
    assert result.notes == ["partition 1 answered twice; counted once"]


def test_a_worker_with_another_partition_count_is_not_mixed_in() -> None:
    result = tally("loyal", [ok("w0", {0: 1, 1: 1}, size=2), ok("w1", {2: 5}, size=4)])
    assert result.total == 2 and result.partition_count == 2 and result.complete
    assert result.problems == ["w1: says 4 partitions, others 2: ignored"]


def test_unknown_everywhere_gives_the_known_names() -> None:
    result = tally("loyl", [unknown("w0", ["loyal", "lapsed"]), unknown("w1", ["loyal"])])
    assert result.known == ["lapsed", "loyal"]


def test_unknown_on_one_worker_only_is_a_problem_not_an_unknown_segment() -> None:
    result = tally("loyal", [ok("w0", {0: 1, 1: 1}, size=2), unknown("w1", ["lapsed"])])
    assert result.known is None
    assert result.problems == ["w1: unknown segment 'loyal'"]


def test_unreadable_rows_are_reported() -> None:
    result = tally("loyal", [ok("w0", {0: 1}, size=1, unreadable=2)])
    assert result.notes == ["w0: 2 unreadable rows not counted"]


def test_ask_all_asks_every_worker_at_once_with_the_token() -> None:
    seen: list[tuple[str, str | None]] = []
    barrier = threading.Barrier(3, timeout=5)  # fails unless all three ask concurrently

    def get(url: str, token: str | None, timeout: float) -> tuple[int, str]:
        seen.append((url, token))
        barrier.wait()
        return 200, url

    urls = ["http://a:1/", "http://b:1", "http://c:1"]
    answers = ask_all(urls, "big spenders/x", "tok", 5.0, get)
    assert [a.url for a in answers] == urls and [a.body for a in answers] == [
        "http://a:1/segments/big%20spenders%2Fx/count",
        "http://b:1/segments/big%20spenders%2Fx/count",
        "http://c:1/segments/big%20spenders%2Fx/count",
    ]
    assert {token for _, token in seen} == {"tok"}


def fake_workers(
    monkeypatch: pytest.MonkeyPatch, replies: Mapping[str, tuple[int, str]]
) -> list[str]:
    asked: list[str] = []

    def get(url: str, token: str | None, timeout: float) -> tuple[int, str]:
        asked.append(f"{url} {token}")
        return replies[url.split("/segments/")[0]]

    monkeypatch.setattr(segments_cli, "get_json", get)
    return asked


def test_cli_complete_count_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    replies = {"http://w0": (200, ok("w0", {0: 2, 1: 1}, size=2).body)}
    asked = fake_workers(monkeypatch, replies)
    env = {"OMNISTREAM_INTERNAL_TOKENS": "t1,t2"}
    result = CliRunner().invoke(segments, ["count", "loyal", "--worker", "http://w0"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("loyal: 3 customers (partitions 0-1 of 2 answered, ")
    assert asked == ["http://w0/segments/loyal/count t1"]


def test_cli_workers_from_the_environment_and_missing_partitions_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replies = {"http://w0": (200, ok("w0", {0: 2}).body), "http://w1": (0, "no answer: timed out")}
    fake_workers(monkeypatch, replies)
    env = {"OMNISTREAM_WORKER_URLS": "http://w0,http://w1", "OMNISTREAM_INTERNAL_TOKENS": "t"}
    result = CliRunner().invoke(segments, ["count", "loyal"], env=env)
    assert result.exit_code == 1
    assert "at least 2 customers (partitions 0 of 4 answered; missing: 1-3" in result.stdout
    assert "http://w1: no answer: timed out" in result.stderr


def test_cli_unknown_segment_exits_2_with_the_names(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_workers(monkeypatch, {"http://w0": (404, unknown("w0", ["lapsed", "loyal"]).body)})
    result = CliRunner().invoke(segments, ["count", "loyl", "--worker", "http://w0"])
    assert result.exit_code == 2
    assert "unknown segment 'loyl'; known segments: lapsed, loyal" in result.stderr


def test_cli_without_workers_exits_2() -> None:
    result = CliRunner().invoke(segments, ["count", "loyal"], env={"OMNISTREAM_WORKER_URLS": ""})
    assert result.exit_code == 2 and "--worker" in result.stderr


def test_the_main_cli_has_the_group() -> None:
    result = CliRunner().invoke(cli, ["segments", "count", "--help"])
    assert result.exit_code == 0 and "--worker" in result.stdout


def row(key: str, spent: float) -> bytes:
    return CustomerState(key=key, profile=Profile(traits={"spent": spent})).to_bytes()


def big(ctx: Mapping[str, Any]) -> bool:
    return bool(ctx["profile"]["traits"]["spent"] >= 100)


def test_count_rows_counts_per_partition_and_skips_gone_and_unreadable() -> None:
    data = {b"a": row("a", 150), b"b": row("b", 10), b"c": row("c", 300), b"d": b"\x00junk"}
    by_partition = {0: [b"a", b"b", b"gone"], 2: [b"c", b"d"], 3: []}
    counts = asyncio.run(count_rows(data, by_partition, big, NOW))
    assert counts is not None
    assert counts.matched == {0: 1, 2: 1, 3: 0}
    assert (counts.rows, counts.unreadable) == (4, 1)


def test_count_rows_gives_up_when_a_rebalance_happens() -> None:
    keys = [f"k{i}".encode() for i in range(CHUNK + 1)]
    data = {k: row(k.decode(), 200) for k in keys}
    checks: list[int] = []

    def still_valid() -> bool:
        checks.append(1)
        return len(checks) < 2  # true after the first chunk, false after the second

    assert asyncio.run(count_rows(data, {0: keys}, big, NOW, still_valid)) is None
