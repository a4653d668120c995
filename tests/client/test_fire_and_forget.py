"""Nothing reaches the caller: DNS failures, refused ports, socket errors, forks.

Every test uses real sockets. DNS answers that must change during a test come from a
lookup function given to the transport (the same seam the resolver uses for
``socket.getaddrinfo``); the addresses it returns are real receivers.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from django_statsd_push import statsd
from django_statsd_push.client import TCPTransport, UDPTransport, UnixTransport
from tests.client.conftest import Receiver
from tests.conftest import require


def wait_for(condition, timeout=30.0):
    """Poll ``condition`` until it holds; generous: the machine may be loaded."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Answers:
    """A lookup whose answers the test chooses; counts calls."""

    def __init__(self, *ports):
        self.ports = list(ports)
        self.calls = 0

    def __call__(self, host, port, family, socktype):
        self.calls += 1
        answer = self.ports[min(self.calls, len(self.ports)) - 1]
        if answer is None:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socktype, 0, "", ("127.0.0.1", answer))]


def started(transport):
    """The transport once its first lookup has finished (a thread, however slow)."""
    assert transport.resolver.first_answer.wait(30), "first lookup never finished"
    return transport


@pytest.fixture
def two_receivers():
    a, b = Receiver(), Receiver()
    yield a, b
    a.close()
    b.close()


def test_unresolvable_host_drops_and_counts():
    transport = UDPTransport("statsd.invalid", 8125)
    try:
        started(transport)  # the lookup may outlast the constructor's short wait
        transport.send("x:1|c")
        assert transport.dropped == 1
        assert transport.resolver.failures == 1
        assert transport.resolver.address is None
    finally:
        transport.close()


def test_connection_refused_on_connected_udp_is_swallowed():
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens: the kernel answers with ICMP port unreachable
    transport = UDPTransport("127.0.0.1", port)
    try:
        # The first send succeeds; the ICMP error surfaces as ECONNREFUSED on a later one.
        def refused():
            transport.send("x:1|c")
            return transport.dropped > 0

        wait_for(refused)
    finally:
        transport.close()


def test_socket_errors_are_swallowed(receiver):
    transport = UDPTransport("127.0.0.1", receiver.port)
    transport.send("y" * 70_000)  # EMSGSIZE: larger than any UDP datagram
    assert transport.dropped == 1
    transport.close()
    transport.send("after.close:1|c")  # no socket any more
    assert transport.dropped == 2
    assert receiver.datagrams(timeout=0.05) == []


def test_refresh_follows_a_changed_answer_and_keeps_the_last_good_one(two_receivers):
    a, b = two_receivers
    answers = Answers(a.port, b.port, None)
    transport = started(UDPTransport("statsd.example", 8125, refresh=0, lookup=answers))
    try:
        transport.send("one:1|c")
        assert transport.resolver.resolve() is True  # now answers b
        transport.send("two:1|c")
        assert transport.resolver.resolve() is False  # lookup fails: keep b
        transport.send("three:1|c")
        assert a.lines() == ["one:1|c"]
        assert b.lines() == ["two:1|c", "three:1|c"]
        assert transport.resolver.failures == 1
    finally:
        transport.close()


def test_sends_never_look_up(receiver):
    answers = Answers(receiver.port)
    transport = started(UDPTransport("statsd.example", 8125, refresh=0, lookup=answers))
    try:
        for _ in range(100):
            transport.send("x:1|c")
        assert answers.calls == 1
        assert len(receiver.datagrams()) == 100
    finally:
        transport.close()


def test_background_refresh_thread(two_receivers):
    a, b = two_receivers
    answers = Answers(a.port, None, b.port)
    transport = UDPTransport("statsd.example", 8125, refresh=0.02, lookup=answers)
    try:
        wait_for(lambda: transport.resolver.address == ("127.0.0.1", b.port))
        assert transport.resolver.failures >= 1
        transport.send("moved:1|c")
        assert b.lines() == ["moved:1|c"]
    finally:
        transport.close()
    assert not transport.resolver._thread.is_alive()


def test_a_slow_first_lookup_does_not_block_the_caller(receiver):
    release = threading.Event()

    def slow_lookup(*args):
        release.wait(60)
        return [(socket.AF_INET, socket.SOCK_DGRAM, 0, "", ("127.0.0.1", receiver.port))]

    transport = UDPTransport("slow.example", 8125, refresh=0, lookup=slow_lookup)
    try:
        # The constructor returned while the lookup is still blocked: it did not wait
        # for the answer (only for FIRST_LOOKUP_WAIT at most).
        assert not transport.resolver.first_answer.is_set()
        transport.send("early:1|c")  # no address yet: dropped, not waited for
        assert transport.dropped == 1
        release.set()
        assert transport.resolver.first_answer.wait(30)
        assert transport.resolver.address is not None
        transport.send("late:1|c")
        assert receiver.lines(timeout=5) == ["late:1|c"]
    finally:
        release.set()
        transport.close()


