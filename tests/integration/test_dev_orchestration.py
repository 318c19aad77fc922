"""`omnistream dev` starts broker, Redis, worker and demo traffic, reports, and on Ctrl-C stops
every child it started: no orphan processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnistream.dev import fetch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]


def processes_mentioning(needle: str) -> list[int]:
    """PIDs whose command line or environment contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if needle.encode() in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


def test_dev_runs_reports_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    log_dir = tmp_path / "dev-logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNISTREAM_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnistream", "dev", "--journeys", str(REPO / "journeys"),
         "--interval", "1", "--rate", "100", "--log-dir", str(log_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        start_new_session=True, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 150
        summaries = 0
        while time.monotonic() < deadline and summaries < 3:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if line.startswith("events/s in"):
                summaries += 1
        output = "\n".join(lines)
        assert summaries == 3, output
        internal = re.search(r"internal \(token\): (http://127\.0\.0\.1:\d+)/metrics", output)
        token = re.search(r"internal token: (\S+)", output)
        public = re.search(r"public: (http://127\.0\.0\.1:\d+)/webhooks", output)
        assert internal and token and public, output
        assert fetch(f"{internal[1]}/metrics")[0] == 401  # the printed token is needed
        assert fetch(f"{internal[1]}/metrics", token=token[1])[0] == 200
        assert fetch(f"{public[1]}/health")[0] == 200
        last = [line for line in lines if line.startswith("events/s in")][-1]
        assert int(re.search(r"events (\d+)", last).group(1)) > 0, last  # type: ignore[union-attr]
        ports = re.findall(r"127\.0\.0\.1:(\d+)", output.split("\n")[0])
        assert len(ports) == 2, output

        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        rest, _ = proc.communicate(timeout=60)
        lines.extend(rest.splitlines())
        assert proc.returncode == 0, "\n".join(lines)
        assert any(line.startswith("stopped:") for line in lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)
    leftovers = (
        processes_mentioning(str(log_dir))
        + [pid for port in ports for pid in processes_mentioning(f"127.0.0.1:{port}")]
        + [pid for port in ports for pid in processes_mentioning(f"--port\x00{port}")]
    )
    assert leftovers == [], f"orphans: {leftovers}"
