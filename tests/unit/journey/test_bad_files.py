"""Any journey file, however broken, is a ``file:line`` error, never an exception of another kind
(issue 15.5): a worker that meets one keeps its set, ``validate`` prints one line per problem."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnistream.journey import loader
from omnistream.journey.cli import journeys
from omnistream.journey.loader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_FILES,
    JourneyError,
    JourneyLoadError,
    load_catalog,
    read_yaml,
)

from .test_loader import LEGACY

NESTED_FLOW = "[" * 400  # 1 KB: RecursionError in PyYAML's composer before the cap


def errors_of(directory: Path) -> list[JourneyError]:
    with pytest.raises(JourneyLoadError) as caught:
        load_catalog(directory)
    return caught.value.errors


def one_error(directory: Path) -> JourneyError:
    errors = errors_of(directory)
    assert len(errors) == 1, errors
    return errors[0]


def block_nesting(levels: int) -> str:
    """``levels`` nested block mappings, one per line: level ``n`` is on line ``n``."""
    keys = "".join(f"{'  ' * i}k{i}:\n" for i in range(levels - 1))
    return keys + "  " * (levels - 1) + "v: 1\n"


def test_deep_flow_nesting_is_a_file_line_error(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text(NESTED_FLOW)
    error = one_error(tmp_path)
    assert error.file.endswith("deep.yaml") and error.line == 1
    assert f"nested deeper than {MAX_DEPTH} levels" in error.message


def test_deep_block_nesting_names_the_line_where_the_limit_is_passed(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text(block_nesting(MAX_DEPTH + 5))
    error = one_error(tmp_path)
    assert error.line == MAX_DEPTH + 1
    read_yaml(block_nesting(MAX_DEPTH), "ok.yaml")  # the limit itself is allowed


def test_a_byte_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(LEGACY.replace("Cart", "Caf\xe9").encode("latin-1"))
    error = one_error(tmp_path)
    assert error.file.endswith("latin1.yaml") and error.line == 2
    assert "not UTF-8: byte 0xe9 at column 10" in error.message


def test_a_bad_policies_file_is_a_file_line_error(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_bytes(b"default_timezone: Europe/Kyiv\nx: \xff\n")
    error = one_error(tmp_path)
    assert error.file.endswith("policies.yaml") and error.line == 2


def test_a_huge_file_is_refused_without_being_read(tmp_path: Path) -> None:
    with (tmp_path / "huge.yaml").open("wb") as handle:
        handle.truncate(64 * MAX_FILE_BYTES)  # sparse: 64 MB of zeros on disk costs nothing
    tracemalloc.start()
    try:
        error = one_error(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"larger than {MAX_FILE_BYTES} bytes" in error.message and error.line == 1
    assert peak < 4 * MAX_FILE_BYTES


def test_too_many_nodes_stop_while_composing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "MAX_NODES", 1000)  # the same check as at 50,000, but quick
    (tmp_path / "wide.yaml").write_text("[" + "1," * 100_000 + "1]")  # 200 KB, 100k nodes
    tracemalloc.start()
    try:
        error = one_error(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than 1000 YAML nodes" in error.message
    assert peak < 5_000_000  # composing all 100k nodes before counting took about 60 MB


def test_a_recursion_error_anywhere_is_still_a_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_deep(_: object) -> list[object]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(loader, "check_graph", too_deep)
    (tmp_path / "cart.yaml").write_text(LEGACY)
    error = one_error(tmp_path)
    assert error.file.endswith("cart.yaml") and "too deeply nested" in error.message


def test_an_unreadable_entry_is_an_error_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "cart.yaml").write_text(LEGACY)
    (tmp_path / "folder.yaml").mkdir()
    error = one_error(tmp_path)
    assert error.file.endswith("folder.yaml") and "cannot read" in error.message


def test_too_many_files_are_refused(tmp_path: Path) -> None:
    for i in range(MAX_FILES + 1):
        (tmp_path / f"j{i}.yaml").touch()
    error = one_error(tmp_path)
    assert f"more than {MAX_FILES} journey files" in error.message


def test_deep_templates_and_expressions_are_file_line_errors(tmp_path: Path) -> None:
    deep_template = "{% if event %}" * 200 + "x" + "{% endif %}" * 200
    deep_condition = "(" * 300 + "1" + ")" * 300
    text = LEGACY.replace("Hi {{ profile.traits.first_name }}", deep_template)
    text = text.replace("steps:", f"entry: {{audience: '{deep_condition}'}}\nsteps:")
    (tmp_path / "j.yaml").write_text(text)
    errors = errors_of(tmp_path)
    assert {e.line for e in errors} <= {5, 11} and len(errors) >= 1, errors


@pytest.mark.parametrize(
    ("name", "content"),
    [("deep.yaml", NESTED_FLOW.encode()), ("latin1.yaml", b"id: caf\xe9\n")],
)
def test_validate_prints_one_line_per_error_and_no_traceback(
    tmp_path: Path, name: str, content: bytes
) -> None:
    (tmp_path / name).write_bytes(content)
    result = CliRunner().invoke(journeys, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"{tmp_path / name}:1: ")
    assert "Traceback" not in result.stderr and result.stderr.rstrip().endswith("1 error(s)")


def test_the_journeys_dir_defaults_to_omnistream_journeys_dir(tmp_path: Path) -> None:
    (tmp_path / "cart.yaml").write_text(LEGACY)
    env = {"OMNISTREAM_JOURNEYS_DIR": str(tmp_path)}
    result = CliRunner(env=env).invoke(journeys, ["validate"])
    assert result.exit_code == 0, result.output
    assert "ok  cart" in result.output
    graph = CliRunner(env=env).invoke(journeys, ["graph", "cart"])
    assert graph.exit_code == 0 and "remind" in graph.output
    explicit = CliRunner(env=env).invoke(journeys, ["graph", "cart", "--dir", os.devnull])
    assert explicit.exit_code == 1  # --dir still wins over the variable
