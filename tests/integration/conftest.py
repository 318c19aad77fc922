"""Start real worker processes against the real broker and Redis; always stop them."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from omnistream import devstack
from omnistream.dev import fetch, wait_ready

_counter = itertools.count()


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    base_url: str
    """The internal listener (token required): /metrics, /ready, /customers."""
    env: dict[str, str]
    log_path: Path
    public_url: str = ""
    """The public listener: /webhooks/{provider}, /health, /ready without details."""
    token: str | None = None
    """The first of the worker's OMNISTREAM_INTERNAL_TOKENS."""

    def fetch(self, path: str, *, token: str | bool = True) -> tuple[int, str]:
        """GET an internal route; ``token=True`` sends the worker's token, ``False`` none, a
        string that one."""
        sent = self.token if token is True else token if isinstance(token, str) else None
        return fetch(f"{self.base_url}{path}", token=sent)

    def fetch_public(self, path: str) -> tuple[int, str]:
        return fetch(f"{self.public_url}{path}")

    def metrics(self) -> str:
        status, body = self.fetch("/metrics")
        assert status == 200, body
        return body

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@dataclass
class Stack:
    """Settings shared by the workers of one test: its own topics, group and output files."""

    broker_url: str
    redis_url: str
    prefix: str
    app_id: str
    tmp: Path
    journeys_dir: Path
    sends_path: Path
    token: str = ""
    """Every worker of the test accepts it on its internal listener."""

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def redis_prefix(self) -> str:
        """Each test's own Redis keys: dedup records must not leak between tests."""
        return self.prefix.replace(".", ":")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
        env.update(
            OMNISTREAM_BROKER=self.broker_url,
            OMNISTREAM_REDIS_URL=self.redis_url,
            OMNISTREAM_TOPIC_PREFIX=self.prefix,
            OMNISTREAM_APP_ID=self.app_id,
            OMNISTREAM_JOURNEYS_DIR=str(self.journeys_dir),
            OMNISTREAM_PROVIDER_LOG_PATH=str(self.sends_path),
            OMNISTREAM_PROVIDER_LOG_REDACT="false",  # the tests read to/subject/body back
            OMNISTREAM_REBALANCE_TIMEOUT_S="3",
            OMNISTREAM_SESSION_TIMEOUT_S="6",
            OMNISTREAM_FETCH_MAX_WAIT_MS="10",
            OMNISTREAM_RECOVERY_CONSISTENCY_CHECK="false",
            OMNISTREAM_PARTITIONS="4",
            OMNISTREAM_CHANNELS_REDIS_PREFIX=self.redis_prefix,
            OMNISTREAM_INTERNAL_TOKENS=self.token,
        )
        env.update(extra)
        return env

    def sends(self) -> list[dict[str, object]]:
        if not self.sends_path.exists():
            return []
        return [json.loads(line) for line in self.sends_path.read_text().splitlines() if line]


def new_stack(broker_url: str, redis_url: str, tmp_path: Path) -> Stack:
    """A stack of its own (topics, group, Redis keys, token) in ``tmp_path``: the ``stack``
    fixture per test; tests/browser builds one per module with it."""
    n = next(_counter)
    run = f"{os.getpid()}x{n}"
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    return Stack(
        broker_url=broker_url,
        redis_url=redis_url,
        prefix=f"t{run}.",
        app_id=f"omnistream-test-{run}",
        tmp=tmp_path,
        journeys_dir=journeys,
        sends_path=tmp_path / "sends.jsonl",
        token=secrets.token_urlsafe(32),
    )


@pytest.fixture
def stack(broker_url: str, redis_url: str, tmp_path: Path) -> Stack:
    return new_stack(broker_url, redis_url, tmp_path)


def launch_worker(
    stack: Stack,
    started: list[Worker],
    name: str = "w0",
    ready_timeout: float = 60.0,
    **extra_env: str,
) -> Worker:
    """Start a worker process of ``stack`` and wait until it is ready. It is appended to
    ``started`` before the wait, so the caller stops it even when it never gets ready."""
    port, public_port = devstack.free_port(), devstack.free_port()
    data_dir = stack.tmp / name
    env = stack.env(
        OMNISTREAM_WEB_PORT=str(port),
        OMNISTREAM_PUBLIC_PORT=str(public_port),
        OMNISTREAM_DATA_DIR=str(data_dir),
        **extra_env,
    )
    tokens = [t.strip() for t in env["OMNISTREAM_INTERNAL_TOKENS"].split(",") if t.strip()]
    log_path = stack.tmp / f"{name}.log"
    proc, log = devstack.spawn(
        name, [sys.executable, "-m", "omnistream", "worker"], log_path=log_path, env=env
    )
    worker = Worker(
        proc,
        f"http://127.0.0.1:{port}",
        env,
        log_path,
        public_url=f"http://127.0.0.1:{public_port}",
        token=tokens[0] if tokens else None,
    )
    started.append(worker)
    try:  # the public /ready, as an orchestrator's probe asks: no token needed
        wait_ready(worker.public_url, proc, timeout=ready_timeout)
    except RuntimeError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log_tail()}") from None
    finally:
        if log is not None:
            log.close()
    return worker


@pytest.fixture
def start_worker(stack: Stack) -> Iterator[Callable[..., Worker]]:
    """Factory: start a worker process; every started worker is stopped at teardown."""
    started: list[Worker] = []

    def start(name: str = "w0", ready_timeout: float = 60.0, **extra_env: str) -> Worker:
        return launch_worker(stack, started, name, ready_timeout, **extra_env)

    yield start
    for worker in started:
        worker.stop()


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str | Callable[[], str]
) -> None:
    """Poll ``predicate``; on timeout fail with ``what`` (a callable is evaluated only then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    description = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {description}")
