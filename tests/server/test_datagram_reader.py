"""The datagram reader (UDP and Unix datagram inputs): keeping up while the interpreter
is busy elsewhere, reading what is queued before stopping, its limits."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from django_statsd_push.server.datagrams import READ_AT_ONCE, DatagramReader
from django_statsd_push.server.listener import UdpListener
from django_statsd_push.server.unix_listener import UnixDatagramListener

from .helpers import eventually

# Sends argv[3] datagrams of 20 counter lines to 127.0.0.1:argv[1], argv[2] a second.
SENDER = """
import socket, sys, time
port, rate, count = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
packet = "\\n".join(f"busy.m{j}:1|c" for j in range(20)).encode()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    start = time.monotonic()
    for i in range(count):
        s.sendto(packet, ("127.0.0.1", port))
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
"""


def test_udp_reader_keeps_up_while_another_thread_holds_the_interpreter():
    """A flush at 500k names keeps the interpreter busy for seconds, and there ingesting
    a datagram costs far more than reading it. Here a thread spins in Python (it gives
    the GIL up only when the reader asks, every 5 ms at best) while 3,000 datagrams
    arrive at 1,000/s, and ingesting one takes 2 ms of Python: the reader parses a
    few hundred a second at most, and a 512 KiB receive buffer holds about 800 of
    them. The reader that parsed each datagram before reading the next lost 1,500
    to 1,800 of them here; one that moves what is queued into its backlog in each of its
    turns, and parses afterwards, loses none (the kernel's buffer then only has to
    cover the longest wait for a turn: 800 ms here)."""
    count, rate = 3000, 1000
    lines: list[int] = []

    def slow_ingest(data: bytes) -> None:
        lines.append(data.count(b"\n") + 1)
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass

    udp = UdpListener("127.0.0.1", 0, slow_ingest, receive_buffer=512 << 10).start()
    sent = threading.Event()

    def hog() -> None:
        while not sent.is_set():
            for _ in range(1000):
                pass

    hogger = threading.Thread(target=hog)
    try:
        hogger.start()
        subprocess.run([sys.executable, "-c", SENDER, str(udp.address[1]), str(rate), str(count)],
                       check=True, timeout=300)
        sent.set()
        hogger.join()
        got, drops = eventually(lambda: (sum(lines), udp.total_kernel_drops()),
                                lambda v: v[0] + 20 * v[1] >= 20 * count, timeout=120)
        assert (got, drops) == (20 * count, 0)
    finally:
        sent.set()
        udp.stop()
        udp.close()


def _udp(ingest):
    listener = UdpListener("127.0.0.1", 0, ingest)

    def send(payload: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(payload, listener.address)

    return listener, send


def _unix(ingest, directory):
    listener = UnixDatagramListener(os.path.join(directory, "d.sock"), ingest)

    def send(payload: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(payload, listener.path)

    return listener, send


@pytest.mark.parametrize("kind", ["udp", "unix"])
def test_stop_ingests_what_was_queued_before_it(kind, short_dir):
    """The first datagram's ingest is held until ``stop()`` has shut the socket: the
    nine queued behind it must still be ingested before the reader ends."""
    got: list[bytes] = []
    inside, release = threading.Event(), threading.Event()

    def ingest(data: bytes) -> None:
        got.append(bytes(data))
        inside.set()
        assert release.wait(60)

    listener, send = _udp(ingest) if kind == "udp" else _unix(ingest, short_dir)
    listener.start()
    send(b"m0:1|c")
    assert inside.wait(60)
    for i in range(1, 10):
        send(b"m%d:1|c" % i)
    stopper = threading.Thread(target=listener.stop)
    stopper.start()
    assert eventually(lambda: listener.reader.stopping, bool)
    release.set()
    stopper.join()
    if kind == "udp":
        listener.close()  # the Unix listener's stop() closes its socket itself
    assert got == [b"m%d:1|c" % i for i in range(10)]


@pytest.mark.parametrize("keep_gil", [True, False], ids=["libc", "socket"])
def test_read_queued_limits_and_errors(keep_gil):
    """Both ways of reading (libc's recv keeping the GIL; the socket's own, where ctypes
    is missing): up to ``limit`` datagrams, each ingested as it is read; too large ones
    counted, an ingest error counted and logged without ending the reading."""
    counted: list[str] = []
    got: list[bytes] = []

    def ingest(data: bytes) -> None:
        if data == b"boom":
            raise ValueError("a bug")
        got.append(bytes(data))

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sock.bind(("127.0.0.1", 0))
        reader = DatagramReader(sock, ingest, max_packet_size=10, count=lambda stat, n: counted.append(stat),
                                name="test", keep_gil=keep_gil)
        assert reader.keeps_gil is keep_gil
        for payload in (b"a:1|c", b"x" * 11, b"boom", b"b:1|c", b"c:1|c"):
            sender.sendto(payload, sock.getsockname())
        assert reader.read_queued(4) == 4
        assert got == [b"a:1|c", b"b:1|c"]
        assert counted == ["packets_too_large", "ingest_errors"]
        assert reader.read_queued(4) == 1
        assert reader.read_queued(4) == 0
        assert got[-1] == b"c:1|c"


def test_the_backlog_is_bounded_and_the_rest_waits_in_the_kernel():
    """What the reader has read but not ingested yet stops growing at ``backlog_bytes``
    (give or take one batch of reads); beyond it datagrams wait in the kernel's queue,
    and all come through in order."""
    got: list[bytes] = []
    inside, release = threading.Event(), threading.Event()

    def ingest(data: bytes) -> None:
        inside.set()
        assert release.wait(60)
        got.append(bytes(data))

    udp = UdpListener("127.0.0.1", 0, ingest)
    udp.reader.backlog_bytes = 10 * 100
    packets = [b"m%03d:1|c" % i + b" " * 92 for i in range(4 * READ_AT_ONCE)]  # 100 bytes each
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets:
            s.sendto(p, udp.address)
    udp.start()
    try:
        # In the first ingest the reader has taken what it will before ingesting: one batch.
        assert inside.wait(60)
        next_size = struct.unpack("i", fcntl.ioctl(udp.sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
        assert next_size == 100  # the kernel still holds the others
        release.set()
        assert eventually(lambda: len(got), lambda n: n == len(packets)) == len(packets)
        assert got == packets
    finally:
        release.set()
        udp.stop()
        udp.close()
