"""The one place that knows the STATSD_* settings and their defaults.

Every attribute reads ``django.conf.settings`` when it is accessed, never at import, so
``override_settings`` and late ``settings.configure()`` both work. Values are returned
as the user wrote them: validation is the job of the system checks (``checks.py``),
which can name the setting and the fix; the client falls back to sending nothing when
a value is unusable rather than failing a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

CLIENTS = ("udp", "tcp", "unix", "null", "log", "capture")
HOOKS = ("db", "cache", "models", "migrations", "celery")
TAG_FORMATS = (None, "dogstatsd", "graphite")

T = TypeVar("T")


class _Setting(Generic[T]):
    """One STATSD_* setting and its default, read from Django's settings on each access."""

    def __init__(self, name: str, default: T) -> None:
        self.name, self.default = name, default

    def __get__(self, instance: object, owner: type | None = None) -> T:
        return StatsdSettings.get(self.name, self.default)


class StatsdSettings:
    """Typed, lazily read view of the STATSD_* settings."""

    host: _Setting[str] = _Setting("STATSD_HOST", "localhost")
    port: _Setting[int] = _Setting("STATSD_PORT", 8125)
    prefix: _Setting[str | None] = _Setting("STATSD_PREFIX", None)
    maxudpsize: _Setting[int] = _Setting("STATSD_MAXUDPSIZE", 512)
    ipv6: _Setting[bool] = _Setting("STATSD_IPV6", False)
    client: _Setting[str] = _Setting("STATSD_CLIENT", "udp")
    enabled: _Setting[bool] = _Setting("STATSD_ENABLED", True)
    sample_rate: _Setting[float] = _Setting("STATSD_SAMPLE_RATE", 1.0)
    hooks: _Setting[Sequence[str]] = _Setting("STATSD_HOOKS", ())
    tag_format: _Setting[str | None] = _Setting("STATSD_TAG_FORMAT", None)
    dns_refresh: _Setting[float] = _Setting("STATSD_DNS_REFRESH", 60.0)
    unix_socket: _Setting[str | None] = _Setting("STATSD_UNIX_SOCKET", None)
    export_migrations: _Setting[bool] = _Setting("STATSD_EXPORT_MIGRATIONS", False)
    events_url: _Setting[str | None] = _Setting("STATSD_EVENTS_URL", None)

    @staticmethod
    def get(name: str, default: Any) -> Any:
        from django.conf import settings

        # Outside a configured Django project (a script, a worker without settings)
        # the defaults apply instead of ImproperlyConfigured on the first metric.
        if not settings.configured:
            return default
        return getattr(settings, name, default)


settings = StatsdSettings()
