"""Comparing Carbon line sets the way the fixture README says (helpers for the tests)."""

from __future__ import annotations

import os
from pathlib import Path

# The reference capture lives beside the checkout, in ../shared/fixtures (one copy for
# every project that compares against etsy statsd 0.9.0); STATSD_PUSH_FIXTURES overrides.
FIXTURES = Path(
    os.environ.get("STATSD_PUSH_FIXTURES")
    or Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "etsy-statsd-0.9"
)

# Timing stats whose values differ run to run (masked, as the fixture README says).
# Matched without the "statsd" prefix, which prefixStats changes.
MASKED = (
    ".graphiteStats.calculationtime",
    ".processing_time",
    ".graphiteStats.last_flush",
    ".graphiteStats.flush_length",
    ".graphiteStats.flush_time",
)


def masked(lines) -> set[tuple[str, str]]:
    """``{(name, value)}`` with timestamps dropped and the timing stats' values masked."""
    out = set()
    for line in lines:
        name, value, *_ = line.split(" ") if isinstance(line, str) else line
        if any(m in name for m in MASKED):
            value = "*"
        out.add((name, value))
    return out


def fixture_lines(name: str) -> set[tuple[str, str]]:
    return masked((FIXTURES / name).read_text().splitlines())
