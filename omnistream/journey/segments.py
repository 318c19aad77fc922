"""Named segments and score settings: journeys/segments.yaml.

A segment is a named condition over the profile (``lapsed: rfm_segment() == "lapsed"``) that
any journey condition can use as ``in_segment("lapsed")``. The file also holds the settings of
the score functions (RFM cut-offs, BG/NBD parameters), so one file says what "lapsed" or
"likely buyer" means for the whole catalog::

    scores:
      rfm: {recency_days: [30, 60, 120, 240], frequency: [2, 3, 5, 10],
            monetary: [100, 250, 500, 1000]}
      purchase_model: {r: 0.243, alpha: 30.9, a: 0.793, b: 2.426}
    segments:
      lapsed:
        description: Bought before, nothing for a long while.
        when: rfm_segment() in ["lapsed", "at_risk"]

Segment conditions see only ``profile`` (and ``now``): a segment is a property of the
customer, not of an event, so ``segments_entered(before, after)`` can tell the engine which
segments a profile change entered. A segment may use the segments defined above it (no cycles
by construction). Segments are compiled into the conditions that use them when the catalog
loads (``Targeting``), so a segment costs what its condition costs.

This module parses data already read by the catalog loader (``omnistream.journey.loader``),
which owns files and turns ``SegmentsError`` problems into ``file:line`` errors.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omnistream.domain.traits import PurchaseModel, RfmThresholds
from omnistream.journey.expr import ROOTS, HintedError, compile_expr
from omnistream.journey.targeting import SCORE_FUNCTIONS, Targeting, using_targeting

__all__ = [
    "MAX_SEGMENTS",
    "SEGMENTS_FILE",
    "SegmentsError",
    "parse_targeting",
    "segments_entered",
    "segments_of",
    "version_salt",
]

SEGMENTS_FILE: Final = "segments.yaml"
MAX_SEGMENTS: Final = 200
_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Problem = tuple[int, str, str | None]


class SegmentsError(Exception):
    """Problems of a segments file as (line, message, hint)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"line {line}: {message}" for line, message, _ in problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scores(_Strict):
    rfm: RfmThresholds = Field(default_factory=RfmThresholds)
    purchase_model: PurchaseModel = Field(default_factory=PurchaseModel)


class Segment(_Strict):
    when: str = Field(min_length=1)
    description: str = ""


class SegmentsFile(_Strict):
    scores: Scores = Field(default_factory=Scores)
    segments: dict[str, Segment] = Field(default_factory=dict, max_length=MAX_SEGMENTS)


def _line_of(node: yaml.Node | None, path: Iterable[int | str]) -> int:
    """1-based line of the deepest node of ``path`` present in the YAML."""
    if node is None:
        return 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = [v for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not found:
                break
            node = found[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
    return int(node.start_mark.line) + 1


def _key_line(node: yaml.Node | None, name: str) -> int:
    """Line of the key ``name`` under ``segments`` (where a bad name is written)."""
    segments = _line_of(node, ("segments",))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "segments" and isinstance(value, yaml.MappingNode):
                for inner, _ in value.value:
                    if getattr(inner, "value", None) == name:
                        return int(inner.start_mark.line) + 1
    return segments


def _schema_problems(exc: ValidationError, node: yaml.Node | None) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc)
        message = str(err["msg"]).removeprefix("Value error, ")
        hint = None
        if err["type"] == "extra_forbidden":
            message, hint = f"unknown key {loc[-1]!r}", "see docs/journeys.md, Targeting"
        problems.append((_line_of(node, loc), f"{where}: {message}" if where else message, hint))
    return problems


def _foreign_roots(source: str) -> list[str]:
    """Roots other than ``profile`` a segment condition names (segments are per customer)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return []  # compile_expr reports the syntax error with its column
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return sorted(names & (set(ROOTS) - {"profile"}))


def _compile_segments(
    spec: SegmentsFile, node: yaml.Node | None, base: Targeting
) -> tuple[dict[str, Any], list[Problem]]:
    compiled: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, segment in spec.segments.items():
        line = _line_of(node, ("segments", name, "when"))
        if not _NAME.match(name):
            rule = "lowercase letters, digits and _, starting with a letter, at most 64"
            problems.append((_key_line(node, name), f"segment {name!r}: {rule}", None))
            continue
        foreign = _foreign_roots(segment.when)
        if foreign:
            message = f"segments.{name}.when: a segment is about the profile; {foreign[0]!r}"
            problems.append((line, message, "use profile.* and the functions only"))
            continue
        scope = Targeting(dict(compiled), base.default_timezone, base.rfm, base.purchase_model)
        try:
            with using_targeting(scope):
                compiled[name] = compile_expr(segment.when).value
        except HintedError as exc:
            problems.append((line, f"segments.{name}.when: {exc.message}", exc.hint))
    return compiled, problems


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def parse_targeting(data: Any, node: yaml.Node | None, default_timezone: str) -> Targeting:
    """The ``Targeting`` of a parsed segments file, or ``SegmentsError`` with every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SegmentsError([(1, "a segments file must be a YAML mapping", None)])
    try:
        spec = SegmentsFile.model_validate(data)
    except ValidationError as exc:
        raise SegmentsError(_schema_problems(exc, node)) from None
    base = Targeting({}, default_timezone, spec.scores.rfm, spec.scores.purchase_model)
    compiled, problems = _compile_segments(spec, node, base)
    if problems:
        raise SegmentsError(problems)
    sources = {name: segment.when for name, segment in spec.segments.items()}
    return Targeting(
        compiled,
        default_timezone,
        spec.scores.rfm,
        spec.scores.purchase_model,
        digest=_digest({"scores": spec.scores.model_dump(mode="json"), "segments": sources}),
    )


def version_salt(text: str, targeting: Targeting) -> str:
    """What a journey's version must also cover besides its own text.

    A journey that uses ``in_segment`` or a score function behaves differently when
    segments.yaml changes, so its version (and the catalog's, which hot reload compares)
    changes with the segments and score settings; other journeys keep their versions.
    """
    if "in_segment(" in text:
        return f"\x00segments:{targeting.digest}"
    if any(f"{name}(" in text for name in SCORE_FUNCTIONS):
        scores = Scores(rfm=targeting.rfm, purchase_model=targeting.purchase_model)
        return f"\x00scores:{_digest(scores.model_dump(mode='json'))}"
    return ""


def segments_of(profile: Mapping[str, Any], now: datetime, targeting: Targeting) -> set[str]:
    """The segments a profile (its JSON view) is in at ``now``."""
    ctx = {"profile": profile, "now": now}
    return {name for name, condition in targeting.segments.items() if condition(ctx)}


def segments_entered(
    before: Mapping[str, Any], after: Mapping[str, Any], now: datetime, targeting: Targeting
) -> set[str]:
    """Segments ``after`` is in and ``before`` was not, both judged at ``now``: what an
    "entered segment" trigger fires on after an event changed the profile. Judging both at the
    same instant means the passing of time alone never "enters" a segment here (a scheduled
    evaluation would, with its own ``before`` taken at the previous run)."""
    entered = segments_of(after, now, targeting)
    return entered - segments_of(before, now, targeting) if entered else set()
