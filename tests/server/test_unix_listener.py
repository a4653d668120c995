"""The Unix socket inputs of the daemon, in process: socket files (mode, group, stale,
live, removal), the same limits and bad-line counting as UDP/TCP, and reload."""

from __future__ import annotations

import grp
import os
import socket
import stat
import time

import pytest

from django_statsd_push.server.config import ConfigError, Settings
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.unix_listener import UnixDatagramListener

from tests.conftest import require

from .helpers import mgmt, wait_received


def daemon(short_dir: str, **options) -> Daemon:
    settings = Settings(port=0, mgmt_port=0, graphite_enabled=False, flush_interval_ms=3_600_000,
                        unix_dgram_path=os.path.join(short_dir, "d.sock"),
                        unix_stream_path=os.path.join(short_dir, "s.sock"), **options)
    settings.validate()
    return Daemon(settings)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def send_dgram(path: str, *packets: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(path)
        for packet in packets:
            s.send(packet)


def send_stream(path: str, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        s.sendall(data)


def test_both_sockets_feed_the_aggregator_and_files_go_at_stop(short_dir):
    with daemon(short_dir) as d:
        dgram, stream = d.settings.unix_dgram_path, d.settings.unix_stream_path
        send_dgram(dgram, b"dg.hits:2|c\ndg.time:5|ms", b"dg.hits:3|c|#env:prod")
        send_stream(stream, b"st.hits:4|c\nst.gauge:7|g\n")
        wait_received(d, 5)
        counters = mgmt(d.mgmt_port, "counters")
        assert "'dg.hits': 2" in counters and "'st.hits': 4" in counters, counters
        assert d.status()["messages.packets_received"] == 3
    assert not os.path.exists(dgram) and not os.path.exists(stream)


def test_default_mode_is_0660_and_the_mode_and_group_settings_apply(short_dir):
    with daemon(short_dir) as d:
        for path in (d.settings.unix_dgram_path, d.settings.unix_stream_path):
            st = os.stat(path)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o660
    groups = [g for g in grp.getgrall() if g.gr_gid != os.getgid()]
    if os.geteuid() != 0 or not groups:
        group = str(os.getgid())  # a user may always give a file its own group
        want_gid = os.getgid()
    else:
        group, want_gid = groups[0].gr_name, groups[0].gr_gid  # by name, another group
    with daemon(short_dir, unix_socket_mode=0o600, unix_socket_group=group) as d:
        for path in (d.settings.unix_dgram_path, d.settings.unix_stream_path):
            st = os.stat(path)
            assert stat.S_IMODE(st.st_mode) == 0o600
            assert st.st_gid == want_gid


def test_unknown_group_is_an_error_naming_the_setting_and_binds_nothing(short_dir):
    d = daemon(short_dir, unix_socket_group="no-such-group-here")
    with pytest.raises(ConfigError, match="unix_socket_group"):
        d.start()
    assert os.listdir(short_dir) == []


def test_stale_socket_file_is_replaced(short_dir, caplog):
    path = os.path.join(short_dir, "d.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody reads it: what a killed daemon leaves
    with pytest.raises(ConnectionRefusedError):
        send_dgram(path, b"x:1|c")
    caplog.set_level("INFO", "django_statsd_push.server.unix_listener")
    with daemon(short_dir) as d:
        send_dgram(path, b"after.stale:1|c")
        wait_received(d, 1)
    assert f"replacing the stale socket file {path}" in caplog.text


def test_live_socket_and_other_files_are_not_replaced(short_dir):
    path = os.path.join(short_dir, "d.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as live:
        live.bind(path)
        with pytest.raises(OSError, match="in use by another process"):
            UnixDatagramListener(path, lambda data: None)
        assert os.path.exists(path)  # still the other process's
    os.unlink(path)
    with open(path, "w") as f:
        f.write("not a socket")
    with pytest.raises(OSError, match="is not a socket"):
        daemon(short_dir).start()
    with open(path) as f:
        assert f.read() == "not a socket"
    assert not os.path.exists(os.path.join(short_dir, "s.sock"))  # nothing left half-started


def test_the_file_of_a_successor_is_not_removed(short_dir):
    d = daemon(short_dir).start()
    path = d.settings.unix_dgram_path
    os.unlink(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as successor:
        successor.bind(path)
        d.stop()
        assert os.path.exists(path)


def test_limits_and_bad_lines_count_as_over_udp_and_tcp(short_dir):
    with daemon(short_dir, max_packet_size=100) as d:
        dgram, stream = d.settings.unix_dgram_path, d.settings.unix_stream_path
        send_dgram(dgram, b"big:1|c\n" + b"x" * 200, b"bad line\nok.d:1|c")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(stream)
            s.sendall(b"y" * 300)  # no newline within the limit: dropped, counted
            wait_for(lambda: d.aggregator.internal.get("lines_too_long") == 1)
            s.sendall(b"\nok.s:1|c\nbad\n")
            wait_received(d, 2)
        wait_for(lambda: d.aggregator.internal.get("packets_too_large") == 1)
        wait_for(lambda: d.status()["messages.bad_lines_seen"] == 2)
        counters = mgmt(d.mgmt_port, "counters")
        assert "'ok.d': 1" in counters and "'ok.s': 1" in counters and "big" not in counters


def test_reload_applies_the_packet_limit_to_unix_inputs(short_dir):
    with daemon(short_dir, max_packet_size=100) as d:
        new = Settings(**{**vars(d.settings), "max_packet_size": 1000})
        d.reload(new)
        send_dgram(d.settings.unix_dgram_path, b"long.name:1|c\n" + b"z" * 500)
        wait_received(d, 1)
        assert d.aggregator.internal.get("packets_too_large") is None


def test_a_short_kernel_datagram_queue_is_named_in_a_warning(short_dir, caplog):
    from django_statsd_push.server import unix_listener

    length = unix_listener.datagram_queue_length()
    require(length is not None, f"no {unix_listener.QLEN_SYSCTL} (not Linux)")
    listener = UnixDatagramListener(os.path.join(short_dir, "d.sock"), lambda data: None)
    listener.stop()
    warned = "sysctl -w net.unix.max_dgram_qlen=512" in caplog.text
    assert warned == (length < unix_listener.QLEN_WANTED), caplog.text


@pytest.mark.parametrize("name", ["missing-dir/d.sock", "x" * 120])
def test_a_path_that_cannot_be_bound_is_named(short_dir, name):
    path = os.path.join(short_dir, name)
    with pytest.raises(OSError, match=f"cannot bind the Unix socket {path}"):
        UnixDatagramListener(path, lambda data: None)


def test_toml_keys_and_sighup_needs_a_restart(short_dir, tmp_path, caplog):
    config = tmp_path / "statsd.toml"
    config.write_text(f'unix_dgram_path = "{short_dir}/d.sock"\nunix_socket_mode = 0o640\n'
                      'events_url = "http://127.0.0.1:1/events/"\n')
    settings = Settings.from_file(config)
    assert (settings.unix_dgram_path, settings.unix_socket_mode) == (f"{short_dir}/d.sock", 0o640)
    with Daemon(Settings(**{**vars(settings), "port": 0, "mgmt_port": 0, "graphite_enabled": False})) as d:
        assert stat.S_IMODE(os.stat(f"{short_dir}/d.sock").st_mode) == 0o640
        moved = Settings(**{**vars(d.settings), "unix_dgram_path": f"{short_dir}/other.sock"})
        d.reload(moved)
        assert d.settings.unix_dgram_path == f"{short_dir}/d.sock"
        assert "unix_dgram_path changed to" in caplog.text and "needs a restart" in caplog.text
        assert not os.path.exists(f"{short_dir}/other.sock")


def framed(*packets: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "little") + p for p in packets)


def test_length_prefixed_packets_on_the_stream_socket(short_dir):
    with daemon(short_dir, max_packet_size=100) as d:
        stream = d.settings.unix_stream_path
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(stream)
            data = framed(b"f.a:1|c\nf.b:2|c", b"f.a:3|c\n", b"bad")
            s.sendall(data[:6])  # a packet cut across writes waits for its end
            s.sendall(data[6:])
            wait_received(d, 3)
            assert d.status()["messages.packets_received"] == 3
            s.sendall(framed(b"x" * 101))  # over max_packet_size: counted, the connection closed
            assert s.recv(1) == b""
        wait_for(lambda: d.status()["messages.bad_lines_seen"] == 1)
        assert d.aggregator.internal.get("packets_too_large") == 1
        counters = mgmt(d.mgmt_port, "counters")
        assert "'f.a': 4" in counters and "'f.b': 2" in counters, counters
        send_stream(stream, b"ab")  # text shorter than a prefix: read as text
        send_stream(stream, b"t.c:1|c\n")
        wait_received(d, 4)
