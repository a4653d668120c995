"""Small helpers the daemon tests share: send datagrams, ask the management port, wait."""

from __future__ import annotations

import socket
import time


def send_udp(port: int, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets:
            s.sendto(p, ("127.0.0.1", port))


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


def wait_received(daemon, n: int, timeout: float = 30.0) -> None:
    """Until the daemon has counted ``n`` metrics (lines) since start."""
    deadline = time.monotonic() + timeout
    while daemon.status()["messages.metrics_received"] < n:
        assert time.monotonic() < deadline, f"daemon received {daemon.status()['messages.metrics_received']} < {n}"
        time.sleep(0.01)


class Collect:
    """A GraphiteSink writer that keeps each flush's lines (the Carbon client is tested apart)."""

    def __init__(self) -> None:
        self.batches: list[list] = []

    def send(self, lines: list) -> None:
        self.batches.append(lines)

    def close(self) -> None:
        pass
