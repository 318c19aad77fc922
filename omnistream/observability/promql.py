"""Which metric names a PromQL expression reads.

The dashboard and the alert rules are only useful if every series they query exists. Tests use
:func:`metric_names` to compare each expression with the catalog and with a running worker's
``/metrics``. This is a tokenizer, not a full PromQL parser: it removes what cannot be a metric
name (strings, label matchers, ``by (...)`` lists, range selectors, numbers, function calls and
keywords) and returns the identifiers that remain. It errs towards reporting too much, so a test
fails instead of silently checking less.
"""

from __future__ import annotations

import re

__all__ = ["metric_names"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z_$]+", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_:]*\}?")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
     "group_right", "offset", "inf", "nan", "atan2"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by ``expr`` (a PromQL expression, Grafana variables allowed)."""
    text = _STRING.sub(" ", expr)
    text = _VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):  # a function or an aggregation: sum(...), rate(...)
            continue
        if word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names
