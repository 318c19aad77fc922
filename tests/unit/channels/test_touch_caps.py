"""One touch on several channels (a ``together`` send step) counts once in the caps (issue 18).

Anna's email with a discount and the mobile push with the same offer are two ``Send`` commands
sharing a ``touch_id``: each takes a slot in its own channel's window, and one slot in the
cross-channel and per-journey windows, so the default 1/day per journey does not suppress the
second one.
"""

from __future__ import annotations

from omnistream.policies.caps import CapsPolicy
from omnistream.ports import ProviderResult
from tests.unit.channels.factory import (
    T0,
    FakeTime,
    ScriptedProvider,
    make_send,
    memory_dispatcher_and_dedup,
    permanent,
    types,
)

CAPS = CapsPolicy(per_channel=["1/day"], across_channels=["1/week"], per_journey=["1/day"])


def touch(send_id: str, channel: str, touch_id: str = "touch-1") -> object:
    return make_send(send_id, chain=(channel,), touch_id=touch_id)


async def test_sends_of_one_touch_count_once_across_channels_and_per_journey() -> None:
    providers = {"email": ScriptedProvider("e"), "mobile_push": ScriptedProvider("p")}
    dispatcher, _ = memory_dispatcher_and_dedup(FakeTime(), providers, CAPS)
    email = await dispatcher.handle(touch("a-email", "email"), T0)
    push = await dispatcher.handle(touch("a-push", "mobile_push"), T0)
    assert types(email) == types(push) == ["message_sent"]
    # another touch is a second contact: the week's one cross-channel slot is taken
    later = await dispatcher.handle(touch("b-push", "mobile_push", "touch-2"), T0)
    assert types(later) == ["message_suppressed"]
    assert later.outcomes[0].properties["reason"] in ("cap_channel", "cap_global")


async def test_a_failed_channel_of_a_touch_keeps_the_touch_counted() -> None:
    email = ScriptedProvider("e")
    push = ScriptedProvider("p", [permanent(400), ProviderResult("ok")])
    dispatcher, _ = memory_dispatcher_and_dedup(
        FakeTime(), {"email": email, "mobile_push": push, "sms": ScriptedProvider("s")}, CAPS
    )
    assert types(await dispatcher.handle(touch("a-email", "email"), T0)) == ["message_sent"]
    failed = await dispatcher.handle(touch("a-push", "mobile_push"), T0)
    assert types(failed) == ["message_failed"]
    # the push's refund gives back its channel slot only: the email of the touch was delivered
    again = await dispatcher.handle(touch("c-sms", "sms", "touch-3"), T0)
    assert types(again) == ["message_suppressed"]
    assert again.outcomes[0].properties["reason"] == "cap_global"
    retry = await dispatcher.handle(touch("a-push-2", "mobile_push"), T0)
    assert types(retry) == ["message_sent"]  # the push's own channel slot came back
