"""The one CLI shape of every file generated from code (metrics docs, Grafana dashboard)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["generated_file_main"]


def generated_file_main(
    prog: str, path: Path, render: Callable[[], str], argv: list[str] | None = None
) -> int:
    """Print the rendered text; ``--write`` rewrites ``path``; ``--check`` exits 1 if stale."""
    parser = argparse.ArgumentParser(prog=prog)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite {path}")
    group.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    elif args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run {prog} --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0
