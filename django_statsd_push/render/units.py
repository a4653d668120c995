"""Numbers in SI (k, M, G...) or binary (Ki, Mi...) units, as graphite-web prints them in
legends (cactiStyle, legendValue) and on graph axes."""

from __future__ import annotations

import math

UNIT_SYSTEMS: dict[str, tuple[tuple[str, float], ...]] = {
    "binary": (("Pi", 1024.0**5), ("Ti", 1024.0**4), ("Gi", 1024.0**3), ("Mi", 1024.0**2), ("Ki", 1024.0)),
    "si": (("P", 1000.0**5), ("T", 1000.0**4), ("G", 1000.0**3), ("M", 1000.0**2), ("k", 1000.0)),
    "sec": (("Y", 365 * 86400), ("M", 30 * 86400), ("D", 86400), ("H", 3600), ("m", 60)),
    "msec": (("Y", 365 * 86400000), ("M", 30 * 86400000), ("D", 86400000), ("H", 3600000), ("m", 60000),
             ("s", 1000)),
}


def _whole(scaled: float, value: float) -> float:
    """Drop a fraction under 1e-11 (float noise from the division) when the value is above 1."""
    return float(math.floor(scaled)) if value > 1 and scaled - math.floor(scaled) < 1e-11 else scaled


def format_units(value: float, system: str = "si", units: str | None = None,
                 step: float | None = None) -> tuple[float, str]:
    """``(scaled value, prefix)``: the largest unit not above ``|value|`` (and not above
    ``step`` when given, so axis labels of one graph share a unit)."""
    for prefix, size in UNIT_SYSTEMS[system]:
        if abs(value) >= size and (step is None or step >= size):
            return _whole(value / size, value), prefix + (units or "")
    return _whole(value, value), units or ""
