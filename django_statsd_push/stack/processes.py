"""Child-process supervision for the local stack.

Children run in their own session so the terminal's Ctrl-C reaches only the
launcher: the launcher then stops them one by one in an order that loses no data
(the app stops sending, the daemon flushes once more, carbon writes its cache out).
If each child got SIGINT at the same moment, carbon could exit before the daemon's
last flush reached it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from django_statsd_push.stack.parent_death import die_with_parent


class Service(Protocol):
    """Anything the supervisor can start, watch and stop (a child process, carbon-cache)."""

    name: str

    def start(self) -> None: ...

    def returncode(self) -> int | None:
        """None while running; the exit status once it has died."""

    def stop(self, timeout: float) -> int | None: ...

    def log_tail(self, lines: int = 20) -> str: ...


def tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ChildProcess:
    """One command run as a child, its output appended to a log file in the stack dir."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent,  # no leaked daemons if the launcher is killed
            )

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def stop(self, timeout: float) -> int | None:
        """SIGTERM (each daemon's graceful path), then SIGKILL the whole group at the deadline."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Kill anything left in the child's session too (e.g. gunicorn workers).
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)


def describe_exit(code: int | None) -> str:
    """Popen's negative codes are signals (twistd re-raises SIGTERM after a clean stop)."""
    if code is None:
        return "not started"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


class ChildDied(RuntimeError):
    def __init__(self, service: Service, code: int) -> None:
        self.service = service
        self.code = code
        super().__init__(f"{service.name} exited unexpectedly ({describe_exit(code)})")


class Supervisor:
    """Starts services in order, watches them, and stops them in reverse order."""

    def __init__(self, stop_timeout: float = 20.0) -> None:
        self.started: list[Service] = []
        self.stop_timeout = stop_timeout

    def start(self, service: Service) -> None:
        self.started.append(service)  # before start(): a half-started one is still stopped
        service.start()

    def check(self) -> None:
        """Raise ChildDied for the first started service that is no longer running."""
        for service in self.started:
            code = service.returncode()
            if code is not None:
                raise ChildDied(service, code)

    def stop_all(self, report: Callable[[str], None] = print) -> dict[str, int | None]:
        """Stop newest first: whoever produces data stops before whoever stores it."""
        codes: dict[str, int | None] = {}
        while self.started:
            service = self.started.pop()
            began = time.monotonic()
            codes[service.name] = code = service.stop(self.stop_timeout)
            report(f"stopped {service.name} ({describe_exit(code)}, {time.monotonic() - began:.1f}s)")
        return codes
