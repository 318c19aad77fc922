"""The journeys list and one journey's page (graph, uplift, cost). Pure: dicts in, HTML out.

The figures are the stats routes' own dicts (``runtime/journey_events.py``: ``journeys_overview``
and ``journey_stats``) plus the live waiting figures, so the console and ``GET /journeys/...``
can never disagree. The testids are a contract with the browser tests (docs/console.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from omnistream.console.graph import LINE_HEIGHT, layered_layout
from omnistream.console.markup import Markup, join, page, tag
from omnistream.journey.figures import WINDOW_CHOICES

__all__ = ["journey_page", "journeys_page", "live_note", "svg_graph"]

_ELK: Final = "/console/static/elk.bundled.js"
_SCRIPT: Final = "/console/static/console.js"


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _money(value: float | None, currency: str | None) -> str:
    return "-" if value is None else f"{value:,.4f} {currency or ''}".strip()


def window_picker(window: str, base: str) -> Markup:
    """Links to the same page in each window; the current one is marked."""
    links = [
        tag("a", name, href=f"{base}?window={name}", data_window=name,
            aria_current="page" if name == window else None)
        for name in WINDOW_CHOICES
    ]  # fmt: skip
    return tag("nav", "Window: ", join(links), class_="windows", data_testid="window-picker")


def live_note(live: Mapping[str, Any]) -> Markup:
    """Which workers answered (stats and live figures), which stats partitions are missing, and
    whether a row scan was capped."""
    answered, asked = live.get("answered", 0), live.get("asked", 0)
    text = f"Figures from {answered} of {asked} worker(s)"
    if live.get("capped"):
        text += f"; capped at {live.get('scanned', 0):,} rows per worker (figures are a floor)"
    missing = live.get("missing_partitions") or []
    if missing:
        text += f"; stats of journey-events partitions {missing} missing (not answered)"
    errors = live.get("errors") or []
    return tag("p", text + (f"; not answered: {', '.join(errors)}" if errors else ""),
               class_="note", data_testid="live-note")  # fmt: skip


def journeys_page(
    overview: Mapping[str, Any], active: Mapping[str, int], live: Mapping[str, Any]
) -> Markup:
    """``GET /console``: one row per loaded journey with the window's headline figures."""
    window = str(overview["window"])
    head = tag("tr", *(tag("th", h) for h in (
        "Journey", "Version", "Entered", "Active now", "Goals", "Conversion", "Uplift", "Cost",
    )))  # fmt: skip
    rows = [
        tag(
            "tr",
            tag("td", tag("a", j["journey_id"], href=f"/console/journeys/{j['journey_id']}"
                          f"?window={window}")),
            tag("td", j["version"]),
            tag("td", _number(j["entered"]), data_field="entered"),
            tag("td", _number(active.get(j["journey_id"], 0)), data_field="active"),
            tag("td", _number(j["goals"]), data_field="goals"),
            tag("td", _percent(j["conversion"]), data_field="conversion"),
            tag("td", _percent(j["uplift"]), data_field="uplift"),
            tag("td", _money(j["cost"], j["currency"]), data_field="cost"),
            data_testid="journey-row",
            data_journey_id=j["journey_id"],
        )
        for j in overview["journeys"]
    ]  # fmt: skip
    table = tag("table", tag("thead", head), tag("tbody", *rows), data_testid="journeys-table")
    return page("Journeys", window_picker(window, "/console"), table, live_note(live))


def svg_graph(model: Mapping[str, Any]) -> Markup:
    """The step graph as SVG, laid out server-side (``layered_layout``); the script re-lays it
    out with elkjs in a browser, moving these same ``<g>`` nodes."""
    positions = layered_layout(model)
    nodes = {n["id"]: n for n in model["nodes"]}
    width = max((x + n["width"] for n_id, (x, _) in positions.items() for n in [nodes[n_id]]),
                default=0) + 20  # fmt: skip
    height = max((y + nodes[n_id]["height"] for n_id, (_, y) in positions.items()), default=0)
    edges = [_edge(edge, positions, nodes) for edge in model["edges"]]
    return tag(
        "svg",
        Markup('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
               'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>'),
        tag("g", *edges, class_="edges"),
        *(_node_svg(nodes[n_id], x, y) for n_id, (x, y) in positions.items()),
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"-10 -10 {width + 20} {height + 20}",
        width=width + 20,
        height=height + 20,
        data_testid="journey-graph",
        data_journey_id=model["journey_id"],
    )  # fmt: skip


