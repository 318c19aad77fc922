"""``omnistream segments count NAME``: an audience estimate from the workers' tables.

Every worker counts the rows of the customer partitions it owns (``GET /segments/{name}/count``
on its internal listener, ``runtime/segments_api.py``); this command asks all of them at once,
sums per partition and says which partitions answered::

    $ omnistream segments count loyal --worker http://w0:6066 --worker http://w1:6066
    loyal: 1234 customers (partitions 0-3 of 4 answered, evaluated in 0.8 s)

A count is only as good as its coverage, so a missing answer is never hidden: a worker that is
down, rebalancing or refusing the token is named on stderr, the partitions nobody answered are
listed, the total reads "at least N", and the exit code is 1. A partition that two workers
both answered (a rebalance between their counts) is counted once. Exit codes: 0 every
partition answered, 1 some did not, 2 an unknown segment (with the known names) or no worker.

Workers: ``--worker URL`` (repeatable) or ``OMNISTREAM_WORKER_URLS`` (comma-separated); the
token: ``--token`` or the first of ``OMNISTREAM_INTERNAL_TOKENS`` (the workers' own setting).
Plain ``urllib`` in threads: one request per worker, no event loop needed in a CLI.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import click

from omnistream.clock import monotonic

__all__ = ["Answer", "Tally", "ask_all", "describe", "get_json", "segments", "tally"]

DEFAULT_TIMEOUT_S: Final = 120.0
Getter = Callable[[str, str | None, float], tuple[int, str]]
"""(url, token, timeout) -> (HTTP status, body); status 0 when there was no answer."""


@dataclass(frozen=True)
class Answer:
    """One worker's reply: its URL, HTTP status (0: none) and body (JSON or an error text)."""

    url: str
    status: int
    body: str


@dataclass
class Tally:
    """The merged answers of every worker for one segment."""

    segment: str
    counts: dict[int, int] = field(default_factory=dict)
    partition_count: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    known: list[str] | None = None
    """Set when every worker that answered said the segment is unknown: their known names."""
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def missing(self) -> list[int]:
        if self.partition_count is None:
            return []
        return [p for p in range(self.partition_count) if p not in self.counts]

    @property
    def complete(self) -> bool:
        return self.partition_count is not None and not self.missing


def get_json(url: str, token: str | None, timeout: float) -> tuple[int, str]:
    """GET ``url`` with the bearer token: (status, body), (0, reason) without an answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - operator-given URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, f"no answer: {reason}"


def ask_all(
    urls: Sequence[str], name: str, token: str | None, timeout: float, get: Getter = get_json
) -> list[Answer]:
    """Ask every worker at once (one thread each); answers in the order of ``urls``."""
    paths = [f"{url.rstrip('/')}/segments/{quote(name, safe='')}/count" for url in urls]
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        replies = list(pool.map(lambda path: get(path, token, timeout), paths))
    return [Answer(url, status, body) for url, (status, body) in zip(urls, replies, strict=True)]


def _body(answer: Answer) -> dict[str, Any] | None:
    try:
        data = json.loads(answer.body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _refusal(answer: Answer, data: dict[str, Any] | None) -> str:
    if answer.status == 0:
        return f"{answer.url}: {answer.body}"
    if answer.status == 401:
        return f"{answer.url}: 401 unauthorized (check --token / OMNISTREAM_INTERNAL_TOKENS)"
    detail = (data or {}).get("error") or answer.body[:200]
    return f"{answer.url}: HTTP {answer.status}: {detail}"


def _merge(result: Tally, answer: Answer, data: dict[str, Any]) -> None:
    """Add one worker's per-partition counts; a partition already counted is counted once."""
    size = data.get("partition_count")
    if result.partition_count is not None and size != result.partition_count:
        result.problems.append(
            f"{answer.url}: says {size} partitions, others {result.partition_count}: ignored"
        )
        return
    result.partition_count = size
    for key, count in sorted(data.get("partitions", {}).items(), key=lambda kv: int(kv[0])):
        partition = int(key)
        if partition in result.counts:
            result.notes.append(f"partition {partition} answered twice; counted once")
            continue
        result.counts[partition] = int(count)
    if data.get("unreadable"):
        result.notes.append(f"{answer.url}: {data['unreadable']} unreadable rows not counted")


def tally(name: str, answers: Iterable[Answer], elapsed_s: float = 0.0) -> Tally:
    """Merge the workers' answers (pure: the unit tests feed it answers)."""
    result = Tally(name, elapsed_s=elapsed_s)
    unknown: list[list[str]] = []
    answered = 0
    for answer in answers:
        data = _body(answer)
        if answer.status == 200 and data is not None and isinstance(data.get("partitions"), dict):
            answered += 1
            _merge(result, answer, data)
        elif answer.status == 404 and data is not None and "segments" in data:
            unknown.append([str(s) for s in data["segments"]])
            result.problems.append(f"{answer.url}: unknown segment {name!r}")
        else:
            result.problems.append(_refusal(answer, data))
    if unknown and not answered:
        result.known = sorted(set().union(*unknown))
    return result


def _ranges(partitions: Iterable[int]) -> str:
    """``0-3``, ``0-1, 3``: consecutive partitions as ranges."""
    spans: list[list[int]] = []
    for p in sorted(partitions):
        if spans and p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans) or "none"


def describe(result: Tally) -> str:
    """The one-line answer: ``NAME: N customers (partitions 0-3 of 4 answered, ...)``."""
    timing = f"evaluated in {result.elapsed_s:.1f} s"
    if result.partition_count is None:
        return f"{result.segment}: no worker answered ({timing})"
    of = f"{_ranges(result.counts)} of {result.partition_count} answered"
    if result.complete:
        return f"{result.segment}: {result.total} customers (partitions {of}, {timing})"
    missing = _ranges(result.missing)
    return (
        f"{result.segment}: at least {result.total} customers (partitions {of}; "
        f"missing: {missing}, {timing})"
    )


def _token(token: str | None) -> str | None:
    if token is None:
        return None
    return next((part.strip() for part in token.split(",") if part.strip()), None)


@click.group()
def segments() -> None:
    """Segments of journeys/segments.yaml, as the workers see them."""


@segments.command("count")
@click.argument("name")
@click.option(
    "--worker",
    "workers",
    multiple=True,
    envvar="OMNISTREAM_WORKER_URLS",
    help="A worker's internal URL (repeat for each worker; env: comma-separated).",
)
@click.option(
    "--token",
    envvar="OMNISTREAM_INTERNAL_TOKENS",
    help="Bearer token of the internal listener (default: the first of the workers' tokens).",
)
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT_S, show_default=True)
def segments_count(name: str, workers: tuple[str, ...], token: str | None, timeout: float) -> None:
    """How many customers are in segment NAME, summed over every worker's partitions."""
    urls = [u.strip() for w in workers for u in w.split(",") if u.strip()]
    if not urls:
        click.echo("no worker: give --worker URL (repeatable) or OMNISTREAM_WORKER_URLS", err=True)
        sys.exit(2)
    started = monotonic()
    answers = ask_all(urls, name, _token(token), timeout, get_json)
    result = tally(name, answers, monotonic() - started)
    if result.known is not None:
        known = ", ".join(result.known) or "none defined"
        click.echo(f"unknown segment {name!r}; known segments: {known}", err=True)
        sys.exit(2)
    for line in [*result.problems, *result.notes]:
        click.echo(line, err=True)
    click.echo(describe(result))
    sys.exit(0 if result.complete else 1)
