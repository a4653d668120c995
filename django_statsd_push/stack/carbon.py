"""carbon-cache as one of the stack's supervised services.

The configuration, the process and stopping it without losing points (the write
barrier before SIGTERM) belong to ``stack/carbon_cache.py``; this adapter gives it
the supervisor's start / returncode / stop / log_tail shape.
"""

from __future__ import annotations

from pathlib import Path

from django_statsd_push.stack.carbon_cache import CarbonCache, CarbonCacheError
from django_statsd_push.stack.health import NotReady
from django_statsd_push.stack.processes import tail

DEFAULT_STEP = 10  # the first archive of graphite/storage-schemas.conf


class CarbonService:
    """carbon-cache, or (``carbon`` given) another carbon daemon such as the relay."""

    def __init__(self, root: Path, *, line_port: int = 0, pickle_port: int = 0, query_port: int = 0,
                 step_seconds: int = DEFAULT_STEP, ready_timeout: float, host: str = "127.0.0.1",
                 name: str = "carbon-cache", carbon: CarbonCache | None = None,
                 tagdb_url: str | None = None) -> None:
        # One Whisper point per flush: a finer step wastes space, a coarser one keeps
        # only the last of several flushes in a slot (their counts would be lost).
        first = None if step_seconds == DEFAULT_STEP else f"{step_seconds}s:6h"
        self.carbon = carbon or CarbonCache(root, host=host, line_port=line_port, pickle_port=pickle_port,
                                            query_port=query_port, first_retention=first,
                                            settings={"GRAPHITE_URL": tagdb_url} if tagdb_url else None)
        self.name = name
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

    def stop(self, timeout: float) -> int | None:
        self.carbon.stop(timeout)  # write barrier first: a warning is logged if it fails
        return self.returncode()

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.carbon.log_dir / "console.log", lines)
