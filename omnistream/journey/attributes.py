"""``attribute_changed`` triggers: "the tier went from silver to gold".

A trigger names one profile value by its path, as conditions write it (``profile.traits.tier``,
``profile.orders.count``), and optionally the value it must have come ``from`` and gone ``to``
(a literal, or a list meaning any of them; ``from: null`` is "was not set"). Anything richer
goes in the trigger's ``when:``, which sees the change as ``event.properties.from``/``to``.

The path is checked when the file loads, against the profile model (a typo such as
``profile.trait.tier`` is a load error, not a trigger that never fires); free-form maps
(``traits``) accept any key. Values are compared in their JSON form, the one conditions see,
and strictly: ``true`` is not ``1``. This module is pure (no engine, no I/O): the engine's glue
is in ``triggers.py`` and the model field in ``model.py``.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Any, Final, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import to_jsonable_python

from omnistream.domain.profile import Profile

__all__ = ["CONTACT_FIELDS", "AttributeChanged", "AttributeValue", "same_value", "value_at"]

AttributeValue = str | int | float | bool | None
"""What ``from``/``to`` may be: a YAML scalar (lists of them mean any of)."""

CONTACT_FIELDS: Final = frozenset({"addresses", "push_tokens", "web_push_subscriptions"})
"""Profile fields holding contact details: not targeting attributes, and a trigger would copy
them into the instance's trigger event."""

MAX_DEPTH: Final = 8
_PATH: Final = re.compile(rf"^profile(\.[A-Za-z][A-Za-z0-9_]{{0,63}}){{1,{MAX_DEPTH}}}$")


def same_value(a: Any, b: Any) -> bool:
    """JSON equality that keeps booleans apart from numbers (``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _member(value: Any, spec: Any) -> bool:
    if isinstance(spec, list):
        return any(same_value(value, option) for option in spec)
    return same_value(value, spec)


def value_at(profile: Profile, parts: tuple[str, ...]) -> Any:
    """The JSON value at ``parts`` (after ``profile``), ``None`` where the path is absent.

    Walks the model objects and maps, so only the one value is rendered as JSON, not the
    whole profile (a profile view with order history costs ~100 us)."""
    node: Any = profile
    for part in parts:
        if isinstance(node, BaseModel):
            node = getattr(node, part, None) if part in type(node).model_fields else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
        if node is None:
            return None
    return to_jsonable_python(node)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field annotation (``Orders``, ``Cart | None``), if any; None for
    containers (``dict[str, ChannelEngagement]``: its keys are free-form)."""
    origin = get_origin(annotation)
    if origin is None:
        candidates: tuple[Any, ...] = (annotation,)
    elif origin is Union or origin is UnionType:
        candidates = get_args(annotation)
    else:
        return None
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _path_problem(path: str) -> str | None:
    """Why ``path`` names no profile value, or None."""
    if not _PATH.match(path):
        return (
            f"path {path!r}: write it as in conditions, profile.<field>[.<key>...] "
            f"(letters, digits and _, at most {MAX_DEPTH} parts after profile), e.g. "
            "profile.traits.tier"
        )
    parts = path.split(".")[1:]
    if parts[0] in CONTACT_FIELDS:
        return f"path {path!r}: {parts[0]} holds contact details, not a targeting attribute"
    model: type[BaseModel] | None = Profile
    label = "profile"
    for part in parts:
        if model is None:
            return None  # a free-form map (traits, engagement, ...): any key
        if part not in model.model_fields:
            known = ", ".join(sorted(model.model_fields))
            what = "profile field" if model is Profile else f"field {part!r} of {label}"
            name = f" {part!r}" if model is Profile else ""
            return f"path {path!r}: unknown {what}{name} (fields: {known})"
        model, label = _model_of(model.model_fields[part].annotation), part
    return None


class AttributeChanged(BaseModel):
    """``{path: profile.traits.tier, from: silver, to: gold}``; ``from``/``to`` optional."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: str = Field(
        min_length=1,
        max_length=300,
        description="A profile value as conditions write it: profile.traits.tier, "
        "profile.orders.count.",
    )
    from_: AttributeValue | list[AttributeValue] = Field(
        default=None,
        alias="from",
        description="The value before (a list: any of them; null: not set). Omitted: any.",
    )
    to: AttributeValue | list[AttributeValue] = Field(
        default=None, description="The value after (a list: any of them). Omitted: any."
    )

    @model_validator(mode="after")
    def _check(self) -> AttributeChanged:
        problem = _path_problem(self.path)
        if problem is not None:
            raise ValueError(problem)
        for name in ("from_", "to"):
            value = getattr(self, name)
            if isinstance(value, list) and not 1 <= len(value) <= 50:
                label = name.rstrip("_")
                raise ValueError(f"'{label}' as a list needs at least 1 and at most 50 values")
        if self.has_from and self.has_to and not isinstance(self.from_, list):
            if not isinstance(self.to, list) and same_value(self.from_, self.to):
                raise ValueError("'from' and 'to' are the same value: it would never fire")
        return self

    @property
    def has_from(self) -> bool:
        return "from_" in self.model_fields_set

    @property
    def has_to(self) -> bool:
        return "to" in self.model_fields_set

    @property
    def parts(self) -> tuple[str, ...]:
        """The path after ``profile``."""
        return tuple(self.path.split(".")[1:])

    def matches(self, before: Any, after: Any) -> bool:
        """Does a change of the value from ``before`` to ``after`` (JSON) fire the trigger?"""
        if same_value(before, after):
            return False
        if self.has_from and not _member(before, self.from_):
            return False
        return not self.has_to or _member(after, self.to)

    def change(self, before: Profile, after: Profile) -> tuple[Any, Any] | None:
        """(value before, value after) if this profile update fires the trigger, else None."""
        parts = self.parts
        old, new = value_at(before, parts), value_at(after, parts)
        return (old, new) if self.matches(old, new) else None
