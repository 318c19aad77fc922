"""``omnistream dev``: the whole system on one machine, for a first look.

Starts the embedded broker and Redis, one worker with the sample journeys, and the demo traffic
generator, then prints a one-line summary every few seconds from the worker's own /metrics.
The worker gets a fresh random internal token each run; it is printed with the internal URLs
(``curl -H "Authorization: Bearer <token>" <url>/customers/<key>``).
Ctrl-C (or SIGTERM) stops every child in reverse order; none is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prometheus_client.parser import text_string_to_metric_families

from omnistream import devstack

__all__ = ["DevOptions", "Listeners", "Summary", "fetch", "run_dev", "summarize", "wait_ready"]


@dataclass(frozen=True)
class DevOptions:
    journeys_dir: Path
    rate: float = 50.0
    customers: int = 200
    interval: float = 3.0
    duration: float | None = None
    """Stop by itself after this many seconds (used by tests); ``None`` = until Ctrl-C."""
    log_dir: Path = Path("var/dev")


@dataclass(frozen=True)
class Summary:
    ingested: float
    entered: float
    sends: dict[str, float]
    rejected: float

    def line(self, previous: Summary | None, seconds: float) -> str:
        rate = (self.ingested - (previous.ingested if previous else 0)) / max(seconds, 1e-9)
        sends = " ".join(f"{ch}={int(n)}" for ch, n in sorted(self.sends.items())) or "-"
        return (
            f"events/s in {rate:7.1f} | events {int(self.ingested)} | "
            f"journeys entered {int(self.entered)} | sends {sends} | DLQ {int(self.rejected)}"
        )


def summarize(metrics_text: str) -> Summary:
    """Pull the summary figures out of Prometheus text exposition."""
    ingested = entered = rejected = 0.0
    sends: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "omnistream_events_ingested_total":
                ingested += sample.value
            elif sample.name == "omnistream_journey_entries_total":
                entered += sample.value
            elif sample.name == "omnistream_events_rejected_total":
                rejected += sample.value
            elif sample.name == "omnistream_sends_total" and sample.labels["outcome"] == "sent":
                channel = sample.labels["channel"]
                sends[channel] = sends.get(channel, 0.0) + sample.value
    return Summary(ingested, entered, sends, rejected)


def fetch(url: str, timeout: float = 2.0, token: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET; ``token`` goes in ``Authorization: Bearer`` (internal routes)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_ready(
    base_url: str, proc: subprocess.Popen[bytes], timeout: float, token: str | None = None
) -> dict[str, object]:
    """Poll /ready until the worker says so; fail early if the worker exits.

    On the internal listener (with ``token``) the answer has the details; on the public one
    only ``{"ready": true}``.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode} while starting")
        with contextlib.suppress(OSError):
            status, body = fetch(f"{base_url}/ready", token=token)
            last = body
            if status == 200:
                return dict(json.loads(body))
        time.sleep(0.3)
    raise RuntimeError(f"worker not ready after {timeout:.0f}s: {last}")


@dataclass(frozen=True)
class Listeners:
    """The dev worker's two ports and its internal token (docs/operations.md, Listeners)."""

    web_port: int
    public_port: int
    token: str

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"


def worker_env(
    broker: str, redis: str, listeners: Listeners, journeys: Path, data_dir: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMNISTREAM_BROKER=broker,
        OMNISTREAM_REDIS_URL=redis,
        OMNISTREAM_WEB_PORT=str(listeners.web_port),
        OMNISTREAM_PUBLIC_PORT=str(listeners.public_port),
        OMNISTREAM_INTERNAL_TOKENS=listeners.token,
        OMNISTREAM_JOURNEYS_DIR=str(journeys),
        OMNISTREAM_DATA_DIR=str(data_dir),
        OMNISTREAM_REBALANCE_TIMEOUT_S="3",
        OMNISTREAM_SESSION_TIMEOUT_S="6",
        OMNISTREAM_FETCH_MAX_WAIT_MS="10",  # Tansu holds fetches for the whole wait
        OMNISTREAM_RECOVERY_CONSISTENCY_CHECK="false",  # Tansu under-reports partition ends
        OMNISTREAM_LOG_FORMAT=env.get("OMNISTREAM_LOG_FORMAT", "text"),
        OMNISTREAM_PROVIDER_LOG_PATH=str(data_dir.parent / "sends.jsonl"),
        OMNISTREAM_PROVIDER_LOG_REDACT="false",  # dev's demo shows what was sent (fake people)
    )
    return env


def run_dev(options: DevOptions, echo: Callable[[str], None] = print) -> int:
    """Run the dev stack in the foreground; returns the exit code."""
    stop = {"now": False}

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    servers: list[devstack.EmbeddedServer] = []
    try:
        servers.append(devstack.start_broker(options.log_dir))
        servers.append(devstack.start_redis(options.log_dir))
        broker, redis = servers
        echo(f"broker {broker.url}  redis {redis.url}  logs {options.log_dir}/")
        listeners = Listeners(devstack.free_port(), devstack.free_port(), secrets.token_urlsafe(32))
        env = worker_env(
            broker.url, redis.url, listeners, options.journeys_dir, options.log_dir / "worker"
        )
        python = sys.executable
        worker, wlog = devstack.spawn(
            "worker",
            [python, "-m", "omnistream", "worker"],
            log_path=options.log_dir / "worker.log",
            env=env,
        )
        base = listeners.internal_url
        servers.append(
            devstack.EmbeddedServer("worker", worker, base, listeners.web_port, None, wlog)
        )
        ready = wait_ready(base, worker, timeout=90, token=listeners.token)
        journeys = sorted(dict(ready.get("journeys") or {}))  # type: ignore[call-overload]
        echo(f"worker ready: {ready['assigned_partitions']} topic partitions, journeys {journeys}")
        echo(f"internal (token): {base}/metrics  {base}/ready  {base}/customers/<key>")
        echo(f"internal token: {listeners.token}  (Authorization: Bearer <token>)")
        echo(f"console: {base}/console/login  (paste the internal token; docs/console.md)")
        echo(f"public: {listeners.public_url}/webhooks/<provider>  {listeners.public_url}/health")
        traffic_argv = [
            python, "-m", "omnistream", "demo-traffic",
            "--rate", str(options.rate), "--customers", str(options.customers),
        ]  # fmt: skip
        traffic, tlog = devstack.spawn(
            "traffic", traffic_argv, log_path=options.log_dir / "traffic.log", env=env
        )
        servers.append(devstack.EmbeddedServer("traffic", traffic, "", 0, None, tlog))
        echo("demo traffic started; Ctrl-C stops everything")
        return _report_loop(listeners, options, stop, servers, echo)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        devstack.stop_all(servers)
        echo("stopped: " + ", ".join(s.name for s in reversed(servers)))


def _report_loop(
    listeners: Listeners,
    options: DevOptions,
    stop: dict[str, bool],
    children: list[devstack.EmbeddedServer],
    echo: Callable[[str], None],
) -> int:
    started = last_at = time.monotonic()
    previous: Summary | None = None
    while not stop["now"]:
        time.sleep(0.2)
        for child in children:
            if child.proc.poll() is not None:
                echo(f"{child.name} exited with {child.proc.returncode}; see its log")
                return 1
        now = time.monotonic()
        if options.duration is not None and now - started >= options.duration:
            break
        if now - last_at >= options.interval:
            with contextlib.suppress(OSError):
                _, text = fetch(f"{listeners.internal_url}/metrics", token=listeners.token)
                summary = summarize(text)
                echo(summary.line(previous, now - last_at))
                previous = summary
            last_at = now
    return 0
