"""The Carbon sink: each snapshot formatted as etsy's graphite backend does, queued for Carbon.

Apart from the formatting (``graphite.py``, pure) because this is the part with state
and settings: the ``CarbonClient`` it writes through, etsy's ``graphiteStats`` about
past writes, and what a SIGHUP changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from django_statsd_push.server.carbon_client import CarbonClient
from django_statsd_push.server.config import ConfigError
from django_statsd_push.server.gc_pause import paused_gc
from django_statsd_push.server.graphite import GaugeHistory, GraphiteConfig, format_snapshot
from django_statsd_push.server.js import js_round, js_str
from django_statsd_push.server.snapshot import Snapshot

if TYPE_CHECKING:
    from django_statsd_push.server.config import Settings


class LineWriter(Protocol):
    """Where the sink's lines go: a ``CarbonClient`` (tests use a list)."""

    last_written: int  # unix time of the last successful write to Carbon (0: never)
    last_failed: int  # ... of the last failed one (0: never)

    def send(self, text: list[str]) -> None: ...  # plaintext pieces of whole lines

    def configure(self, host: str, port: int, protocol: str, max_lines: int, reconnect_max: float) -> None: ...

    def close(self, timeout: float) -> None: ...


class GraphiteSink:
    """The Carbon ``Sink``: formats each snapshot and queues it on a ``CarbonClient``.

    Also writes etsy's ``graphiteStats`` lines, which describe the *previous* flushes as
    in etsy 0.9's graphite backend: ``last_flush`` is the time of the last successful
    write to Carbon (the start time before the first), ``last_exception`` of the last
    failed one (0 if none), ``flush_time`` and ``flush_length`` the last flush's.
    """

    def __init__(self, writer: LineWriter, config: GraphiteConfig | None = None,
                 count: Callable[[str, float], None] | None = None) -> None:
        self.writer = writer
        self.config = config or GraphiteConfig()
        self.count = count  # the aggregator's ``count`` for names_rejected, tags_dropped
        self.started = js_round(time.time())
        self.flush_time = 0
        self.flush_length = 0
        self.gauge_history = GaugeHistory()

    @classmethod
    def for_settings(cls, settings: Settings, count: Callable[[str, float], None]) -> GraphiteSink:
        """The sink ``statsd-push serve`` runs: writing to Carbon through a ``CarbonClient``.

        Formatting a flush needs NumPy (timers and values are computed as columns):
        without it this is a ``ConfigError`` naming the extra, at start, not a failure
        at the first flush.
        """
        try:
            import numpy  # noqa: F401
        except ImportError as exc:
            raise ConfigError("writing to Carbon needs numpy: pip install 'django-statsd-push[server]' "
                              f"(or run with --no-graphite) ({exc})") from exc
        client = CarbonClient(**settings.carbon_options(), on_drop=count, protect=settings.prefix_stats)
        return cls(client, settings.graphite_config(), count)

    @property
    def last_flush(self) -> int:
        return self.writer.last_written or self.started

    @property
    def last_exception(self) -> int:
        return self.writer.last_failed

    def _rejected(self, name: str) -> None:
        if self.count is not None:
            self.count("names_rejected", 1)

    def _dropped_tag(self, tag: str) -> None:
        if self.count is not None:
            self.count("tags_dropped", 1)

    def flush(self, snapshot: Snapshot) -> None:
        with paused_gc():  # see gc_pause.py: no cycles here, and the collector doubled the time
            text = format_snapshot(snapshot, self.config, self._rejected, self.gauge_history, self._dropped_tag)
        prefix = snapshot.prefix_stats
        ns = self.config.namespaces["global"]
        ts = js_round(snapshot.timestamp)  # etsy: the time Carbon accepted the connection
        base = ".".join([*ns, prefix, "graphiteStats"])
        suffix = self.config.suffix
        text.append("".join(f"{base}.{stat}{suffix} {js_str(value)} {ts}\n" for stat, value in (
            ("last_exception", self.last_exception), ("last_flush", self.last_flush),
            ("flush_time", self.flush_time), ("flush_length", self.flush_length))))
        started = time.monotonic()
        self.writer.send(text)
        self.flush_time = js_round((time.monotonic() - started) * 1000)
        self.flush_length = sum(map(len, text))  # etsy: the length of the text it wrote

    def reload(self, settings: Settings) -> None:
        config = settings.graphite_config()
        self.writer.configure(**settings.carbon_options())
        self.config = config

    def close(self, timeout: float = 5.0) -> None:
        self.writer.close(timeout)
