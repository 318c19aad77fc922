"""The console's pure parts: escaping, the graph model and SVG, live figures, previews."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from omnistream.console.graph import graph_model, layered_layout
from omnistream.console.live_figures import merge, scan
from omnistream.console.markup import Markup, esc, tag
from omnistream.console.pages_customer import customer_page, dlq_page, preview_page
from omnistream.console.pages_journeys import journey_page, journeys_page, svg_graph
from omnistream.console.preview import TEST_PREFIX, outgoing_for_test, render_step
from omnistream.domain.journey_events import JourneyEvent
from omnistream.domain.journey_stats import cells_in_window, count, summary
from omnistream.domain.journey_stats import merge as merge_cells
from omnistream.domain.profile import Profile
from omnistream.domain.state import CustomerState, Instance, Timer
from omnistream.journey.figures import journey_figures, overview
from omnistream.journey.loader import load_catalog
from omnistream.journey.model import Catalog, SendStep
from omnistream.runtime.customer_api import customer_view
from omnistream.runtime.fleet import local_cells, merge_shares

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
EVIL = "<script>alert('x')</script>"

JOURNEY = """
id: promo
name: Promo
trigger: {event: signed_up}
goal: {event: order_placed}
steps:
  - id: pick
    type: split
    paths:
      - {name: short, weight: 1, next: mail}
      - {name: long, weight: 1, next: bye}
  - id: mail
    type: send
    channels: [email, sms]
    category: transactional
    content:
      email:
        subject: "Hi {{ profile.traits.first_name | default: 'friend' }}"
        body: >-
          Hello {{ profile.traits.first_name | default: 'friend' }}
          from {{ trigger.properties.city }}
      sms: {body: "{{ profile.traits.first_name | upcase }}"}
    next: hold
  - id: hold
    type: wait_for
    event: order_placed
    timeout: 7d
  - id: bye
    type: exit
    reason: short_path_done
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "promo.yaml").write_text(JOURNEY)
    return load_catalog(tmp_path)


def record(n: int, kind: str, step: str | None, **fields: Any) -> JourneyEvent:
    return JourneyEvent(
        record_id=f"r{n}-{kind}-{step}-{fields.get('outcome')}",
        kind=kind,  # type: ignore[arg-type]
        customer_key=f"c-{n}",
        journey_id="promo",
        journey_version="v1",
        step_id=step,
        at=NOW - timedelta(minutes=5),
        **fields,
    )


def scripted() -> list[JourneyEvent]:
    """6 enter; 4 take 'short' to mail (one control), 2 take 'long' and exit at bye."""
    records = []
    for n in range(6):
        control = n == 0
        records.append(record(n, "entered", "pick", control=control))
        path = "short" if n < 4 else "long"
        records.append(record(n, "step", "pick", path=path, control=control))
        if path == "short":
            records.append(record(n, "step", "mail", control=control))
            records.append(record(n, "step", "hold", control=control))
            if not control:
                records.append(record(n, "send", "mail", channel="email", control=False))
                records.append(
                    record(n, "outcome", "mail", channel="email", outcome="sent", cost=0.5)
                )
        else:
            records.append(record(n, "step", "bye", control=control))
            records.append(record(n, "exited", "bye", reason="short_path_done", control=control))
    records.append(record(9, "outcome", "mail", channel="email", outcome="fallback"))
    return records


def cells() -> Any:
    return cells_in_window(count(scripted())["promo"], NOW, "day")


def row(key: str, *instances: tuple[str, str, datetime, datetime | None]) -> CustomerState:
    state = CustomerState(key=key)
    for n, (journey, step, entered, due) in enumerate(instances):
        timer_id = f"t{n}" if due else None
        state.instances[f"i{n}"] = Instance(
            instance_id=f"i{n}", journey_id=journey, version="v1", step_id=step,
            entered_at=entered, timer_id=timer_id,
        )  # fmt: skip
        if due is not None and timer_id is not None:
            state.timers[timer_id] = Timer(timer_id=timer_id, instance_id=f"i{n}", due=due)
    return state