def test_fork_gives_the_child_its_own_socket(udp):
    statsd.incr("parent")
    parent_data, parent_addr = udp.sock.recvfrom(1000)
    assert parent_data == b"parent:1|c"
    pid = os.fork()
    if pid == 0:  # child: any exception is a failure exit code
        code = 1
        try:
            statsd.incr("child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    udp.sock.settimeout(2)
    child_data, child_addr = udp.sock.recvfrom(1000)
    assert child_data == b"child:1|c"
    assert child_addr != parent_addr  # a new socket, not the parent's
    statsd.incr("parent.again")  # the parent's client is untouched
    assert udp.lines() == ["parent.again:1|c"]


# --- stream transports -------------------------------------------------------------------


def read_until(conn, count, timeout=30.0):
    conn.settimeout(timeout)
    data = b""
    while data.count(b"\n") < count:
        chunk = conn.recv(65535)
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


@pytest.mark.statsd_send
def test_tcp_transport_through_statsd(settings):
    server = socket.create_server(("127.0.0.1", 0))
    try:
        settings.STATSD_CLIENT = "tcp"
        settings.STATSD_HOST = "127.0.0.1"
        settings.STATSD_PORT = server.getsockname()[1]
        statsd.incr("over.tcp")
        with statsd.pipeline() as pipe:
            pipe.incr("p1")
            pipe.incr("p2")
        server.settimeout(30)
        conn, _ = server.accept()
        with conn:
            assert read_until(conn, 2) == ["over.tcp:1|c", "p1:1|c", "p2:1|c"]
        statsd.reset()
    finally:
        server.close()


def test_tcp_refused_drops_and_backs_off(held_port):
    port = held_port()  # refuses connections, and nothing else can listen there
    transport = TCPTransport("127.0.0.1", port, refresh=0)
    try:
        transport.send("x:1|c")
        transport.send("y:1|c")  # inside the back-off: no second connect attempt
        assert transport.dropped == 2
        assert transport._retry_at > time.monotonic()
    finally:
        transport.close()


def test_tcp_peer_gone_is_swallowed():
    server = socket.create_server(("127.0.0.1", 0))
    transport = TCPTransport("127.0.0.1", server.getsockname()[1], refresh=0)
    try:
        transport.send("first:1|c")
        server.settimeout(30)
        conn, _ = server.accept()
        assert read_until(conn, 1) == ["first:1|c"]
        conn.close()
        server.close()
        for _ in range(50):  # EPIPE / ECONNRESET once the kernel notices
            transport.send("more:1|c")
        assert transport.dropped >= 1
    finally:
        transport.close()
        server.close()


@pytest.mark.statsd_send
def test_unix_transport(tmp_path, settings):
    path = str(tmp_path / "statsd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    try:
        settings.STATSD_CLIENT = "unix"
        settings.STATSD_UNIX_SOCKET = path
        statsd.timing("over.unix", 2)
        server.settimeout(30)
        conn, _ = server.accept()
        with conn:
            assert read_until(conn, 1) == ["over.unix:2.000000|ms"]
        statsd.reset()
    finally:
        server.close()


def test_unix_socket_missing_is_swallowed(tmp_path):
    transport = UnixTransport(str(tmp_path / "absent.sock"))
    transport.send("x:1|c")
    assert transport.dropped == 1
    transport.close()


def ipv6_receiver():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.bind(("::1", 0))
    except OSError:
        sock.close()
        require(False, "no IPv6 loopback (::1) on this machine")
    return sock


@pytest.mark.statsd_send
def test_ipv6(settings):
    sock = ipv6_receiver()
    try:
        settings.STATSD_CLIENT = "udp"
        settings.STATSD_IPV6 = True
        settings.STATSD_HOST = "::1"
        settings.STATSD_PORT = sock.getsockname()[1]
        statsd.incr("over.ipv6")
        sock.settimeout(2)
        assert sock.recv(100) == b"over.ipv6:1|c"
        statsd.reset()
    finally:
        sock.close()


def test_refresh_to_another_address_family(receiver):
    v6 = ipv6_receiver()
    answers = [
        (socket.AF_INET, ("127.0.0.1", receiver.port)),
        (socket.AF_INET6, ("::1", v6.getsockname()[1], 0, 0)),
    ]

    def lookup(host, port, family, socktype):
        fam, address = answers.pop(0)
        return [(fam, socktype, 0, "", address)]

    transport = started(UDPTransport("dual.example", 8125, refresh=0, lookup=lookup))
    try:
        transport.send("v4:1|c")
        assert transport.resolver.resolve() is True  # a new socket of the new family
        transport.send("v6:1|c")
        assert receiver.lines() == ["v4:1|c"]
        v6.settimeout(2)
        assert v6.recv(100) == b"v6:1|c"
    finally:
        transport.close()
        v6.close()


def test_an_ip_address_is_used_at_once_without_a_thread(receiver):
    transport = UDPTransport("127.0.0.1", receiver.port)
    try:
        assert transport.resolver._thread is None
        assert transport.resolver.address == ("127.0.0.1", receiver.port)
        transport.send("first:1|c")  # never dropped for want of an address
        assert receiver.lines() == ["first:1|c"]
    finally:
        transport.close()
