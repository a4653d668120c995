"""Graphite's ``from``/``until`` syntax (graphite-web's "attime"), re-implemented.

Grafana and hand-written dashboards send these strings verbatim, so the accepted
forms follow graphite-web: ``now``, ``-5min``, ``now-2h``, ``-1mon`` (30 days),
``-1y`` (365 days), epoch seconds, ``HH:MM_YYYYMMDD``, ``YYYYMMDD``, ``MM/DD/YY``,
``noon``/``midnight``/``teatime``, ``yesterday``/``today``/``tomorrow``, month and
weekday names. Anything else is an :class:`InputError`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from .errors import InputError

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_UNITS = (  # prefix -> seconds; "min"/"mon" must be tested before "m"-less forms below
    ("s", 1),
    ("min", 60),
    ("h", 3600),
    ("d", 86400),
    ("w", 7 * 86400),
    ("mon", 30 * 86400),
    ("y", 365 * 86400),
)


def unit_seconds(unit: str) -> int:
    for prefix, seconds in _UNITS:
        if unit.startswith(prefix):
            return seconds
    raise InputError(f"invalid time unit {unit!r} (use s, min, h, d, w, mon, y)")


def parse_offset(offset: str) -> int:
    """``-1h30min`` -> -5400. A bare number without a unit is an error, as in graphite."""
    text = offset.strip().lower().replace(" ", "")
    if not text:
        return 0
    sign = 1
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if not text:
        raise InputError(f"invalid time offset {offset!r}")
    total = 0
    while text:
        i = 0
        while i < len(text) and text[i].isdigit():
            i += 1
        if i == 0:
            raise InputError(f"invalid time offset {offset!r}: expected a number")
        num = int(text[:i])
        text = text[i:]
        j = 0
        while j < len(text) and text[j].isalpha():
            j += 1
        if j == 0:
            raise InputError(f"invalid time offset {offset!r}: a unit must follow {num}")
        total += num * unit_seconds(text[:j])
        text = text[j:]
    return sign * total


def interval_seconds(interval: str) -> int:
    """Length of an interval string such as ``1h`` (sign ignored), as graphite's functions use it."""
    return abs(parse_offset(interval))


def parse_time(text: str, now: datetime, tz: tzinfo) -> datetime:
    """Parse one ``from``/``until`` value relative to ``now`` (an aware datetime)."""
    try:
        return _parse(text, now, tz)
    except (ValueError, OverflowError, IndexError) as exc:  # InputError is a ValueError
        raise InputError(f"invalid time {text!r}: {exc}") from None


def _parse(text: str, now: datetime, tz: tzinfo) -> datetime:
    s = text.strip().lower().replace("_", "").replace(",", "").replace(" ", "")
    if not s:
        raise InputError("empty time")
    if s.isdigit() and not (len(s) == 8 and int(s[:4]) > 1900 and int(s[4:6]) < 13 and int(s[6:]) < 32):
        return datetime.fromtimestamp(int(s), tz)
    if "+" in s:
        ref, offset = s.split("+", 1)
        offset = "+" + offset
    elif "-" in s:
        ref, offset = s.split("-", 1)
        offset = "-" + offset
    else:
        ref, offset = s, ""
    return _reference(ref, now, tz) + timedelta(seconds=parse_offset(offset))


def _reference(ref: str, now: datetime, tz: tzinfo) -> datetime:
    if not ref or ref == "now":
        return now
    raw = ref
    hour = minute = 0
    i = ref.find(":")
    if 0 < i < 3:
        hour, minute = int(ref[:i]), int(ref[i + 1 : i + 3])
        ref = ref[i + 3 :]
        if ref[:2] == "am":
            ref = ref[2:]
        elif ref[:2] == "pm":
            hour, ref = (hour + 12) % 24, ref[2:]
    i = ref.find("am")
    if 0 < i < 3:
        hour, ref = int(ref[:i]), ref[i + 2 :]
    i = ref.find("pm")
    if 0 < i < 3:
        hour, ref = (int(ref[:i]) + 12) % 24, ref[i + 2 :]
    for word, h in (("noon", 12), ("midnight", 0), ("teatime", 16)):
        if ref.startswith(word):
            hour, minute, ref = h, 0, ref[len(word) :]
            break
    local = now.astimezone(tz)
    day = local.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None)
    if ref in ("yesterday", "today", "tomorrow"):
        day += timedelta(days={"yesterday": -1, "today": 0, "tomorrow": 1}[ref])
    elif ref.count("/") == 2:
        m, d, y = map(int, ref.split("/"))
        if y < 1900:
            y += 1900
        if y < 1970:
            y += 100
        day = datetime(y, m, d, hour, minute)
    elif len(ref) == 8 and ref.isdigit():
        day = datetime(int(ref[:4]), int(ref[4:6]), int(ref[6:8]), hour, minute)
    elif ref[:3] in MONTHS:
        digits = ref[-2:] if ref[-2:].isdigit() else ref[-1:]
        if not digits.isdigit():
            raise InputError("day of month required after month name")
        day = datetime(day.year, MONTHS.index(ref[:3]) + 1, int(digits), hour, minute)
    elif ref[:3] in WEEKDAYS:
        today = WEEKDAYS.index(day.strftime("%a").lower()[:3])
        back = (today - WEEKDAYS.index(ref[:3])) % 7
        day -= timedelta(days=back)
    elif ref:
        raise InputError(f"unknown day reference {raw!r}")
    return day.replace(tzinfo=tz)
