"""Conditions: a tiny, safe expression language compiled once at load into closures.

Authors write Python-looking expressions (``event.properties.total > 50 and
"vip" in profile.traits.tags``). We parse them with Python's own ``ast`` parser and compile a
whitelist of node types into plain closures over JSON-like data; nothing is ever ``eval``-ed and
no Python object is reachable: ``a.b`` is a dict lookup, calls go only to the named functions
below. Missing data is ``None`` and comparisons that make no sense are ``False`` rather than
errors, so a malformed event can never crash the engine. Why not simpleeval/asteval/jmespath/CEL:
see docs/journeys.md (speed, and a history of sandbox escapes).
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from omnistream.domain.events import Event
from omnistream.domain.profile import Profile
from omnistream.domain.profile_values import as_aware_datetime
from omnistream.journey.targeting import (
    TARGETING_FUNCTIONS,
    Targeting,
    current_targeting,
    keyword_problem,
)

__all__ = [
    "MAX_NODES",
    "MAX_SOURCE",
    "ROOTS",
    "Expr",
    "ExprError",
    "HintedError",
    "Targeting",
    "compile_expr",
    "suggest",
]

MAX_SOURCE: Final = 2048
MAX_NODES: Final = 200
ROOTS: Final = ("event", "profile", "trigger", "vars", "journey")
_LITERALS: Final = {"true": True, "false": False, "null": None, "none": None}
_MAX_INT_TEXT: Final = 64

Fn = Callable[[Mapping[str, Any]], Any]

_EVENT_FIELDS = tuple(Event.model_fields)
_PROFILE_FIELDS = tuple(Profile.model_fields)
_FIELDS_OF_ROOT: Final = {
    "event": _EVENT_FIELDS,
    "trigger": _EVENT_FIELDS,
    "profile": _PROFILE_FIELDS,
}


class HintedError(ValueError):
    """A language error with an optional ``hint`` ("did you mean ...?") for the author."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.message = message
        self.hint = hint


class ExprError(HintedError):
    """An expression the compiler refuses."""


