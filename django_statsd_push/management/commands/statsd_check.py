"""``manage.py statsd_check``: send one test metric and find out whether it was counted.

UDP cannot tell the sender whether anyone listens, so "sent" alone proves little. When
the daemon has a management interface (etsy statsd's, which ``statsd-push serve`` also
speaks: TCP, ``STATSD_PORT + 1`` by default), the command asks it for its ``counters``
before and after sending and reports the metric as *counted* only when the daemon's
count went up. A daemon without one (DogStatsD, statsd_exporter) is checked with
``--no-confirm``. A bad ``STATSD_*`` setting is named, with its fix, instead of a bare
"disabled".

Exit status: 0 when counted (or sent, with ``--no-confirm``), 1 otherwise.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_statsd_push import names
from django_statsd_push.client import statsd
from django_statsd_push.conf import settings as conf

# One counter in the ``counters`` answer, a JavaScript object literal as node's
# util.inspect prints it: keys quoted ('a.b': 3) or bare when an identifier
# (statsd_check: 1), one per line or several on one line.
_COUNTER = re.compile(r"(?:'((?:[^'\\]|\\.)*)'|([A-Za-z_$][\w$]*))\s*:\s*(-?[0-9][0-9.e+-]*)")
# A flush between reading "before" and "after" resets the daemon's counters (to 0, or
# deletes them), which can hide the increment: each attempt waits ATTEMPT_WAIT seconds
# for it, then sends again.
ATTEMPTS = 3
ATTEMPT_WAIT = 1.0
WAIT = ATTEMPTS * ATTEMPT_WAIT
# Where the daemon says how many flushes it made (ours does), an attempt that a flush
# interrupted is not counted: against a daemon that flushes every few milliseconds on a
# busy machine most attempts are. At most this many such repeats.
FLUSHED_REPEATS = 20
_FLUSHES = re.compile(r"^flushes: (\d+)$", re.M)


class ManagementError(OSError):
    """The management interface could not be asked (refused, timed out, not etsy's)."""


def _ask(host: str, port: int, command: str, timeout: float = 2.0) -> str:
    """One etsy management command's answer, up to its ``END`` line."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(command.encode() + b"\n")
            answer = b""
            deadline = time.monotonic() + timeout
            while b"\nEND\n" not in answer:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        raise ManagementError(f"no management interface at {host}:{port} ({exc})") from None
    if b"\nEND\n" not in answer:
        raise ManagementError(f"{host}:{port} did not answer {command!r} like a statsd daemon")
    return answer.decode("utf-8", "replace")


def read_counters(host: str, port: int, timeout: float = 2.0) -> dict[str, float]:
    """The daemon's current counters, by etsy's management ``counters`` command."""
    counters = {}
    for quoted, bare, value in _COUNTER.findall(_ask(host, port, "counters", timeout)):
        name = bare or quoted.replace("\\'", "'").replace("\\\\", "\\")
        counters[name] = float(value)
    return counters


def read_flushes(host: str, port: int) -> int | None:
    """How many flushes the daemon has made (``statsd-push serve``'s ``stats``), or None
    for a daemon that does not say (etsy statsd)."""
    match = _FLUSHES.search(_ask(host, port, "stats"))
    return int(match.group(1)) if match else None


def _address(transport: Any) -> str:
    resolver = getattr(transport, "resolver", None)
    if resolver is not None:
        if resolver.address is None:
            return "unresolved"
        host, port = resolver.address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = getattr(transport, "path", None)
    return path or "-"


class Command(BaseCommand):
    help = ("Send one test metric (a statsd_check counter) and confirm, through the daemon's "
            "management port, that the daemon counted it.")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name", default=None,
            help="Metric name to send instead of statsd_check (STATSD_PREFIX still applies).",
        )
        parser.add_argument(
            "--mgmt-port", type=int, default=None,
            help="The daemon's management (admin) TCP port; default STATSD_PORT + 1, as "
                 "etsy statsd and statsd-push serve use.",
        )
        parser.add_argument(
            "--mgmt-host", default=None, help="The management interface's host; default STATSD_HOST.",
        )
        parser.add_argument(
            "--no-confirm", action="store_true",
            help="Only send (for daemons without a management interface).",
        )

    def handle(self, *args: Any, name: str | None = None, mgmt_port: int | None = None,
               mgmt_host: str | None = None, no_confirm: bool = False, **options: Any) -> None:
        state = statsd.state
        if state.error is not None:
            error = state.error
            self._rows([("enabled", f"no: {error}"), ("fix", error.hint)])
            raise CommandError(f"metrics are disabled by {error.setting} "
                               f"(check django_statsd_push.{error.check_id})", returncode=1)
        if not state.enabled:
            self._rows([("enabled", "no: STATSD_ENABLED = False")])
            raise CommandError("metrics are disabled (STATSD_ENABLED = False)", returncode=1)
        transport = statsd.transport
        rows = [
            ("client", str(conf.client)),
            ("transport", type(transport).__name__),
            ("host", str(conf.host)),
            ("port", str(conf.port)),
            ("address", _address(transport)),
            ("prefix", state.prefix or "-"),
        ]
        network = conf.client in ("udp", "tcp")
        confirm = network and not no_confirm
        management = (mgmt_host or conf.parsed("host"),
                      mgmt_port if mgmt_port is not None else conf.parsed("port") + 1)
        if confirm:
            rows.append(("management", "%s:%d%s" % (*management, "" if mgmt_port else " (guessed)")))
        try:
            line, dropped, counted = self._send(name or names.check(), management if confirm else None)
        except ManagementError as exc:
            self._rows(rows)
            raise CommandError(
                f"could not confirm: {exc}. Give the daemon's management port with "
                "--mgmt-port, or use --no-confirm for a daemon without one.", returncode=1)
        if dropped:
            rows.append(("metric", f"dropped: {line}"))
        elif not confirm:
            rows.append(("metric", f"sent: {line}" + ("" if network else " (not a network client)")))
        else:
            rows.append(("metric", f"{'counted' if counted else 'NOT counted'}: {line}"))
        self._rows(rows)
        if dropped:
            raise CommandError("the metric could not be sent (see address above)", returncode=1)
        if confirm and not counted:
            raise CommandError(
                f"sent, but the daemon answering at {management[0]}:{management[1]} did not "
                f"count it within {WAIT:g} s: is it the daemon STATSD_HOST:STATSD_PORT "
                "points to?", returncode=1)

    def _send(self, name: str, management: tuple[str, int] | None) -> tuple[str, bool, bool]:
        """(line, dropped, counted): send the metric, and ask the daemon if it counted it."""
        transport = statsd.transport
        attempts = repeats = 0
        while attempts < ATTEMPTS:
            attempts += 1
            before_counters = read_counters(*management) if management else {}
            flushes = read_flushes(*management) if management else None
            before_dropped = transport.dropped
            with statsd.capture() as sent:
                statsd.incr(name)
            line = sent[0].line if sent else "(nothing)"
            if transport.dropped != before_dropped:
                return line, True, False
            if management is None:
                return line, False, False
            key = sent[0].name if sent else name
            before = before_counters.get(key, 0.0)
            deadline = time.monotonic() + ATTEMPT_WAIT
            while time.monotonic() < deadline:
                now = read_counters(*management).get(key, 0.0)
                if now > before:
                    return line, False, True
                if now < before:  # the daemon flushed (reset its counters): ask again
                    break
                time.sleep(0.02)
            if flushes is not None and repeats < FLUSHED_REPEATS and read_flushes(*management) != flushes:
                attempts -= 1  # a flush hid it: this attempt does not count
                repeats += 1
        return line, False, False

    def _rows(self, rows: list[tuple[str, str]]) -> None:
        for key, value in rows:
            self.stdout.write(f"{key + ':':<12}{value}")
