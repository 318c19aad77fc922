"""Load journeys/*.yaml into a Catalog; every error names its file and line, with a hint.

YAML is read with a hardened safe loader: anchors and aliases are refused (a 276-byte alias bomb
expands to 47 MB), duplicate keys are errors (PyYAML silently keeps the last one), and scalars
resolve like YAML 1.2 (``10:00`` stays a string instead of becoming the sexagesimal 600, ``on``
stays a string). Validation errors are mapped back to the YAML node they came from.

Whatever a file holds, loading it ends in a ``JourneyLoadError`` naming file and line, never in
another exception: a worker that meets a bad file keeps its running set (see
``omnistream.runtime.reload``). Hence the limits, each checked before the work it bounds: files
are refused by size before they are read (``MAX_FILE_BYTES``), bytes that are not UTF-8 name
their line, collections nest at most ``MAX_DEPTH`` levels (400 nested ``[`` in a 1 KB file made
PyYAML's recursive composer raise ``RecursionError``), nodes are counted while composing
(``MAX_NODES``), and a directory holds at most ``MAX_FILES`` journey files.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Final, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from omnistream.journey.checks import check_graph
from omnistream.journey.expr import HintedError
from omnistream.journey.model import Catalog, Journey, Policies
from omnistream.journey.segments import SEGMENTS_FILE, SegmentsError, parse_targeting, version_salt
from omnistream.journey.targeting import Targeting, current_targeting, using_targeting

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "POLICIES_FILE",
    "JourneyError",
    "JourneyLoadError",
    "journey_files",
    "load_catalog",
    "load_journey",
    "load_policies",
    "read_text",
    "read_yaml",
]

_T = TypeVar("_T")

POLICIES_FILE: Final = "policies.yaml"
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_NODES: Final = 50_000
MAX_DEPTH: Final = 50
"""Nested mappings and lists, counted from the document's top level (itself level 1)."""
MAX_FILES: Final = 1000


@dataclass(frozen=True)
class JourneyError:
    file: str
    line: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        suffix = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}: {self.message}{suffix}"


