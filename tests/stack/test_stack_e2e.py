"""``statsd-push stack`` end to end: real carbon-cache, daemon, bridge, render API, gunicorn.

Requests to the example app must show up as the request timer's count through the
render API and through the bridge's /metrics; requests sent just before SIGTERM must
still reach the Whisper files (the daemon's last flush, carbon writing its cache out);
and afterwards no child may be left running or holding a port.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from django_statsd_push.stack import health
from django_statsd_push.stack.cli import PORT_FLAGS, build_parser, flag, resolve_ports
from tests.conftest import require_import
from tests.stack.dashboard_page import panel_points, panels

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
FLUSH_MS = 1000


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def processes_with(marker: str) -> list[int]:
    """Pids whose environment carries the test's marker: every child inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class Stack:
    """The launcher as a child of the test, its output read line by line on a thread."""

    def __init__(self, stack_dir: Path, *extra: str) -> None:
        self.dir = stack_dir
        # Held until the test ends (``PortHold``): every part binds its TCP ports with
        # SO_REUSEADDR, nothing else on the machine is given them meanwhile, and the check
        # that no port is still bound after the stack stopped cannot be fooled by one taken
        # since. Not held: the statsd port's UDP twin (running_stack starts again if it is
        # taken), and the numbers a cluster's nodes bind on their own loopback addresses.
        self.holds = contextlib.ExitStack()
        self.ports = {dest: self.holds.enter_context(health.PortHold(HOST, udp=udp)).port
                      for dest, _what, _default, udp in PORT_FLAGS}
        self.marker = uuid.uuid4().hex
        argv = [sys.executable, "-m", "django_statsd_push.cli", "stack", "--dir", str(stack_dir),
                "--flush-interval", str(FLUSH_MS), "--workers", "1", "--ready-timeout", "60", *extra]
        for dest, port in self.ports.items():
            argv += [flag(dest), str(port)]
        env = dict(os.environ, STACK_TEST_MARKER=self.marker, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, text: str, deadline: float) -> None:
        end = time.monotonic() + deadline
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {deadline}s:\n" + "\n".join(self.output)) from None
            if line is None:
                raise AssertionError(f"launcher exited ({self.proc.wait()}) before {text!r}:\n"
                                     + "\n".join(self.output))
            self.output.append(line)
            if text in line:
                return

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.reader.join(5)
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.output.append(line)
        return code


def finish(stack: Stack) -> None:
    if stack.proc.poll() is None:
        stack.proc.kill()
        stack.proc.wait(10)
    stack.proc.stdout.close()
    stack.holds.close()


@contextlib.contextmanager
def running_stack(tmp_path: Path, *extra: str):
    """A running stack on free ports; killed if a test leaves it running."""
    for attempt in range(3):
        running = Stack(tmp_path / f"stack{attempt}", *extra)
        try:
            running.wait_for_line("Ctrl-C stops the stack", 120)
        except AssertionError:
            finish(running)
            # The statsd port's UDP twin is not held: another process may bind it before the
            # launcher's check ("is already in use", status 2) or before the daemon or
            # proxy.js binds it (status 1, its log: "Address already in use", "EADDRINUSE").
            output = "\n".join(running.output)
            if ("already in use" in output or "EADDRINUSE" in output) and attempt < 2:
                continue
            raise
        try:
            yield running
        finally:
            finish(running)
        return


@pytest.fixture
def stack(tmp_path: Path):
    with running_stack(tmp_path) as running:
        yield running


def render_sum(port: int, target: str) -> float:
    query = urllib.parse.urlencode({"target": target, "from": "-10min", "format": "json"})
    status, body = get(f"http://{HOST}:{port}/render?{query}")
    assert status == 200, body
    return sum(v for s in json.loads(body) for v, _ in s["datapoints"] if v is not None)


def prometheus_count(port: int, view: str) -> float:
    """The request timer's _count for one view (names from graphite/statsd-mapping.yml)."""
    status, body = get(f"http://{HOST}:{port}/metrics")
    assert status == 200
    total = 0.0
    for line in body.decode().splitlines():
        m = re.match(r'django_request_duration_seconds_count\{([^}]*)\} (\S+)$', line)
        if m and f'view="{view}"' in m.group(1):
            total += float(m.group(2))
    return total


def poll(check, what: str, deadline: float, stack: Stack) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert stack.proc.poll() is None, "launcher died:\n" + "\n".join(stack.output)
        assert time.monotonic() < end, f"{what} not seen within {deadline}s"
        time.sleep(0.5)


