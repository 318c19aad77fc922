"""``GET /customers/{key}``: a customer's profile, live journeys and recent events.

Internal listener only, behind the bearer token (``runtime/web_auth.py``): the token is checked
before table routing or any table read. Any worker answers: Faust's table routing forwards the
request, ``Authorization`` header included, to the internal listener of the worker that owns the
key's partition, which checks the token again. A key that was merged into another customer
answers 307 with the new location (a forwarded answer keeps the status and body, not the
``Location`` header: Faust's router copies only those).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnistream.domain.state import CustomerState

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["customer_view", "install"]


def customer_view(state: CustomerState) -> dict[str, Any]:
    """The API's JSON for one row."""
    return {
        "customer_key": state.key,
        "profile": state.profile.model_dump(mode="json"),
        "journeys": [
            {
                "journey_id": inst.journey_id,
                "instance_id": inst.instance_id,
                "step_id": inst.step_id,
                "version": inst.version,
                "entered_at": inst.entered_at.isoformat(),
                "control": inst.control,
            }
            for inst in sorted(state.instances.values(), key=lambda i: i.entered_at)
        ],
        "pending_timers": [
            {"timer_id": t.timer_id, "due": t.due.isoformat()}
            for t in sorted(state.timers.values(), key=lambda t: t.due)
        ],
        "recent_events": [e.model_dump(mode="json") for e in state.recent_events],
    }


def install(runtime: Runtime) -> None:
    app = runtime.app

    @app.page("/customers/{key}")
    @app.table_route(table=runtime.customers, match_info="key")
    async def get_customer(web: Any, request: Any, key: str) -> Any:
        raw = runtime.customers.get(key.encode())
        if raw:
            return web.json(customer_view(CustomerState.from_bytes(raw)))
        alias = runtime.aliases.get(key.encode())
        if alias:
            target = alias.decode()
            return web.json(
                {"merged_into": target},
                status=307,
                headers={"Location": f"/customers/{target}"},
            )
        return web.json({"error": f"unknown customer {key!r}"}, status=404)