def test_esc_makes_any_value_inert_and_leaves_markup_alone() -> None:
    assert esc(EVIL) == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert esc(Markup("<b>ok</b>")) == "<b>ok</b>"
    assert tag("p", EVIL, title='"><img src=x>') == (
        '<p title="&quot;&gt;&lt;img src=x&gt;">&lt;script&gt;alert(&#x27;x&#x27;)'
        "&lt;/script&gt;</p>"
    )


def test_a_customer_with_script_in_their_data_renders_inert() -> None:
    state = CustomerState(
        key="c-<b>1</b>", profile=Profile(traits={"first_name": EVIL, "city": "<img src=x>"})
    )
    html = customer_page(
        customer_view(state),
        [{"at": NOW.isoformat(), "kind": "exited", "journey_id": "promo", "reason": EVIL}],
        "note",
    )
    assert "<script>alert" not in html and "<img src=x>" not in html and "<b>1</b>" not in html
    assert html.count("&lt;script&gt;alert") == 2  # the profile and the exit reason
    assert 'data-testid="customer-timeline"' in html


def test_timeline_merges_events_and_journey_records_newest_first() -> None:
    view = {"customer_key": "c-1", "profile": {}, "journeys": [], "pending_timers": [],
            "recent_events": [{"type": "signed_up", "source": "site",
                               "timestamp": "2026-12-03T09:00:00+00:00"}]}  # fmt: skip
    records = [
        {"at": "2026-12-03T09:00:01+00:00", "kind": "send", "journey_id": "promo",
         "step_id": "mail", "channel": "email"},
        {"at": "2026-12-03T09:00:02+00:00", "kind": "outcome", "journey_id": "promo",
         "step_id": "mail", "channel": "email", "outcome": "suppressed", "reason": "no_consent"},
    ]  # fmt: skip
    html = customer_page(view, records, "note")
    kinds = re.findall(r'data-testid="timeline-row" data-kind="(\w+)"', html)
    assert kinds == ["outcome", "send", "event"]
    assert "reason: no_consent" in html and "signed_up (from site)" in html


def test_graph_counts_come_from_the_stats_cells(catalog: Catalog) -> None:
    live = {"hold": {"waiting": 2, "oldest_entered_at": NOW.isoformat(), "next_due": "2026-12-09"}}
    model = graph_model(catalog.journeys["promo"], cells(), live)
    nodes = {n["id"]: n for n in model["nodes"]}
    stats = summary(cells())
    for step, node in nodes.items():
        assert node["entered"] == stats["steps"].get(step, {}).get("step", 0), step
    assert (nodes["mail"]["entered"], nodes["hold"]["waiting"], nodes["hold"]["advanced"]) == (
        4, 2, 2,
    )  # fmt: skip
    assert nodes["bye"]["exited"] == 2 and nodes["bye"]["exit_reason"] == "short_path_done"
    assert nodes["bye"]["exits_by_reason"] == {"short_path_done": 2}
    assert "exits 2 (short_path_done 2)" in " ".join(nodes["bye"]["lines"])
    assert stats["exits"] == {"bye": {"short_path_done": 2}}
    assert (
        "-" not in stats["outcomes"].get("-", {}) or "short_path_done" not in stats["outcomes"]["-"]
    )
    assert nodes["mail"]["channels"] == {"email": {"fallback": 1, "send": 3, "sent": 3}}
    assert nodes["pick"]["paths"] == {  # treatment only: the control customer is left out
        "long": {"count": 2, "percent": 40.0},
        "short": {"count": 3, "percent": 60.0},
    }
    edges = {(e["source"], e["target"], e["label"]) for e in model["edges"]}
    assert ("pick", "mail", "short (1)") in edges and ("hold", None, "timeout") in edges


