"""The ``Sink`` interface, and the sinks a ``Settings`` asks for.

A sink receives every flush's ``Snapshot``. The daemon knows sinks only through this
protocol; which ones run is decided by whoever builds the daemon: ``build_sinks`` for
``statsd-push serve`` (Carbon, Graphite events when ``events_url`` is set, and the
Prometheus bridge when ``prometheus_listen`` is set), ``bridge/standalone.py`` for ``statsd-push bridge`` (the Prometheus sink alone).
The bridge is imported only when asked for, so ``serve`` without it needs neither
the bridge's modules nor prometheus_client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from django_statsd_push.server.config import ConfigError
from django_statsd_push.server.graphite_sink import GraphiteSink

if TYPE_CHECKING:
    from django_statsd_push.server.config import Settings
    from django_statsd_push.server.snapshot import Snapshot


@runtime_checkable
class Sink(Protocol):
    """Called from one thread at a time, in order: flushes, reloads, then one close.

    ``flush`` must not block for long: the Carbon sink queues its lines for its own
    writer, the Prometheus sink updates collectors. ``reload`` takes the settings of a
    SIGHUP; a sink that cannot take them (a bad mapping file) raises ``ConfigError``
    and keeps what it had. ``close`` is called once, after the last flush, and returns
    within about ``timeout`` seconds whatever the network does.
    """

    def flush(self, snapshot: Snapshot) -> None: ...

    def reload(self, settings: Settings) -> None: ...

    def close(self, timeout: float) -> None: ...


def build_sinks(settings: Settings, count: Callable[[str, float], None],
                running: Callable[[], bool]) -> list[Sink]:
    """The sinks ``settings`` ask for. ``count`` adds to the daemon's own counters;
    ``running`` tells the Prometheus sink's ``/-/ready`` whether the daemon receives."""
    sinks: list[Sink] = []
    if settings.graphite_enabled:
        sinks.append(GraphiteSink.for_settings(settings, count))
    if settings.events_url:
        from django_statsd_push.server.events_sink import EventsSink

        sinks.append(EventsSink.for_settings(settings, count))
    if settings.prometheus_listen:
        try:
            from django_statsd_push.bridge.sink import PrometheusSink
        except ImportError as exc:
            for sink in sinks:
                sink.close(0)
            raise ConfigError(
                "--prometheus-listen needs the Prometheus bridge and prometheus_client: "
                f"pip install 'django-statsd-push[prometheus]' ({exc})"
            ) from exc
        try:
            sinks.append(PrometheusSink.for_settings(settings, running))
        except BaseException:
            for sink in sinks:
                sink.close(0)
            raise
    return sinks
