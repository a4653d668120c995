"""Stopping loses nothing: carbon-cache writes its cache out before SIGTERM, and does not
outlive a killed parent."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import whisper

from django_statsd_push.server.carbon_cache import BARRIER_MARKERS, CarbonCache

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_points_sent_right_before_stop_are_on_disk(tmp_path):
    now = int(time.time())
    with CarbonCache(tmp_path / "carbon", first_retention="1s:1h") as carbon:
        with socket.create_connection((carbon.host, carbon.line_port)) as s:
            s.sendall("".join(f"late.m{i} {i} {now}\n" for i in range(1, 51)).encode())
        carbon.stop()
        for i in range(1, 51):
            assert whisper.fetch(str(carbon.whisper_file(f"late.m{i}")), now - 60)[1].count(i) == 1
    assert not (carbon.whisper_dir / "carbon" / "write_barrier").exists()  # the markers' files are gone


@pytest.mark.slow
def test_write_barrier_is_bounded_in_time(tmp_path, caplog):
    with CarbonCache(tmp_path / "carbon") as carbon:
        os.kill(carbon.proc.pid, signal.SIGSTOP)  # accepts connections, writes nothing
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, "django_statsd_push.server.carbon_cache"):
            carbon.stop(timeout=1.0)
        assert time.monotonic() - began < 5
        assert not carbon.running
        assert "did not confirm its writes within 1s" in caplog.text
        assert not carbon.whisper_file(BARRIER_MARKERS[0]).exists()


@pytest.mark.slow
def test_no_barrier_when_carbon_holds_points_back(tmp_path, caplog):
    with CarbonCache(tmp_path / "carbon", settings={"MIN_TIMESTAMP_LAG": "3600"}) as carbon:
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, "django_statsd_push.server.carbon_cache"):
            carbon.stop(timeout=10.0)
        assert time.monotonic() - began < 5  # not the barrier's 10 s
        assert "MIN_TIMESTAMP_LAG = 3600: no write barrier is possible" in caplog.text


CHILD = """
import sys, time
from django_statsd_push.server.carbon_cache import CarbonCache
carbon = CarbonCache(sys.argv[1]).start()
print(carbon.proc.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_carbon_cache_exits_when_its_parent_is_killed(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "carbon")],
                              stdout=subprocess.PIPE, cwd=ROOT, env=env)
    carbon_pid = None
    try:
        carbon_pid = int(parent.stdout.readline())
        assert not gone(carbon_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 15
        while not gone(carbon_pid):
            assert time.monotonic() < deadline, "carbon-cache outlived its killed parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()
        if carbon_pid is not None and not gone(carbon_pid):
            os.kill(carbon_pid, signal.SIGKILL)