def test_svg_has_one_node_per_step_with_its_figures(catalog: Catalog) -> None:
    model = graph_model(catalog.journeys["promo"], cells(), {})
    svg = svg_graph(model)
    nodes = re.findall(
        r'data-testid="step-node" data-step-id="(\w+)" data-entered="(\d+)" '
        r'data-waiting="(\d+)" data-advanced="(\d+)"',
        svg,
    )
    assert sorted(n[0] for n in nodes) == ["bye", "hold", "mail", "pick"]
    assert ("mail", "4", "0", "4") in nodes
    assert 'data-step-id="bye"' in svg and 'data-exits-by-reason="short_path_done=2"' in svg
    assert svg.startswith("<svg") and 'data-testid="journey-graph"' in svg
    positions = layered_layout(model)
    assert positions["pick"][1] < positions["mail"][1] < positions["hold"][1]


def test_journey_page_has_the_picker_and_panels(catalog: Catalog) -> None:
    stats = {"window": "7d", "version": "v1", **summary(cells(), "EUR")}
    model = graph_model(catalog.journeys["promo"], cells(), {})
    html = journey_page(stats, model, {"asked": 2, "answered": 2}, ["mail"])
    for testid in ("window-picker", "uplift-panel", "cost-panel", "journey-graph"):
        assert f'data-testid="{testid}"' in html
    assert 'data-window="7d" aria-current="page"' in html
    assert "1.5000 EUR" in html  # 3 sends at 0.5
    assert "/console/static/elk.bundled.js" in html and "https://" not in html.replace(
        "http://www.w3.org/2000/svg", ""
    )


def test_journeys_list_has_one_row_per_journey() -> None:
    overview = {"window": "day", "journeys": [
        {"journey_id": "promo", "version": "v1", "entered": 6, "goals": 1, "conversion": 0.2,
         "uplift": None, "cost": 1.5, "currency": "EUR"},
        {"journey_id": EVIL, "version": "v1", "entered": 0, "goals": 0, "conversion": None,
         "uplift": None, "cost": 0, "currency": None},
    ]}  # fmt: skip
    html = journeys_page(overview, {"promo": 3}, {"asked": 1, "answered": 1})
    assert re.findall(r'data-testid="journey-row" data-journey-id="([^"]+)"', html) == [
        "promo", "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;",
    ]  # fmt: skip
    assert '<td data-field="active">3</td>' in html and "20.0%" in html


def test_live_scan_counts_instances_per_step_and_merges_workers() -> None:
    t0 = NOW - timedelta(days=2)
    rows = [
        row("a", ("promo", "hold", t0, NOW + timedelta(days=5)), ("other", "x", NOW, None)),
        row("b", ("promo", "hold", NOW, NOW + timedelta(days=1))),
        CustomerState(key="c"),  # no instances: skipped unparsed
    ]
    one = scan((s.key.encode(), s.to_bytes()) for s in rows[:1])
    two = scan((s.key.encode(), s.to_bytes()) for s in rows[1:])
    merged = merge([one, two])
    hold = merged["journeys"]["promo"]["steps"]["hold"]
    assert hold == {
        "waiting": 2,
        "oldest_entered_at": t0.isoformat(),
        "next_due": (NOW + timedelta(days=1)).isoformat(),
    }
    assert merged["journeys"]["promo"]["active"] == 2 and merged["scanned"] == 2
    capped = scan(((s.key.encode(), s.to_bytes()) for s in rows), cap=1)
    assert capped["capped"] and capped["scanned"] == 1


