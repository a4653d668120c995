"""etsy statsd's management interface (TCP, port 8126): same commands, same answers.

``health [up|down]`` -> ``health: up``; ``stats`` -> ``key: value`` lines then ``END``;
``counters``/``timers``/``gauges`` -> the current tables as Node's ``util.inspect``
prints them (``js_inspect.py``: etsy's text, line breaks included) then ``END``;
``delcounters``/``deltimers``/``delgauges`` ``name`` or ``folder.*``; ``help``; ``quit``. Monitoring scripts written for etsy
keep working. ``stats`` adds our own totals (``messages.metrics_received`` since
start, kernel drops, Carbon buffer), which the benchmark reads to count loss.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from django_statsd_push.server.aggregate import Aggregator
from django_statsd_push.server.config import Settings
from django_statsd_push.server.graphite import etsy_key
from django_statsd_push.server.js import js_str
from django_statsd_push.server.js_inspect import inspect


class Managed(Protocol):
    """What the interface needs of the daemon (``Daemon`` has it), so that the two
    modules do not import each other."""

    health: str
    lock: AbstractContextManager
    aggregator: Aggregator  # read and edited under ``lock``
    settings: Settings  # the settings in force, for ``config``
    clock: Callable[[], float]
    started: float  # on ``clock``

    def status(self) -> dict[str, float]: ...

    def collect(self) -> None:
        """Bring what worker processes received into ``aggregator`` (no-op without)."""

HELP = "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, config, quit\n\n"


class Management:
    def __init__(self, daemon: Managed) -> None:
        self.daemon = daemon

    def handle(self, chunk: bytes, reply: Callable[[bytes], None]) -> bool:
        for line in chunk.decode("ascii", "replace").splitlines():
            words = line.strip().split(" ")
            if not words[0]:
                continue
            answer, keep = self.command(words[0], words[1:])
            if answer:
                reply(answer.encode())
            if not keep:
                return False
        return True

    def command(self, cmd: str, args: list[str]) -> tuple[str, bool]:
        d = self.daemon
        if cmd == "help":
            return HELP, True
        if cmd == "health":
            if args and args[0].lower() in ("up", "down"):
                d.health = args[0].lower()
            return f"health: {d.health}\n", True
        if cmd == "stats":
            lines = [f"uptime: {round(d.clock()) - round(d.started)}"]  # d.started is on d.clock too
            lines += [f"{k}: {js_str(v)}" for k, v in d.status().items()]
            return "\n".join(lines) + "\nEND\n\n", True
        if cmd == "config":
            return "\n" + "".join(f"{k}: {v}\n" for k, v in vars(d.settings).items()), True
        if cmd in ("counters", "timers", "gauges"):
            d.collect()
            with d.lock:
                table = d.aggregator.current(cmd)
            listing = {etsy_key(k): list(v) if cmd == "timers" else v for k, v in table.items()}
            return inspect(listing) + "\nEND\n\n", True
        if cmd in ("delcounters", "deltimers", "delgauges"):
            return self._delete(cmd[3:], args), True
        if cmd == "quit":
            return "", False
        return "ERROR\n", True

    def _delete(self, table: str, patterns: list[str]) -> str:
        out = []
        self.daemon.collect()  # etsy deletes from tables that hold everything received
        for pattern in patterns:
            with self.daemon.lock:
                deleted = self.daemon.aggregator.delete(table, pattern, etsy_key)
            out += [f"deleted: {name}\n" for name in deleted] or [f"metric {pattern} not found\n"]
        return "".join(out) + "END\n\n"