def suggest(word: str, choices: Any) -> str | None:
    """``did you mean 'x'?`` for the closest of ``choices``, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _since(ctx: Mapping[str, Any], value: Any, unit: float) -> float | None:
    moment = as_aware_datetime(value)
    now = ctx.get("now")
    if moment is None or not isinstance(now, datetime):
        return None
    return (now - moment).total_seconds() / unit


def _num(value: Any, kind: type) -> Any:
    if isinstance(value, str) and len(value) > _MAX_INT_TEXT:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _pluck(items: Any, key: Any) -> list[Any]:
    if not isinstance(items, list):
        return []
    return [item.get(key) for item in items if isinstance(item, dict)]


def _safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError, AttributeError, ArithmeticError):
            return None

    return call


# name -> (arity, needs_ctx, implementation)
_FUNCTIONS: Final[dict[str, tuple[int, bool, Callable[..., Any]]]] = {
    "len": (1, False, _safe(lambda v: len(v) if isinstance(v, str | list | dict) else None)),
    "lower": (1, False, _safe(lambda v: v.lower() if isinstance(v, str) else None)),
    "upper": (1, False, _safe(lambda v: v.upper() if isinstance(v, str) else None)),
    "int": (1, False, lambda v: _num(v, int)),
    "float": (1, False, lambda v: _num(v, float)),
    "str": (1, False, _safe(lambda v: v if isinstance(v, str) else str(v)[:_MAX_INT_TEXT])),
    "abs": (1, False, _safe(abs)),
    "startswith": (2, False, _safe(lambda s, p: s.startswith(p) if isinstance(s, str) else False)),
    "pluck": (2, False, _pluck),
    "days_since": (1, True, lambda ctx, v: _since(ctx, v, 86400.0)),
    "hours_since": (1, True, lambda ctx, v: _since(ctx, v, 3600.0)),
}


_ALL_FUNCTIONS: Final = (*_FUNCTIONS, *TARGETING_FUNCTIONS, "in_segment")


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def safe(a: Any, b: Any) -> bool:
        try:
            return bool(op(a, b))
        except TypeError:
            return False

    return safe


def _contains(a: Any, b: Any) -> bool:
    if isinstance(b, str):
        return isinstance(a, str) and a in b
    if isinstance(b, list | tuple | dict):
        try:
            return a in b
        except TypeError:
            return False
    return False


_COMPARE: Final[dict[type, Callable[[Any, Any], bool]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _compare(operator.lt),
    ast.LtE: _compare(operator.le),
    ast.Gt: _compare(operator.gt),
    ast.GtE: _compare(operator.ge),
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def safe(a: Any, b: Any) -> Any:
        numbers = (int, float)
        if not isinstance(a, numbers) or not isinstance(b, numbers):
            return None
        try:
            return op(a, b)
        except (ZeroDivisionError, OverflowError):
            return None

    return safe


_ARITH: Final[dict[type, Callable[[Any, Any], Any]]] = {
    ast.Add: _arith(operator.add),
    ast.Sub: _arith(operator.sub),
    ast.Mult: _arith(operator.mul),
    ast.Div: _arith(operator.truediv),
    ast.Mod: _arith(operator.mod),
}


def _lookup(base: Any, key: Any) -> Any:
    if isinstance(base, dict):
        return base.get(key)
    if isinstance(base, list) and isinstance(key, int) and -len(base) <= key < len(base):
        return base[key]
    return None


class _Compiler:
    def compile(self, node: ast.AST) -> Fn:
        method = getattr(self, f"_c_{type(node).__name__}", None)
        if method is None:
            raise ExprError(f"{type(node).__name__} is not allowed in a condition")
        result: Fn = method(node)
        return result

    def _c_Constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if not isinstance(value, str | int | float | bool | type(None)):
            raise ExprError(f"constant {value!r} is not allowed")
        return lambda ctx: value

    def _c_Name(self, node: ast.Name) -> Fn:
        name = node.id
        if name.lower() in _LITERALS:
            literal = _LITERALS[name.lower()]
            return lambda ctx: literal
        if name not in ROOTS:
            raise ExprError(f"unknown name {name!r}", suggest(name, ROOTS))
        return lambda ctx: ctx.get(name)

    def _c_Attribute(self, node: ast.Attribute) -> Fn:
        attr = node.attr
        if attr.startswith("_"):
            raise ExprError(f"attribute {attr!r}: names starting with '_' are not allowed")
        if isinstance(node.value, ast.Name) and node.value.id in _FIELDS_OF_ROOT:
            fields = _FIELDS_OF_ROOT[node.value.id]
            if attr not in fields:
                raise ExprError(f"{node.value.id} has no field {attr!r}", suggest(attr, fields))
        base = self.compile(node.value)
        return lambda ctx: _lookup(base(ctx), attr)

    def _c_Subscript(self, node: ast.Subscript) -> Fn:
        index = node.slice
        if not isinstance(index, ast.Constant) or not isinstance(index.value, str | int):
            raise ExprError("subscripts must be a constant string or integer, e.g. x['key']")
        key = index.value
        if isinstance(key, str) and key.startswith("_"):
            raise ExprError(f"key {key!r}: names starting with '_' are not allowed")
        base = self.compile(node.value)
        return lambda ctx: _lookup(base(ctx), key)

    def _c_BoolOp(self, node: ast.BoolOp) -> Fn:
        parts = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda ctx: all(p(ctx) for p in parts)
        return lambda ctx: any(p(ctx) for p in parts)

    def _c_UnaryOp(self, node: ast.UnaryOp) -> Fn:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda ctx: not operand(ctx)
        if isinstance(node.op, ast.USub):
            return lambda ctx: _arith(operator.sub)(0, operand(ctx))
        raise ExprError(f"operator {type(node.op).__name__} is not allowed")

    def _c_BinOp(self, node: ast.BinOp) -> Fn:
        op = _ARITH.get(type(node.op))
        if op is None:
            raise ExprError(f"operator {type(node.op).__name__} is not allowed")
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda ctx: op(left(ctx), right(ctx))

    def _c_Compare(self, node: ast.Compare) -> Fn:
        ops = []
        for op in node.ops:
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise ExprError(f"comparison {type(op).__name__} is not allowed")
            ops.append(fn)
        first = self.compile(node.left)
        rest = [self.compile(c) for c in node.comparators]
        pairs = list(zip(ops, rest, strict=True))

        def compare(ctx: Mapping[str, Any]) -> bool:
            left = first(ctx)
            for fn, right_fn in pairs:
                right = right_fn(ctx)
                if not fn(left, right):
                    return False
                left = right
            return True

        return compare

    def _c_IfExp(self, node: ast.IfExp) -> Fn:
        test, body, orelse = (self.compile(n) for n in (node.test, node.body, node.orelse))
        return lambda ctx: body(ctx) if test(ctx) else orelse(ctx)

    def _c_List(self, node: ast.List) -> Fn:
        items = [self.compile(e) for e in node.elts]
        return lambda ctx: [i(ctx) for i in items]

    _c_Tuple = _c_List

    def _c_Call(self, node: ast.Call) -> Fn:
        if not isinstance(node.func, ast.Name):
            raise ExprError("only the built-in functions can be called")
        name = node.func.id
        if name in TARGETING_FUNCTIONS:
            return self._targeting_call(node, name)
        if name == "in_segment":
            return self._segment_call(node)
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise ExprError(f"unknown function {name!r}", suggest(name, _ALL_FUNCTIONS))
        arity, needs_ctx, impl = spec
        if node.keywords or len(node.args) != arity:
            raise ExprError(f"{name}() takes {arity} positional argument(s)")
        args = [self.compile(a) for a in node.args]
        if needs_ctx:
            return lambda ctx: impl(ctx, *(a(ctx) for a in args))
        return lambda ctx: impl(*(a(ctx) for a in args))

    def _targeting_call(self, node: ast.Call, name: str) -> Fn:
        """A targeting function: positional arguments within its range, its own keywords
        (constants checked now), and the ``Targeting`` in scope captured for evaluation."""
        low, high, allowed, impl = TARGETING_FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise ExprError(f"{name}() takes {count} positional argument(s)")
        keywords: dict[str, Fn] = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in allowed:
                given = "**" if keyword.arg is None else keyword.arg
                hint = suggest(given, allowed) or _expected(allowed)
                raise ExprError(f"{name}() has no argument {given!r}", hint)
            _check_constant(name, keyword.arg, keyword.value)
            keywords[keyword.arg] = self.compile(keyword.value)
        args = [self.compile(a) for a in node.args]
        targeting = current_targeting()
        call = _safe(impl)

        def evaluate(ctx: Mapping[str, Any]) -> Any:
            values = {k: fn(ctx) for k, fn in keywords.items()}
            return call(ctx, targeting, *(a(ctx) for a in args), **values)

        return evaluate

    def _segment_call(self, node: ast.Call) -> Fn:
        """``in_segment("name")``: the segment's condition, resolved now (segments file)."""
        if (
            len(node.args) != 1
            or node.keywords
            or not isinstance(node.args[0], ast.Constant)
            or not isinstance(node.args[0].value, str)
        ):
            raise ExprError('in_segment() takes one segment name, e.g. in_segment("lapsed")')
        name = node.args[0].value
        segments = current_targeting().segments
        condition = segments.get(name)
        if condition is None:
            known = ", ".join(sorted(segments)) or "none defined"
            hint = suggest(name, segments) or f"segments: {known} (journeys/segments.yaml)"
            raise ExprError(f"unknown segment {name!r}", hint)
        return lambda ctx: bool(condition(ctx))


