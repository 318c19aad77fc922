"""Find (or install) promtool through scripts/promtool.sh; fail loudly when it cannot be had.

A skipped promtool test would hide exactly the check it exists for, so there is no skip here:
if the script cannot find or fetch promtool, the test fails with the script's own message.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "promtool.sh"


def promtool_path() -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--path"], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(
            f"promtool is required and could not be installed by {SCRIPT}:\n{proc.stderr}",
            pytrace=False,
        )
    return proc.stdout.strip().splitlines()[-1]


def run(promtool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
