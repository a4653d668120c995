"""``statsd-push bridge`` without a Carbon side: the daemon with only the Prometheus sink.

statsd_exporter updates its series on every event; here the daemon itself is reused as
it is (its UDP/TCP listeners, ``server.protocol`` parsing, the ``Aggregator``, the
flusher on a deadline) with Carbon off and a :class:`PrometheusSink` as its only sink,
flushed every ``flush_interval`` (1 s by default). One parser and one aggregation serve
both products, the per-event cost is the daemon's (a dict update), and the only price
is that /metrics lags input by at most one flush interval, far below any scrape
interval. The daemon deletes idle series after each flush (etsy's
``deleteIdleStats``), so every snapshot entry is a real update and TTL expiry is exact,
and its parser runs with statsd_exporter's rules (``protocol.EXPORTER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django_statsd_push.bridge.http import DEFAULT_LISTEN
from django_statsd_push.bridge.store import DEFAULT_MAX_SERIES
from django_statsd_push.bridge.sink import PrometheusSink
from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.events_sink import EventsSink

__all__ = ["DEFAULT_FLUSH_INTERVAL", "StandaloneBridge"]

DEFAULT_FLUSH_INTERVAL = 1.0  # seconds


class StandaloneBridge:
    """Daemon (statsd in) + :class:`PrometheusSink` (/metrics out); port 0 picks a free port.

    The daemon's etsy management interface comes along (``mgmt_port``, 0 by default:
    an ephemeral loopback port, so the bridge never fights a daemon for 8126).
    """

    def __init__(
        self,
        mapping_path: str | Path | None = None,
        listen: str = DEFAULT_LISTEN,
        statsd_host: str = "127.0.0.1",
        statsd_port: int = 9125,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_series: int = DEFAULT_MAX_SERIES,
        mgmt_port: int = 0,
        origin_tags: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        """``options``: more daemon ``Settings`` (``unix_dgram_path``, ``unix_stream_path``,
        ``unix_socket_mode``, ``unix_socket_group``, ``events_url``)."""
        settings = Settings(
            host=statsd_host,
            port=statsd_port,
            mgmt_host=statsd_host,
            mgmt_port=mgmt_port,
            flush_interval_ms=flush_interval * 1000,
            graphite_enabled=False,
            delete_idle_stats=True,
            exporter_rules=True,  # lines read as statsd_exporter reads them
            origin_tags=origin_tags,
            mapping=None if mapping_path is None else str(mapping_path),  # re-read on reload
            **(options or {}),
        )
        settings.validate()
        self.sink = PrometheusSink(settings.mapping, listen, max_series=max_series, idle_repeats=False,
                                   ready_when=lambda: hasattr(self, "daemon") and self.daemon.running)
        self.daemon = Daemon(settings, sinks=[self.sink])  # nothing bound before start()
        if settings.events_url:
            self.daemon.sinks.append(EventsSink.for_settings(settings, self.daemon.aggregator.count))

    @property
    def statsd_address(self) -> tuple[str, int]:
        assert self.daemon.udp is not None, "start() first"
        host, port = self.daemon.udp.address
        return str(host), int(port)

    @property
    def http_address(self) -> tuple[str, int]:
        return self.sink.address

    @property
    def aggregator(self):  # noqa: ANN201 - the daemon's Aggregator, for tests and the bench
        return self.daemon.aggregator

    def start(self) -> StandaloneBridge:
        self.daemon.start()  # closes its sinks if a listener cannot bind
        return self

    def close(self) -> None:
        """Stop receiving, flush once more, stop serving (the daemon closes its sinks)."""
        self.daemon.stop()

    def __enter__(self) -> StandaloneBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
