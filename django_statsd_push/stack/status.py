"""The live one-line status, computed from two readings of the daemon's mgmt ``stats``.

Counters in ``stats`` grow since start, so a rate needs two readings; the line is
rewritten in place on a terminal and printed now and then when output goes to a file,
so a log does not fill with one line a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

# The daemon's mgmt `stats` key for each figure: lines sent to Carbon stand for
# "metrics flushed", lines waiting for Carbon for its queue.
PACKETS = "messages.packets_received"
METRICS_FLUSHED = "carbon.sent"
CARBON_QUEUE = "carbon.pending"


def pick(stats: dict[str, str], name: str) -> float | None:
    """The figure, or None while the daemon does not report it as a number."""
    try:
        return float(stats[name])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Reading:
    at: float
    stats: dict[str, str]


def status_line(previous: Reading | None, current: Reading) -> str:
    packets = pick(current.stats, PACKETS)
    rate = "?"
    if previous is not None and packets is not None:
        before = pick(previous.stats, PACKETS)
        elapsed = current.at - previous.at
        if before is not None and elapsed > 0:
            rate = f"{max(0.0, packets - before) / elapsed:.1f}"
    flushed = pick(current.stats, METRICS_FLUSHED)
    queue = pick(current.stats, CARBON_QUEUE)
    return (
        f"packets/s {rate}"
        f" | metrics flushed {'?' if flushed is None else int(flushed)}"
        f" | carbon queue {'?' if queue is None else int(queue)}"
    )


class StatusPrinter:
    """Writes status lines: in place on a TTY, else one every ``every`` seconds."""

    def __init__(self, stream: TextIO, every: float = 30.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every = every
        self.last_printed = float("-inf")
        self.previous: Reading | None = None
        self.shown = False

    def update(self, stats: dict[str, str] | None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        first = self.previous is None
        if stats is None:
            line = "daemon mgmt port not answering"
        else:
            current = Reading(now, stats)
            line = status_line(self.previous, current)
            self.previous = current
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.shown = True
        # Into a file: no line until the rate is known, then one every `every` seconds.
        elif now - self.last_printed >= self.every and not (first and stats is not None):
            self.stream.write(line + "\n")
            self.last_printed = now
        self.stream.flush()

    def clear(self) -> None:
        """End the in-place line so the next message starts on a line of its own."""
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
