from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from omnistream.policies.quiet_hours import (
    QuietHours,
    SendWindow,
    is_quiet,
    next_allowed,
    next_local_time,
    zone,
)

KYIV = ZoneInfo("Europe/Kyiv")
QUIET = QuietHours(start=time(21), end=time(9))


def test_quiet_hours_cross_midnight_in_local_time() -> None:
    assert is_quiet(datetime(2026, 3, 2, 19, 30, tzinfo=UTC), KYIV, QUIET)  # 21:30 local
    assert not is_quiet(datetime(2026, 3, 2, 18, 59, tzinfo=UTC), KYIV, QUIET)  # 20:59
    assert is_quiet(datetime(2026, 3, 3, 6, 59, tzinfo=UTC), KYIV, QUIET)  # 08:59


def test_next_allowed_waits_for_the_window_to_open() -> None:
    late = datetime(2026, 3, 2, 20, tzinfo=UTC)
    assert next_allowed(late, KYIV, QUIET, None) == datetime(2026, 3, 3, 7, tzinfo=UTC)
    noon = datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert next_allowed(noon, KYIV, QUIET, None) == noon
    weekdays = SendWindow(days=("mon", "tue", "wed", "thu", "fri"), start=time(10), end=time(18))
    saturday = datetime(2026, 3, 7, 10, tzinfo=UTC)
    assert next_allowed(saturday, KYIV, QUIET, weekdays) == datetime(2026, 3, 9, 8, tzinfo=UTC)


def test_daylight_saving_change_is_the_zones_business() -> None:
    # Kyiv moves from UTC+2 to UTC+3 on 29 March 2026: 09:00 local is 07:00 then 06:00 UTC.
    before = datetime(2026, 3, 28, 20, tzinfo=UTC)
    assert next_allowed(before, KYIV, QUIET, None) == datetime(2026, 3, 29, 6, tzinfo=UTC)
    gap = next_local_time(datetime(2026, 3, 28, 12, tzinfo=UTC), KYIV, time(3, 30))
    assert gap.astimezone(KYIV).hour == 4  # 03:30 does not exist that night


def test_unknown_zone_falls_back() -> None:
    assert zone("Not/AZone", "Europe/Kyiv") == KYIV
    assert zone(None, "nonsense") == ZoneInfo("UTC")
