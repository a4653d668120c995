"""carbon-cache as one of the stack's supervised services, stopped without losing points.

The configuration and the process itself belong to ``server/carbon_cache.py`` (the one
place that writes a carbon config); this adapter gives it the supervisor's
start / returncode / stop / log_tail shape and adds a write barrier before SIGTERM.

Why the barrier: carbon-cache's writer thread drains its cache in a loop and checks
``reactor.running`` between rounds, so on SIGTERM whatever arrived since the last
round (the daemon's last flush, typically) is dropped, never written. The barrier
sends two marker points through the line port: with the ``sorted`` (or ``naive``)
write strategy of graphite/carbon.conf a round works through the metrics present when
it began, so once the second marker (sent after the first was written) is on disk,
every point that arrived before the first one is on disk too.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

from django_statsd_push.server.carbon_cache import CarbonCache, CarbonCacheError
from django_statsd_push.stack.health import NotReady
from django_statsd_push.stack.processes import tail

DEFAULT_STEP = 10  # the first archive of graphite/storage-schemas.conf
MARKERS = ("carbon.stack.write_barrier.first", "carbon.stack.write_barrier.second")


def point_written(path: Path, value: float, since: int) -> bool:
    import whisper  # carbon's own dependency, so present wherever carbon-cache runs

    try:
        _, values = whisper.fetch(str(path), since - 120)
    except (OSError, whisper.WhisperException):
        return False
    return value in values


class CarbonService:
    name = "carbon-cache"

    def __init__(self, root: Path, *, line_port: int, pickle_port: int, query_port: int,
                 step_seconds: int, ready_timeout: float) -> None:
        # One Whisper point per flush: a finer step wastes space, a coarser one keeps
        # only the last of several flushes in a slot (their counts would be lost).
        first = None if step_seconds == DEFAULT_STEP else f"{step_seconds}s:6h"
        self.carbon = CarbonCache(root, line_port=line_port, pickle_port=pickle_port,
                                  query_port=query_port, first_retention=first)
        self.ready_timeout = ready_timeout

    @property
    def whisper_dir(self) -> Path:
        return self.carbon.whisper_dir

    def start(self) -> None:
        try:
            self.carbon.start(timeout=self.ready_timeout)
        except CarbonCacheError as e:  # its message already ends with carbon's output
            raise NotReady(str(e)) from None

    def returncode(self) -> int | None:
        proc = self.carbon.proc
        return None if proc is None else proc.poll()

    def write_barrier(self, deadline_s: float) -> bool:
        """Return once every point carbon received before the call is in Whisper (or False)."""
        end = time.monotonic() + deadline_s
        for metric in MARKERS:
            value = float(random.randrange(1, 1_000_000))
            now = int(time.time())
            try:
                with socket.create_connection((self.carbon.host, self.carbon.line_port), timeout=2) as s:
                    s.sendall(f"{metric} {value:g} {now}\n".encode())
            except OSError:
                return False
            path = self.carbon.whisper_file(metric)
            while not point_written(path, value, now):
                if time.monotonic() > end or self.returncode() is not None:
                    return False
                time.sleep(0.05)
        return True

    def stop(self, timeout: float) -> int | None:
        if self.returncode() is None and not self.write_barrier(timeout):
            print(f"warning: carbon-cache did not confirm its last writes within {timeout:g}s; "
                  "points still in its cache may be lost", flush=True)
        self.carbon.stop(timeout)
        return self.returncode()

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.carbon.log_dir / "console.log", lines)