class JourneyLoadError(Exception):
    def __init__(self, errors: list[JourneyError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class _YamlError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases, with YAML 1.2-like scalar resolution, and with
    nesting depth and node count limited while the node tree is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _YamlError(line, "invalid YAML: anchors and aliases are not allowed")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _YamlError(line, f"more than {MAX_NODES} YAML nodes")
        nested = isinstance(event, yaml.CollectionStartEvent)
        self.depth += nested
        try:
            if self.depth > MAX_DEPTH:
                raise _YamlError(line, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= nested


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(("bool", "int", "float"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def _construct(loader: _Loader, node: yaml.Node) -> Any:
    """Plain data from a node tree already held to MAX_DEPTH and MAX_NODES by the loader."""
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag.endswith(":merge"):
                raise _YamlError(line, "merge keys (<<) are not allowed")
            key = _construct(loader, key_node)
            if not isinstance(key, str | int | bool) and key is not None:
                raise _YamlError(line, "mapping keys must be plain scalars")
            if key in out:
                raise _YamlError(line, f"duplicate key {key!r}")
            out[key] = _construct(loader, value_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item) for item in node.value]
    return loader.construct_object(node)


def read_yaml(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    """Parse ``text`` into plain data plus its node tree (for line numbers)."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise JourneyLoadError([JourneyError(name, 1, f"file larger than {MAX_FILE_BYTES} bytes")])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = _construct(loader, node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise JourneyLoadError([JourneyError(name, line, f"invalid YAML: {exc.problem}")]) from None
    except _YamlError as exc:
        raise JourneyLoadError([JourneyError(name, exc.line, exc.message)]) from None
    except yaml.YAMLError as exc:
        raise JourneyLoadError([JourneyError(name, 1, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return data, node


def read_text(path: Path) -> str:
    """A file's text, refused by size before it is read and with the line of a non-UTF-8 byte."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES:
                raise _too_large(name)
            raw = handle.read(MAX_FILE_BYTES + 1)  # the file may grow after the stat
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise JourneyLoadError([JourneyError(name, 1, f"cannot read: {reason}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_large(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}"
        raise JourneyLoadError([JourneyError(name, line, message)]) from None


def _too_large(name: str) -> JourneyLoadError:
    return JourneyLoadError([JourneyError(name, 1, f"file larger than {MAX_FILE_BYTES} bytes")])


def _line_of(node: yaml.Node | None, path: tuple[int | str, ...]) -> int:
    """1-based line of the node at ``path``; parts that are not in the YAML (tags) are skipped."""
    if node is None:
        return 1
    current = node
    for part in path:
        if isinstance(current, yaml.MappingNode):
            found = [v for k, v in current.value if getattr(k, "value", None) == part]
            if found:
                current = found[0]
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
    return int(current.start_mark.line) + 1


def _members(tp: Any) -> list[Any]:
    """Flatten Annotated / Optional / unions into their member types."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin is Union or origin is UnionType:
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _keys_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the schema allows at ``loc`` (for "did you mean" on unknown keys)."""
    current: list[Any] = [root]
    for part in loc:
        following: list[Any] = []
        for tp in (m for t in current for m in _members(t)):
            if _is_model(tp):
                fields = {f.alias or n: f for n, f in tp.model_fields.items()}
                tag = tp.model_fields.get("type")
                if part in fields:
                    following.append(fields[str(part)].annotation)
                elif tag is not None and part in get_args(tag.annotation):
                    following.append(tp)
            elif get_origin(tp) in (tuple, list) and isinstance(part, int):
                following.append(get_args(tp)[0])
            elif get_origin(tp) is dict:
                following.append(get_args(tp)[1])
        current = following
    keys: set[str] = set()
    for tp in (m for t in current for m in _members(t)):
        if _is_model(tp):
            keys.update(f.alias or n for n, f in tp.model_fields.items())
    keys.discard("version")
    return sorted(keys)


def _close(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _validation_errors(
    name: str, node: yaml.Node | None, root: type[BaseModel], exc: ValidationError
) -> list[JourneyError]:
    errors = []
    raw = exc.errors(include_url=False)
    locs = [tuple(err["loc"]) for err in raw]
    for err in raw:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(o[: len(loc)] == loc and o != loc for o in locs):
            continue  # "no items" only because an item failed: the item's error says it all
        where = ".".join(str(p) for p in loc)
        message, hint = str(err["msg"]), None
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, HintedError):
            message, hint = cause.message, cause.hint
        elif err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
            allowed = _keys_at(root, loc[:-1])
            hint = _close(str(loc[-1]), allowed) or f"expected one of: {', '.join(allowed)}"
        elif err["type"] == "union_tag_invalid":
            tags = str(err["ctx"]["expected_tags"]).replace("'", "").split(", ")
            message = f"unknown step type {err['ctx']['tag']!r}"
            hint = _close(str(err["ctx"]["tag"]), tags) or f"expected one of: {', '.join(tags)}"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        text = f"{where}: {message}" if where else message
        errors.append(JourneyError(name, _line_of(node, loc), text, hint))
    return errors


def load_journey(path: Path) -> Journey:
    """Load and check one journey file (schema, expressions, templates, graph)."""
    text = read_text(path)
    name = str(path)
    data, node = read_yaml(text, name)
    if not isinstance(data, dict):
        raise JourneyLoadError([JourneyError(name, 1, "a journey file must be a YAML mapping")])
    targeting = current_targeting()
    salt = version_salt(text, targeting)  # segments/scores it uses (segments.py)
    trigger = data.get("trigger")
    audience = isinstance(trigger, dict) and trigger.get("audience") is not None
    if "segment_entered" in text or audience:  # a segment trigger or a broadcast audience
        salt += f"\x00segments:{targeting.digest}"  # follows the segments file too
    version = hashlib.sha256((text + salt).encode()).hexdigest()[:12]
    try:
        journey = Journey.model_validate({**data, "version": version})
    except ValidationError as exc:
        raise JourneyLoadError(_validation_errors(name, node, Journey, exc)) from None
    problems = [*check_graph(journey), *_segment_problems(journey, targeting)]
    if problems:
        raise JourneyLoadError(
            [
                JourneyError(name, _line_of(node, loc), f"{'.'.join(map(str, loc))}: {msg}", hint)
                for loc, msg, hint in problems
            ]
        )
    return journey


def _segment_problems(
    journey: Journey, targeting: Targeting
) -> list[tuple[tuple[int | str, ...], str, str | None]]:
    """A ``segment_entered`` trigger and a broadcast ``audience`` must name a segment of
    journeys/segments.yaml."""
    problems: list[tuple[tuple[int | str, ...], str, str | None]] = []
    for field in ("segment_entered", "audience"):
        name = getattr(journey.trigger, field)
        if name is None or name in targeting.segments:
            continue
        known = ", ".join(sorted(targeting.segments)) or "none defined"
        hint = _close(name, list(targeting.segments)) or f"segments: {known} ({SEGMENTS_FILE})"
        problems.append((("trigger", field), f"unknown segment {name!r}", hint))
    return problems


def load_policies(path: Path) -> Policies:
    """journeys/policies.yaml: default time zone, quiet hours and send window."""
    name = str(path)
    data, node = read_yaml(read_text(path), name)
    try:
        return Policies.model_validate(data or {})
    except ValidationError as exc:
        raise JourneyLoadError(_validation_errors(name, node, Policies, exc)) from None


def _guarded(path: Path, load: Callable[[Path], _T]) -> _T:
    """``load(path)`` with a ``RecursionError`` turned into a file error too.

    The limits above keep every known input far from Python's recursion limit; this is the
    backstop that keeps an unforeseen one a refused file rather than a crashed worker.
    """
    try:
        return load(path)
    except RecursionError:
        raise JourneyLoadError([JourneyError(str(path), 1, "too deeply nested to load")]) from None


def load_targeting(path: Path, default_timezone: str) -> Targeting:
    """journeys/segments.yaml: named segments and score settings (``journey.segments``)."""
    name = str(path)
    data, node = read_yaml(read_text(path), name)
    try:
        return parse_targeting(data, node, default_timezone)
    except SegmentsError as exc:
        errors = [JourneyError(name, line, message, hint) for line, message, hint in exc.problems]
        raise JourneyLoadError(errors) from None


def journey_files(directory: Path) -> list[Path]:
    """The journey files of ``directory`` (``*.yaml``, ``*.yml``; not policies.yaml), sorted."""
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return [path for path in paths if path.name not in (POLICIES_FILE, SEGMENTS_FILE)]


def load_catalog(directory: Path) -> Catalog:
    """Load every journey file in ``directory``; all errors of all files are reported at once."""
    journeys: dict[str, Journey] = {}
    errors: list[JourneyError] = []
    policies = Policies()
    policies_path = directory / POLICIES_FILE
    if policies_path.exists():
        try:
            policies = _guarded(policies_path, load_policies)
        except JourneyLoadError as exc:
            errors.extend(exc.errors)
    paths = journey_files(directory)
    if len(paths) > MAX_FILES:
        message = f"more than {MAX_FILES} journey files in {directory}"
        raise JourneyLoadError([JourneyError(str(paths[MAX_FILES]), 1, message)])
    targeting = Targeting(default_timezone=policies.default_timezone)
    segments_path = directory / SEGMENTS_FILE
    if segments_path.exists():
        try:
            targeting = _guarded(
                segments_path, lambda path: load_targeting(path, policies.default_timezone)
            )
        except JourneyLoadError as exc:
            errors.extend(exc.errors)
    with using_targeting(targeting):  # conditions capture segments and score settings
        for path in paths:
            try:
                journey = _guarded(path, load_journey)
            except JourneyLoadError as exc:
                errors.extend(exc.errors)
                continue
            if journey.id in journeys:
                errors.append(JourneyError(str(path), 1, f"duplicate journey id {journey.id!r}"))
            journeys[journey.id] = journey
    if errors:
        raise JourneyLoadError(errors)
    return Catalog(journeys, policies, targeting=targeting)
