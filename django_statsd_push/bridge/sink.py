"""``PrometheusSink``: the bridge as a sink of the daemon, fed the same snapshots as Carbon.

``statsd-push serve --prometheus-listen HOST:PORT --mapping FILE`` builds one of these
beside the Carbon sink, so one daemon feeds Graphite and Prometheus during a migration.
``statsd-push bridge`` uses the very same object with a short flush interval.

Constructing it loads the mapping (a bad file raises ``MappingError`` naming the line,
before anything listens) and binds the HTTP port (a port in use fails at startup, not
at the first scrape). ``reload(settings)`` re-reads it: the daemon calls that from its
SIGHUP reload, so both commands reload the mapping the way they reload everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from django_statsd_push.bridge.collector import BridgeCollector
from django_statsd_push.bridge.http import DEFAULT_LISTEN, MetricsServer, parse_listen
from django_statsd_push.bridge.mapping import MappingError, load_mapping
from django_statsd_push.bridge.store import DEFAULT_MAX_SERIES, SeriesStore
from django_statsd_push.server.snapshot import Snapshot

if TYPE_CHECKING:
    from django_statsd_push.server.config import Settings

__all__ = ["MappingError", "PrometheusSink"]

log = logging.getLogger(__name__)


class PrometheusSink:
    """Implements the daemon's ``Sink`` protocol (``server/sink.py``).

    ``idle_repeats``: whether the producer re-sends idle series (etsy's default: zero
    counters, unchanged gauges). The store then tells idle from updated by value, for
    TTL expiry; a producer with ``delete_idle_stats`` passes False.

    ``ready_when``: what else ``/-/ready`` waits for; the daemon feeding the sink passes
    its ``running``, as /metrics answers before the statsd ports are bound.
    """

    def __init__(
        self,
        mapping_path: str | Path | None = None,
        listen: str = DEFAULT_LISTEN,
        *,
        max_series: int = DEFAULT_MAX_SERIES,
        idle_repeats: bool = True,
        ready_when: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = SeriesStore(load_mapping(mapping_path), max_series=max_series, idle_repeats=idle_repeats)
        self.collector = BridgeCollector(self.store)
        host, port = parse_listen(listen)
        self._ready_when = ready_when
        self._closed = False
        self.server = MetricsServer(self.collector, host, port, ready=self.ready).start()

    @property
    def address(self) -> tuple[str, int]:
        """Where /metrics really listens (useful with port 0)."""
        return self.server.address

    def ready(self) -> bool:
        return not self._closed and self._ready_when()

    @classmethod
    def for_settings(cls, settings: Settings, running: Callable[[], bool]) -> PrometheusSink:
        """The sink ``statsd-push serve --prometheus-listen`` runs beside Carbon; its address
        is logged (the port it got, when given port 0)."""
        sink = cls(settings.mapping, settings.prometheus_listen or DEFAULT_LISTEN,
                   idle_repeats=not settings.delete_idle_stats, ready_when=running)
        log.info("Prometheus metrics on http://%s:%d/metrics", *sink.address)
        return sink

    def reload(self, settings: Settings) -> None:
        """Replace the mapping with the file's current rules; a bad file raises
        ``MappingError`` (file:line) and the running mapping stays."""
        self.store.replace_mapper(lambda: load_mapping(settings.mapping))
        self.store.idle_repeats = not settings.delete_idle_stats
        log.info("mapping reloaded from %s: %d rules", settings.mapping or "(none)", len(self.store.mapper))

    def flush(self, snapshot: Snapshot) -> None:
        self.store.apply(snapshot)

    def close(self, timeout: float = 0.0) -> None:
        """Stop serving /metrics (at once: nothing waits to be delivered)."""
        if not self._closed:
            self._closed = True
            self.server.close()
