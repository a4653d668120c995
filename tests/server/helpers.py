"""Small helpers the daemon tests share: send datagrams, ask the management port, wait,
run a real ``statsd-push serve``."""

from __future__ import annotations

import itertools
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from django_statsd_push.server.carbon_client import lines_of
from django_statsd_push.server.aggregate import Aggregator

ROOT = Path(__file__).resolve().parents[2]


def send_udp(port: int, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets:
            s.sendto(p, ("127.0.0.1", port))


def ingest_as_workers(main: Aggregator, packets: Iterable[bytes], workers: int) -> None:
    """``main.ingest`` each packet (``workers == 1``), or hand the packets round-robin to
    ``workers`` recording aggregators and merge them into ``main``, as the daemon does
    with its worker processes. Gauge operations are stamped from one counter, so the
    merge must apply them in the order sent."""
    if workers == 1:
        for packet in packets:
            main.ingest(packet)
        return
    stamps = itertools.count()
    sources = [Aggregator(main.config, recording=True) for _ in range(workers)]
    for source in sources:
        source.clock_ns = stamps.__next__
    for i, packet in enumerate(packets):
        sources[i % workers].ingest(packet)
    main.merge([source.drain() for source in sources])


def mgmt(port: int, command: str) -> str:
    """One management command; single-line answers end at the newline, listings at END."""
    one_line = command.split()[0] not in ("stats", "counters", "timers", "gauges", "delcounters",
                                          "deltimers", "delgauges")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(command.encode() + b"\n")
        data = b""
        while not (data.endswith(b"END\n\n") or (one_line and data.endswith(b"\n"))):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode()


def eventually(read, check, timeout: float = 60.0):
    """``read()`` until ``check(value)`` holds; the last value either way (for the message)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def wait_received(daemon, n: int, timeout: float = 30.0) -> None:
    """Until the daemon has counted ``n`` metrics (lines) since start."""
    deadline = time.monotonic() + timeout
    while daemon.status()["messages.metrics_received"] < n:
        assert time.monotonic() < deadline, f"daemon received {daemon.status()['messages.metrics_received']} < {n}"
        time.sleep(0.01)


def wait_carbon_values(carbon, wanted: dict[str, str], timeout: float = 30.0) -> None:
    """Read ``carbon``'s (a CarbonCapture) lines until each name in ``wanted`` has come with
    its value, in one flush or several: a flush on a loaded machine may split them."""
    seen = {}

    def done(line: str) -> bool:
        name, value, _ = line.split()
        if wanted.get(name) == value:
            seen[name] = value
        return seen == wanted

    carbon.lines_until(done, timeout)


class Collect:
    """A GraphiteSink writer that keeps each flush's lines (the Carbon client is tested apart)."""

    last_written = last_failed = 0

    def __init__(self) -> None:
        self.batches: list[list] = []

    def send(self, text: list[str]) -> None:
        self.batches.append(lines_of(text))

    def configure(self, **options) -> None:
        pass

    def close(self, timeout: float = 0) -> None:
        pass


class Child:
    """A ``python -m django_statsd_push.cli ARGS`` child process. Its output (stdout and
    stderr) is read by a thread into ``output``; ``wait_log`` awaits a line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        self.output: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.output.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_log(self, pattern: str | re.Pattern, timeout: float = 30.0) -> re.Match:
        """The first output line matching ``pattern``; fails if the process ends first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.output:
                    if match := regex.search(line):
                        return match
                exited = self.proc.poll() is not None and not self._reader.is_alive()
                assert not exited and time.monotonic() < deadline, \
                    f"no line matching {regex.pattern!r}:\n{''.join(self.output)}"
                self._changed.wait(0.2)

    def log(self) -> str:
        with self._changed:
            return "".join(self.output)

    def close(self) -> None:
        """Kill it if it still runs; the whole output is in ``output`` afterwards."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._reader.join(10)
        self.proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Serve(Child):
    """A real ``statsd-push serve`` process on ports it picks itself (port 0, read from its
    log), so no other process on the machine can take them between a probe and the bind."""

    LISTENING = re.compile(r"statsd listening on [^ ]+:(\d+) \(UDP\+TCP\), management on [^ ]+:(\d+)")

    def __init__(self, *args: str, timeout: float = 30.0) -> None:
        ports = [] if "--config" in args else ["--port", "0", "--mgmt-port", "0"]
        super().__init__("serve", *ports, *args)
        try:
            match = self.wait_log(self.LISTENING, timeout)
        except BaseException:
            self.close()
            raise
        self.port, self.mgmt_port = int(match.group(1)), int(match.group(2))
