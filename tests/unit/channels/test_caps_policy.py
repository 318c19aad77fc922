"""The caps policy model: window specs, files, and which counters a send touches."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from omnistream.policies.caps import (
    CapsPolicy,
    CapsPolicyError,
    CapWindow,
    counters_for,
    load_caps_policy,
)


@pytest.mark.parametrize(
    ("spec", "limit", "seconds"),
    [("1/day", 1, 86400), ("3/week", 3, 604800), ("2/6h", 2, 21600), ("5 per hour", 5, 3600),
     ("4/2days", 4, 172800)],
)  # fmt: skip
def test_window_specs(spec: str, limit: int, seconds: int) -> None:
    window = CapWindow.model_validate(spec)
    assert (window.limit, window.seconds) == (limit, seconds)


@pytest.mark.parametrize("spec", ["day", "1/fortnight", "-1/day", "1/0d"])
def test_bad_window_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValidationError):
        CapWindow.model_validate(spec)


def test_defaults_and_counters() -> None:
    counters = counters_for(
        CapsPolicy(),
        prefix="omni:",
        customer_key="c1",
        channel="sms",
        journey_id="welcome",
        category="marketing",
    )
    assert [(c.key, c.limit, c.window_ms, c.reason) for c in counters] == [
        ("omni:cap:{c1}:ch:sms:86400", 1, 86_400_000, "cap_channel"),
        ("omni:cap:{c1}:all:604800", 3, 604_800_000, "cap_global"),
        ("omni:cap:{c1}:j:welcome:86400", 1, 86_400_000, "cap_journey"),
    ]


def test_transactional_disabled_and_exempt_have_no_counters() -> None:
    def count(policy: CapsPolicy, channel: str = "sms", category: str = "marketing") -> int:
        return len(
            counters_for(
                policy,
                prefix="p:",
                customer_key="c",
                channel=channel,
                journey_id="j",
                category=category,
            )
        )

    assert count(CapsPolicy(), category="transactional") == 0
    assert count(CapsPolicy(enabled=False)) == 0
    assert count(CapsPolicy(exempt_channels=("app_inbox",)), channel="app_inbox") == 0
    overridden = CapsPolicy(channel_overrides={"sms": ["1/hour", "2/day"]})
    assert count(overridden) == 4


def test_load_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "caps.yaml"
    yaml_file.write_text("per_channel: ['2/day']\nacross_channels: [{limit: 5, seconds: 604800}]\n")
    policy = load_caps_policy(yaml_file)
    assert policy.per_channel[0].limit == 2 and policy.across_channels[0].limit == 5
    json_file = tmp_path / "caps.json"
    json_file.write_text('{"enabled": false}')
    assert load_caps_policy(json_file).enabled is False
    assert load_caps_policy(None) == CapsPolicy()
    bad = tmp_path / "bad.yaml"
    bad.write_text("per_chanel: ['1/day']\n")
    with pytest.raises(CapsPolicyError, match=r"bad\.yaml:1: per_chanel: Extra inputs"):
        load_caps_policy(bad)