def _expected(allowed: frozenset[str]) -> str:
    return f"expected one of: {', '.join(sorted(allowed))}" if allowed else "it takes none"


def _check_constant(function: str, keyword: str, value: ast.expr) -> None:
    """Refuse a constant keyword value that can never work (``weekday="friday"``)."""
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
        inner = value.operand
        if isinstance(inner, ast.Constant) and isinstance(inner.value, int | float):
            problem = keyword_problem(function, keyword, -inner.value)
        else:
            return
    elif isinstance(value, ast.Constant):
        problem = keyword_problem(function, keyword, value.value)
    else:
        return
    if problem is not None:
        raise ExprError(f"{function}({keyword}=...): {problem[0]}", problem[1])


class Expr:
    """A compiled condition: call with a context mapping (event, profile, trigger, vars)."""

    __slots__ = ("_fn", "source")

    def __init__(self, source: str, fn: Fn) -> None:
        self.source = source
        self._fn = fn

    def value(self, ctx: Mapping[str, Any]) -> Any:
        return self._fn(ctx)

    def test(self, ctx: Mapping[str, Any]) -> bool:
        return bool(self._fn(ctx))

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def compile_expr(source: str) -> Expr:
    """Compile ``source`` or raise ``ExprError`` (too big, syntax, or a forbidden construct)."""
    if not isinstance(source, str):
        raise ExprError(f"a condition must be a string, got {type(source).__name__}")
    if len(source) > MAX_SOURCE:
        raise ExprError(f"condition longer than {MAX_SOURCE} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"invalid condition syntax at column {exc.offset}: {exc.msg}") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExprError(f"condition has {nodes} nodes, the limit is {MAX_NODES}")
    return Expr(source, _Compiler().compile(tree.body))
