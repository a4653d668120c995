"""graphite's from/until syntax."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from django_statsd_push.render.errors import InputError
from django_statsd_push.render.timeparse import parse_offset, parse_time

UTC = timezone.utc
NOW = datetime(2024, 3, 15, 12, 34, 56, tzinfo=UTC)  # a Friday


def ts(text, tz=UTC):
    return int(parse_time(text, NOW, tz).timestamp())


BASE = int(NOW.timestamp())


@pytest.mark.parametrize("text,expected", [
    ("now", BASE), ("", None), ("-5min", BASE - 300), ("-1h", BASE - 3600), ("-7d", BASE - 7 * 86400),
    ("-1mon", BASE - 30 * 86400), ("-1y", BASE - 365 * 86400), ("-2w", BASE - 14 * 86400),
    ("-30s", BASE - 30), ("-1h30min", BASE - 5400), ("now-2h", BASE - 7200), ("now+1d", BASE + 86400),
    ("1700000000", 1700000000), ("20240101", int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())),
    ("12:00_20240101", int(datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp())),
    ("noon", int(datetime(2024, 3, 15, 12, tzinfo=UTC).timestamp())),
    ("midnight", int(datetime(2024, 3, 15, tzinfo=UTC).timestamp())),
    ("yesterday", int(datetime(2024, 3, 14, tzinfo=UTC).timestamp())),
    ("midnight+1h", int(datetime(2024, 3, 15, 1, tzinfo=UTC).timestamp())),
    ("3pm_yesterday", int(datetime(2024, 3, 14, 15, tzinfo=UTC).timestamp())),
    ("01/02/24", int(datetime(2024, 1, 2, tzinfo=UTC).timestamp())),
    ("jan5", int(datetime(2024, 1, 5, tzinfo=UTC).timestamp())),
    ("monday", int(datetime(2024, 3, 11, tzinfo=UTC).timestamp())),
])
def test_forms(text, expected):
    if expected is None:
        with pytest.raises(InputError):
            ts(text)
    else:
        assert ts(text) == expected


def test_time_zone_applies_to_absolute_forms_only():
    paris = ZoneInfo("Europe/Paris")
    assert ts("-1h", paris) == BASE - 3600
    assert ts("20240101", paris) == int(datetime(2024, 1, 1, tzinfo=paris).timestamp())


@pytest.mark.parametrize("bad", ["garbage", "-5", "-5parsecs", "now-", "13:xx", "-h"])
def test_bad_times_are_input_errors_naming_the_value(bad):
    with pytest.raises(InputError, match="invalid time"):
        ts(bad)


def test_offsets():
    assert parse_offset("1min") == 60
    assert parse_offset("-1d") == -86400
    assert parse_offset("+2h") == 7200
    with pytest.raises(InputError):
        parse_offset("5")
