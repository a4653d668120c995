"""Comparing Carbon line sets the way the fixture README says (helpers for the tests)."""

from __future__ import annotations

from pathlib import Path

# The reference capture, kept in the repository (its README says how it was made).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "etsy-statsd-0.9"

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