def test_preview_renders_liquid_for_the_customer_and_its_instance(catalog: Catalog) -> None:
    journey = catalog.journeys["promo"]
    step = next(s for s in journey.steps if isinstance(s, SendStep))
    state = row("c-1", ("promo", "hold", NOW, None))
    state.profile = Profile(traits={"first_name": EVIL})
    state.instances["i0"] = state.instances["i0"].model_copy(
        update={"trigger": {"properties": {"city": "Lviv"}}}
    )
    rendered = {r.channel: r for r in render_step(catalog, journey, step, state, NOW)}
    assert rendered["email"].message is not None
    assert rendered["email"].message.body == f"Hello {EVIL} from Lviv"
    assert rendered["sms"].message is not None and rendered["sms"].message.body == EVIL.upper()
    html = preview_page("promo", "mail", "c-1", list(rendered.values()), "csrf123")
    assert "<script>" not in html and html.count('data-testid="preview-body"') == 2
    assert 'name="csrf" value="csrf123"' in html
    outgoing = outgoing_for_test(rendered["email"], "c-1", "ops@example.com", journey, step)
    assert outgoing.send_id.startswith(TEST_PREFIX) and outgoing.address == "ops@example.com"
    assert outgoing.message.subject == f"[TEST] Hi {EVIL}"


def test_dlq_page_groups_by_reason_and_escapes_details() -> None:
    records = [
        {"reason": "invalid_json", "detail": EVIL, "topic": "events.site", "partition": 0,
         "offset": 7, "rejected_at": "2026-12-03T09:00:00+00:00"},
        {"reason": "invalid_json", "detail": "x", "topic": "events.site", "partition": 1,
         "offset": 9, "rejected_at": "2026-12-03T09:01:00+00:00"},
    ]  # fmt: skip
    html = dlq_page(records, "note")
    assert html.count('data-testid="dlq-row"') == 2 and "invalid_json: 2" in html
    assert "<script>alert" not in html


def stats_runtime(catalog: Catalog, owned: set[int]) -> Any:
    """A runtime with the stats table as a dict, split over 2 partitions, owning ``owned``."""
    table: dict[bytes, bytes] = {}
    for n, rec in enumerate(scripted()):
        partition = n % 2
        for bucket, cells_ in count([rec])["promo"].items():
            key = f"promo\x1f{bucket}\x1f{partition}".encode()
            current = orjson.loads(table[key]) if key in table else {}
            table[key] = orjson.dumps(merge_cells(current, cells_))
    return SimpleNamespace(
        catalog=catalog, journey_stats=table, owned=SimpleNamespace(owned=frozenset(owned))
    )


def test_the_shares_of_two_workers_sum_to_the_whole(catalog: Catalog) -> None:
    shares = []
    for owned in ({0}, {1}):
        cells_, mine = local_cells(stats_runtime(catalog, owned), "day", NOW)
        shares.append({"cells": cells_, "stats_partitions": sorted(mine)})
    whole, _ = local_cells(stats_runtime(catalog, {0, 1}), "day", NOW)
    merged = merge_shares(shares, 2)
    assert merged.partitions_answered == [0, 1] and merged.partitions_missing == []
    assert journey_figures(catalog, "promo", merged.cells["promo"], "day", NOW) == (
        journey_figures(catalog, "promo", whole["promo"], "day", NOW)
    )
    assert overview(catalog, merged.cells, "day", NOW)["journeys"][0]["entered"] > 0


def test_a_missing_or_overlapping_share_is_reported_not_counted_twice(catalog: Catalog) -> None:
    one, _ = local_cells(stats_runtime(catalog, {0}), "day", NOW)
    both, _ = local_cells(stats_runtime(catalog, {0, 1}), "day", NOW)
    alone = merge_shares([{"cells": one, "stats_partitions": [0]}], 2)
    assert alone.partitions_missing == [1]
    overlapping = merge_shares(
        [{"cells": one, "stats_partitions": [0]}, {"cells": both, "stats_partitions": [0, 1]}], 2
    )  # a rebalance between the two answers: the second is left out whole
    assert overlapping.cells == alone.cells and overlapping.partitions_missing == [1]


def test_each_worker_contributes_only_the_partitions_it_owns(catalog: Catalog) -> None:
    halves = [local_cells(stats_runtime(catalog, {p}), "day", NOW)[0]["promo"] for p in (0, 1)]
    whole = local_cells(stats_runtime(catalog, {0, 1}), "day", NOW)[0]["promo"]
    assert halves[0] != whole and merge_cells(merge_cells({}, halves[0]), halves[1]) == whole
