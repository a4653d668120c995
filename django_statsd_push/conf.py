"""The one place that knows the STATSD_* settings and their defaults.

Every property reads ``django.conf.settings`` when it is accessed, never at import, so
``override_settings`` and late ``settings.configure()`` both work. Values are returned
as the user wrote them: validation is the job of the system checks (``checks.py``),
which can name the setting and the fix; the client falls back to sending nothing when
a value is unusable rather than failing a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CLIENTS = ("udp", "tcp", "unix", "null", "log", "capture")
HOOKS = ("db", "cache", "models", "migrations", "celery")
TAG_FORMATS = (None, "dogstatsd", "graphite")


class StatsdSettings:
    """Typed, lazily read view of the STATSD_* settings."""

    @staticmethod
    def get(name: str, default: Any) -> Any:
        from django.conf import settings

        # Outside a configured Django project (a script, a worker without settings)
        # the defaults apply instead of ImproperlyConfigured on the first metric.
        if not settings.configured:
            return default
        return getattr(settings, name, default)

    @property
    def host(self) -> str:
        return self.get("STATSD_HOST", "localhost")

    @property
    def port(self) -> int:
        return self.get("STATSD_PORT", 8125)

    @property
    def prefix(self) -> str | None:
        return self.get("STATSD_PREFIX", None)

    @property
    def maxudpsize(self) -> int:
        return self.get("STATSD_MAXUDPSIZE", 512)

    @property
    def ipv6(self) -> bool:
        return self.get("STATSD_IPV6", False)

    @property
    def client(self) -> str:
        return self.get("STATSD_CLIENT", "udp")

    @property
    def enabled(self) -> bool:
        return self.get("STATSD_ENABLED", True)

    @property
    def sample_rate(self) -> float:
        return self.get("STATSD_SAMPLE_RATE", 1.0)

    @property
    def hooks(self) -> Sequence[str]:
        return self.get("STATSD_HOOKS", ())

    @property
    def tag_format(self) -> str | None:
        return self.get("STATSD_TAG_FORMAT", None)

    @property
    def dns_refresh(self) -> float:
        return self.get("STATSD_DNS_REFRESH", 60.0)

    @property
    def unix_socket(self) -> str | None:
        return self.get("STATSD_UNIX_SOCKET", None)

    @property
    def export_migrations(self) -> bool:
        return self.get("STATSD_EXPORT_MIGRATIONS", False)


settings = StatsdSettings()
