"""Port checks before start, readiness checks after: the stack never guesses with sleeps.

Readiness is whatever each daemon itself answers once it can do its job: the
management interface's ``health`` for the statsd daemon, HTTP 200 for the render API,
the bridge and the example app (carbon-cache's line port is waited for by
``stack/carbon_cache.py``, which starts it).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

HOST = "127.0.0.1"


class NotReady(RuntimeError):
    """A part did not come up; ``log`` holds the end of its log, for the error message."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class Port:
    """A port the stack will bind, and the flag that changes it (for the error message)."""

    what: str
    number: int
    flag: str
    udp: bool = False


def port_in_use(host: str, port: int, udp: bool = False) -> bool:
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                # Same option the daemons set, so a port in TIME_WAIT is not "taken".
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return True
    return False


class PortHold:
    """A TCP port kept for a program that is told the number and binds it later.

    A port picked free and let go is anyone's until the program binds it: whatever binds
    port 0 meanwhile (another server, a test run, the stack's own children) may get it,
    and the program exits with EADDRINUSE, or its clients talk to the stranger. This
    socket is bound with SO_REUSEADDR and SO_REUSEPORT and never listens. Linux then
    hands the port to no bind to port 0 and no connect, and refuses every bind without
    those options, but lets the program bind and listen if it sets SO_REUSEADDR (Python's
    socketserver and ``create_server``, twisted, libuv, Go and gunicorn all do) or
    SO_REUSEPORT as the same user; until it listens, a connect is refused as on a free
    port. A process that picked the same number earlier and binds it with SO_REUSEADDR
    still gets in: whoever starts the program keeps a retry for that.

    ``avoid``: numbers not to hand out (ports given to other parts). ``udp``: the port's
    UDP twin is free too at the moment of the pick. It cannot be held (a bound UDP socket
    receives datagrams, and no UDP server here sets either option), so whoever starts
    the program retries when it was taken. Keep the hold while the program runs (once
    it stops, the port is still nobody else's), or ``close()`` it once the program listens.
    """

    def __init__(self, host: str = HOST, udp: bool = False, avoid: set[int] | frozenset[int] = frozenset()) -> None:
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((host, 0))
            except BaseException:
                sock.close()
                raise
            self.port = sock.getsockname()[1]
            if self.port not in avoid and not (udp and port_in_use(host, self.port, udp=True)):  # TCP passes the hold
                self.sock = sock
                return
            sock.close()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> PortHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_ports(ports: list[Port], host: str = HOST) -> list[str]:
    """One clear message per taken or duplicated port; empty when all can be bound."""
    errors = []
    seen: dict[int, Port] = {}
    for p in ports:
        if p.number in seen:
            errors.append(
                f"port {p.number} is given both to {seen[p.number].what} ({seen[p.number].flag}) "
                f"and to {p.what} ({p.flag}); change one of them"
            )
            continue
        seen[p.number] = p
        if port_in_use(host, p.number, p.udp):
            proto = "UDP/TCP" if p.udp else "TCP"
            errors.append(
                f"port {p.number} ({p.what}, {proto}) is already in use on {host}; "
                f"stop whatever holds it or choose another with {p.flag} PORT"
            )
    return errors


def http_status(host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def mgmt_command(host: str, port: int, command: str, timeout: float = 2.0) -> str:
    """Send one command to the daemon's etsy-style management port; return the reply text.

    ``stats`` replies end with ``END``; ``health`` is one line. Read until one of those.
    """
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            text = data.decode("utf-8", "replace")
            if command == "health" and text.endswith("\n"):
                break
            if text.rstrip().endswith("END"):
                break
    return data.decode("utf-8", "replace")


def mgmt_healthy(host: str, port: int) -> bool:
    try:
        return mgmt_command(host, port, "health").strip() == "health: up"
    except OSError:
        return False


def mgmt_stats(host: str, port: int) -> dict[str, str]:
    """The ``stats`` reply as a dict of raw strings (``key: value`` lines before ``END``)."""
    stats = {}
    for line in mgmt_command(host, port, "stats").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            stats[key.strip()] = value.strip()
    return stats


def wait_until(
    ready: Callable[[], bool],
    what: str,
    deadline_s: float,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
) -> float:
    """Poll ``ready`` until true; raise NotReady at the deadline or as soon as the child is gone.

    Returns the seconds waited (printed, so a slow start is visible).
    """
    began = time.monotonic()
    end = began + deadline_s
    while True:
        if ready():
            return time.monotonic() - began
        if not alive():
            raise NotReady(f"{what} exited before it became ready")
        if time.monotonic() >= end:
            raise NotReady(f"{what} was not ready within {deadline_s:g}s")
        time.sleep(interval)