@pytest.mark.slow
def test_requests_flow_to_render_api_and_prometheus_and_survive_shutdown(stack: Stack) -> None:
    ports = stack.ports
    assert f"http://{HOST}:{ports['render_port']}/" in "\n".join(stack.output)
    app = f"http://{HOST}:{ports['app_port']}"

    # Phase 1: the index view's timer count, via the render API and via /metrics.
    sent = 6
    for _ in range(sent):
        assert get(app + "/")[0] == 200
    target = "sumSeries(stats.timers.request.*.GET.count)"
    poll(lambda: render_sum(ports["render_port"], target) >= sent, "request count in the render API", 90, stack)
    poll(lambda: prometheus_count(ports["prometheus_port"], "index") >= sent,
         "request count in the bridge's /metrics", 90, stack)
    # A DogStatsD event sent to the daemon becomes a Graphite event in the render API.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"_e{9,4}:stack e2e|done|#stack-e2e", (HOST, ports["statsd_port"]))
    events_url = f"http://{HOST}:{ports['render_port']}/events/get_data?tags=stack-e2e"
    poll(lambda: [e["what"] for e in json.loads(get(events_url)[1])] == ["stack e2e"],
         "the DogStatsD event in the render API's events", 90, stack)

    # Phase 2: requests right before SIGTERM still reach Whisper (a flush after the app
    # stops, then the daemon and carbon drain), and no earlier point is overwritten.
    late = 4
    for _ in range(late):
        assert get(app + "/cached/")[0] == 200
    code = stack.stop()
    output = "\n".join(stack.output)
    assert code == 0, output
    assert "stopped app" in output and output.index("stopped app") < output.index("stopped daemon") \
        < output.index("stopped carbon-cache"), output

    whisper = require_import("whisper")

    totals = {}
    now = int(time.time()) + 10  # the SIGTERM flush is stamped with its interval's end, maybe ahead
    for path in (stack.dir / "carbon" / "whisper" / "stats" / "timers" / "request").glob("*/GET/count.wsp"):
        (_start, _end, _step), values = whisper.fetch(str(path), now - 600, now, now=now)
        totals[path.parent.parent.name] = sum(v for v in values if v is not None)
    assert (totals.get("index"), totals.get("cached")) == (sent, late), totals

    # Nothing left behind: no process with the marker, no port still bound.
    assert processes_with(stack.marker) == []
    assert [p for p in ports.values() if health.port_in_use(HOST, p)] == []


def test_ports_picked_for_0_are_held_for_the_parts() -> None:
    """No other program is given them until the launcher exits; the parts, which bind
    with SO_REUSEADDR, can bind them (what check_ports tries)."""
    args = build_parser().parse_args([a for dest, *_ in PORT_FLAGS for a in (flag(dest), "0")])
    with contextlib.ExitStack() as holds:
        ports = resolve_ports(args, holds)
        assert len({p.number for p in ports}) == len(PORT_FLAGS)
        for p in ports:
            with socket.socket() as other, pytest.raises(OSError):
                other.bind((HOST, p.number))
        assert health.check_ports(ports) == []


def test_taken_port_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen()
        taken = s.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "django_statsd_push.cli", "stack", "--dir", str(tmp_path / "s"),
             "--render-port", str(taken)] + [a for dest, *_ in PORT_FLAGS if dest != "render_port"
                                             for a in (flag(dest), "0")],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )
    assert result.returncode == 2
    assert f"port {taken} (render API and dashboard, TCP) is already in use" in result.stderr
    assert "--render-port PORT" in result.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_child_dying_stops_the_stack_with_an_error(stack: Stack) -> None:
    (render_pid,) = [pid for pid in processes_with(stack.marker)
                     if b"render" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    os.kill(render_pid, signal.SIGKILL)
    stack.proc.wait(60)  # on its own: the launcher notices the death within a status interval
    code = stack.stop()  # collects the exit status and the rest of the output
    output = "\n".join(stack.output)
    assert code == 1, output
    assert "render exited unexpectedly (signal SIGKILL)" in output
    assert "stopped app" in output and "stopped carbon-cache" in output
    assert processes_with(stack.marker) == []


def test_flush_interval_must_fit_the_whisper_archives(tmp_path: Path, capsys) -> None:
    from django_statsd_push.stack.cli import main

    argv = ["--dir", str(tmp_path / "s"), "--flush-interval", "7000"]
    argv += [a for dest, *_ in PORT_FLAGS for a in (flag(dest), "0")]
    assert main(argv) == 2
    assert "--flush-interval 7000: use whole seconds that divide a minute" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_demo_traffic_fills_every_dashboard_panel(tmp_path: Path) -> None:
    with running_stack(tmp_path, "--demo-traffic", "--traffic-rate", "40") as stack:
        port = stack.ports["render_port"]
        for panel in panels():
            for target in panel["targets"]:
                poll(lambda: render_sum(port, target) > 0, f"{panel['id']}: {target}", 60, stack)
        points = panel_points(HOST, port, tmp_path / "profile")
        # the deploy marker demo-traffic posted at start, and one from the example app's manage.py
        # (STATSD_EVENTS_URL as the stack sets it for the app)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="exampleproject.settings",
                   STATSD_EVENTS_URL=f"http://{HOST}:{port}/events/")
        done = subprocess.run([sys.executable, "manage.py", "statsd_event", "deploy e2e", "--tags", "deploy,web"],
                              cwd=ROOT / "examples", env=env, capture_output=True, text=True, timeout=60)
        assert "recorded" in done.stdout, done.stderr
        status, body = get(f"http://{HOST}:{port}/events/get_data?tags=deploy")
        assert status == 200 and [e["what"] for e in json.loads(body)] == ["demo-traffic started", "deploy e2e"]
        assert stack.stop() == 0
    assert list(points) == [p["id"] for p in panels()]
    assert all(n > 0 for n in points.values()), points
    output = "\n".join(stack.output)
    assert "demo traffic: ~40 req/s" in output
