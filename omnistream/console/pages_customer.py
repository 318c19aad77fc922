"""The customer page, the message preview and the dead letters. Pure: dicts in, HTML out.

Everything shown here is customer data or producer data (names, addresses, event types, DLQ
details copied from rejected records), so every value goes through ``markup.esc``: a profile
whose name is ``<script>`` renders as text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from omnistream.console.markup import Markup, join, page, tag
from omnistream.console.preview import Rendered

__all__ = ["customer_page", "dlq_page", "preview_page", "timeline"]


def _json(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _profile(profile: Mapping[str, Any]) -> Markup:
    items = [
        join((tag("dt", name), tag("dd", _json(value), data_field=name)))
        for name, value in sorted(profile.items())
        if value not in (None, {}, [], "")
    ]
    return tag("section", tag("h2", "Profile"), tag("dl", *items), data_testid="customer-profile")


def _table(testid: str, head: Sequence[str], rows: Sequence[Sequence[object]]) -> Markup:
    if not rows:
        return tag("p", "none", data_testid=testid)
    return tag(
        "table",
        tag("tr", *(tag("th", h) for h in head)),
        *(tag("tr", *(tag("td", cell) for cell in row)) for row in rows),
        data_testid=testid,
    )


def _event_row(event: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(event["timestamp"]), "event", f"{event['type']} (from {event['source']})"


def _journey_row(record: Mapping[str, Any]) -> tuple[str, str, str]:
    kind = str(record["kind"])
    parts = [str(record.get("journey_id") or "-")]
    if record.get("step_id"):
        parts.append(f"step {record['step_id']}")
    if record.get("channel"):
        parts.append(f"on {record['channel']}")
    if record.get("outcome"):
        parts.append(str(record["outcome"]))
    if record.get("path"):
        parts.append(f"path {record['path']}")
    if record.get("reason"):
        parts.append(f"reason: {record['reason']}")
    if record.get("control"):
        parts.append("(control group)")
    return str(record["at"]), kind, " · ".join(parts)


def timeline(view: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> Markup:
    """Events from the row and the customer's journey-event records, newest first."""
    rows = [_event_row(e) for e in view["recent_events"]]
    rows += [_journey_row(r) for r in records]
    rows.sort(key=lambda row: row[0], reverse=True)
    items = [
        tag("li", tag("time", at), " ", tag("strong", kind), " ", text,
            data_testid="timeline-row", data_kind=kind)
        for at, kind, text in rows
    ]  # fmt: skip
    return tag("ol", *items, data_testid="customer-timeline", class_="timeline")


def customer_page(
    view: Mapping[str, Any], records: Sequence[Mapping[str, Any]], records_note: str
) -> Markup:
    """``GET /console/customers/{key}``: profile, live instances, timers, timeline."""
    instances = [
        (j["journey_id"], j["step_id"], j["version"], j["entered_at"], "yes" * j["control"])
        for j in view["journeys"]
    ]  # fmt: skip
    timers = [(t["timer_id"], t["due"]) for t in view["pending_timers"]]
    return page(
        f"Customer {view['customer_key']}",
        _profile(view["profile"]),
        tag("h2", "Live journeys"),
        _table("customer-instances", ("Journey", "Step", "Version", "Entered", "Control"),
               instances),
        tag("h2", "Pending timers"),
        _table("customer-timers", ("Timer", "Due"), timers),
        tag("h2", "Timeline"),
        tag("p", records_note, class_="note"),
        timeline(view, records),
    )  # fmt: skip


def _test_form(action: str, channel: str, customer: str, csrf: str | None) -> Markup:
    return tag(
        "form",
        tag("input", type="hidden", name="channel", value=channel),
        tag("input", type="hidden", name="customer", value=customer),
        tag("input", type="hidden", name="csrf", value=csrf) if csrf else "",
        tag("input", type="text", name="address", placeholder=f"{channel} address",
            required=True, data_testid="test-address"),
        tag("button", "Send a test", type="submit", data_testid="test-send"),
        action=action,
        method="post",
        class_="inline",
    )  # fmt: skip


def preview_page(
    journey_id: str,
    step_id: str,
    customer: str,
    rendered: Sequence[Rendered],
    csrf: str | None,
    notice: str | None = None,
) -> Markup:
    """``GET .../steps/{step}/preview?customer=K``: each channel's message for that customer."""
    base = f"/console/journeys/{journey_id}/steps/{step_id}"
    picker = tag(
        "form",
        tag("input", type="text", name="customer", value=customer, placeholder="customer key"),
        tag("button", "Preview"),
        action=f"{base}/preview",
        method="get",
        class_="inline",
    )
    sections = [
        tag(
            "section",
            tag("h2", item.channel),
            tag("p", "Subject: ", item.message.subject, data_testid="preview-subject")
            if item.message is not None and item.message.subject is not None
            else "",
            tag("pre", item.message.body if item.message else "", data_testid="preview-body",
                data_channel=item.channel),
            tag("p", item.error, class_="error", data_testid="preview-error") if item.error
            else _test_form(f"{base}/test-send", item.channel, customer, csrf),
            data_testid="preview",
            data_channel=item.channel,
        )
        for item in rendered
    ]  # fmt: skip
    return page(
        f"Preview {journey_id} / {step_id}",
        tag("p", notice, class_="notice", data_testid="test-send-result") if notice else "",
        picker,
        *sections,
    )


def dlq_page(records: Sequence[Mapping[str, Any]], note: str) -> Markup:
    """``GET /console/dlq``: the newest dead letters, counted by reason, newest first."""
    reasons = Counter(str(r["reason"]) for r in records)
    summary = tag(
        "ul",
        *(tag("li", f"{reason}: {n}", data_reason=reason) for reason, n in reasons.most_common()),
        data_testid="dlq-reasons",
    )
    rows = [
        tag("tr", tag("td", r["rejected_at"]), tag("td", r["reason"]), tag("td", r["topic"]),
            tag("td", r["partition"]), tag("td", r["offset"]), tag("td", r["detail"]),
            data_testid="dlq-row", data_reason=r["reason"])
        for r in sorted(records, key=lambda r: str(r["rejected_at"]), reverse=True)
    ]  # fmt: skip
    head = tag("tr", *(tag("th", h) for h in (
        "Rejected at", "Reason", "Topic", "Partition", "Offset", "Detail")))  # fmt: skip
    return page(
        "Dead letters",
        tag("p", note, class_="note"),
        summary,
        tag("table", head, *rows, data_testid="dlq-table"),
    )
