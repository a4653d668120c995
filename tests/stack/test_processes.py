"""Supervision with real child processes: stop order, death reporting, the SIGKILL fallback."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from django_statsd_push.stack.processes import ChildDied, ChildProcess, Supervisor

# Writes its name to `order` on SIGTERM; creates `<name>.ready` once the handler is in place.
ORDERLY = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    name, order, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    def stop(*_):
        with order.open("a") as f:
            f.write(name + "\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    ready.touch()
    while True:
        time.sleep(1)
    """
)

STUBBORN = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(sys.argv[1]).touch()
    while True:
        time.sleep(1)
    """
)


def wait_for(path: Path, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_stop_all_stops_newest_first(tmp_path: Path) -> None:
    order = tmp_path / "order"
    sup = Supervisor(stop_timeout=10)
    for name in ("carbon", "daemon", "app"):
        sup.start(ChildProcess(name, [sys.executable, "-c", ORDERLY, name, str(order), str(tmp_path / f"{name}.ready")],
                               tmp_path / f"{name}.log"))
    for name in ("carbon", "daemon", "app"):
        wait_for(tmp_path / f"{name}.ready")
    sup.check()  # all alive: no exception
    reports: list[str] = []
    codes = sup.stop_all(report=reports.append)
    assert order.read_text().split() == ["app", "daemon", "carbon"]
    assert codes == {"app": 0, "daemon": 0, "carbon": 0}
    assert [r.split()[1] for r in reports] == ["app", "daemon", "carbon"]
    assert sup.started == []


def test_dead_child_is_reported_with_its_status_and_log(tmp_path: Path) -> None:
    sup = Supervisor()
    child = ChildProcess("render", [sys.executable, "-c", "print('cannot open whisper root'); raise SystemExit(3)"],
                         tmp_path / "logs" / "render.log")
    sup.start(child)
    child.popen.wait(30)
    with pytest.raises(ChildDied) as died:
        sup.check()
    assert died.value.code == 3
    assert "render exited unexpectedly (status 3)" in str(died.value)
    assert "cannot open whisper root" in died.value.service.log_tail()
    assert sup.stop_all(report=lambda _: None) == {"render": 3}


def test_child_ignoring_sigterm_is_killed_at_the_deadline(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    sup = Supervisor(stop_timeout=0.5)
    child = ChildProcess("stubborn", [sys.executable, "-c", STUBBORN, str(ready)], tmp_path / "s.log")
    sup.start(child)
    wait_for(ready)
    began = time.monotonic()
    codes = sup.stop_all(report=lambda _: None)
    assert codes == {"stubborn": -9}
    assert time.monotonic() - began < 5
