"""Load journeys/*.yaml into a Catalog; every error names its file and line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from omnistream.journey.model import Catalog, Journey

__all__ = ["JourneyError", "JourneyLoadError", "load_catalog", "load_journey"]


@dataclass(frozen=True)
class JourneyError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class JourneyLoadError(Exception):
    def __init__(self, errors: list[JourneyError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def _line_of(node: yaml.Node, path: tuple[int | str, ...]) -> int:
    """1-based line of the YAML node at ``path`` (as deep as it can be followed)."""
    current = node
    for part in path:
        if isinstance(current, yaml.MappingNode):
            found = [v for k, v in current.value if getattr(k, "value", None) == part]
            if not found:
                break
            current = found[0]
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
        else:
            break
    return current.start_mark.line + 1


def load_journey(path: Path) -> Journey:
    text = path.read_text(encoding="utf-8")
    name = str(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise JourneyLoadError([JourneyError(name, line, f"invalid YAML: {exc}")]) from None
    if node is None or not isinstance(data, dict):
        raise JourneyLoadError([JourneyError(name, 1, "a journey file must be a YAML mapping")])
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        return Journey.model_validate({**data, "version": version})
    except ValidationError as exc:
        errors = [
            JourneyError(name, _line_of(node, tuple(err["loc"])), _message(err))
            for err in exc.errors(include_url=False)
        ]
        raise JourneyLoadError(errors) from None


def _message(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def load_catalog(directory: Path) -> Catalog:
    """Load every journey file in ``directory``; all errors of all files are reported at once."""
    journeys: dict[str, Journey] = {}
    errors: list[JourneyError] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            journey = load_journey(path)
        except JourneyLoadError as exc:
            errors.extend(exc.errors)
            continue
        if journey.id in journeys:
            errors.append(JourneyError(str(path), 1, f"duplicate journey id {journey.id!r}"))
        journeys[journey.id] = journey
    if errors:
        raise JourneyLoadError(errors)
    return Catalog(journeys=journeys)