def _edge(
    edge: Mapping[str, Any],
    positions: Mapping[str, tuple[float, float]],
    nodes: Mapping[str, Mapping[str, Any]],
) -> Markup:
    source, target = edge["source"], edge["target"]
    if target not in positions:
        return Markup("")  # the end: drawn as no edge
    sx, sy = positions[source]
    tx, ty = positions[target]
    x1, y1 = sx + nodes[source]["width"] / 2, sy + nodes[source]["height"]
    x2, y2 = tx + nodes[target]["width"] / 2, ty
    label = (
        tag("text", edge["label"], x=(x1 + x2) / 2 + 4, y=(y1 + y2) / 2, class_="edge-label")
        if edge["label"]
        else ""
    )
    return tag(
        "g",
        tag("path", d=f"M{x1},{y1} L{x2},{y2}", marker_end="url(#arrow)"),
        label,
        data_source=source,
        data_target=target,
        class_="edge",
    )


def _node_svg(node: Mapping[str, Any], x: float, y: float) -> Markup:
    texts = [
        tag("text", line, x=8, y=LINE_HEIGHT * (i + 1), class_="title" if i == 0 else None)
        for i, line in enumerate(node["lines"])
    ]
    return tag(
        "g",
        tag("rect", width=node["width"], height=node["height"], rx=6),
        *texts,
        transform=f"translate({x},{y})",
        class_=f"step step-{node['type']}",
        data_testid="step-node",
        data_step_id=node["id"],
        data_entered=node["entered"],
        data_waiting=node["waiting"],
        data_advanced=node["advanced"],
        data_exited=node["exited"],
        data_exits_by_reason=",".join(f"{r}={n}" for r, n in node["exits_by_reason"].items()),
        data_goals=node["goals"],
    )


def uplift_panel(stats: Mapping[str, Any]) -> Markup:
    """Treatment vs control conversion, the uplift and its interval, and each split variant."""
    control = stats["control"]
    ci = control["uplift_ci95"]
    rows = [
        tag("tr", tag("th", name), tag("td", _number(g["entered"])),
            tag("td", _number(g["converted"])), tag("td", _percent(g["rate"])),
            data_variant=name)
        for name, g in (("treatment", control["treatment"]), ("control", control["control"]))
    ] + [
        tag("tr", tag("th", name), tag("td", _number(v["entered"])),
            tag("td", _number(v["converted"])), tag("td", _percent(v["rate"])), data_variant=name)
        for name, v in sorted(stats["variants"].items())
    ]  # fmt: skip
    interval = "-" if ci is None else f"{_percent(ci[0])} to {_percent(ci[1])}"
    return tag(
        "section",
        tag("h2", "Control vs treatment"),
        tag("table", tag("tr", *(tag("th", h) for h in ("", "Entered", "Converted", "Rate"))),
            *rows),
        tag("p", f"Uplift {_percent(control['uplift'])}, 95% interval {interval} ",
            tag("small", f"({control['method']})"), data_testid="uplift"),
        data_testid="uplift-panel",
    )  # fmt: skip


def cost_panel(stats: Mapping[str, Any]) -> Markup:
    cost = stats["cost"]
    currency = cost["currency"]
    channels = [
        tag("li", f"{channel or '-'}: {_money(value, currency)}")
        for channel, value in sorted(cost["by_channel"].items())
    ]
    return tag(
        "section",
        tag("h2", "Cost"),
        tag("p", f"Total {_money(cost['total'], currency)} · per send "
            f"{_money(cost['per_send'], currency)} · per conversion "
            f"{_money(cost['per_conversion'], currency)}", data_testid="cost-total"),
        tag("ul", *channels),
        data_testid="cost-panel",
    )  # fmt: skip


def journey_page(
    stats: Mapping[str, Any],
    model: Mapping[str, Any],
    live: Mapping[str, Any],
    send_steps: Sequence[str] = (),
) -> Markup:
    """``GET /console/journeys/{id}``: graph, window picker, uplift and cost panels."""
    journey_id, window = model["journey_id"], stats["window"]
    previews = [
        tag("li", tag("a", f"Preview {step}",
                      href=f"/console/journeys/{journey_id}/steps/{step}/preview"))
        for step in send_steps
    ]  # fmt: skip
    return page(
        f"Journey {model['name']} ({journey_id}, version {stats['version']})",
        window_picker(window, f"/console/journeys/{journey_id}"),
        tag("div", svg_graph(model), class_="graph", data_graph_url=(
            f"/console/journeys/{journey_id}/graph.json?window={window}")),
        live_note(live),
        uplift_panel(stats),
        cost_panel(stats),
        tag("section", tag("h2", "Message previews"), tag("ul", *previews)) if previews else "",
        scripts=(_ELK, _SCRIPT),
    )  # fmt: skip
