"""``STATSD_CLIENT = "null"``: metrics are formatted (and captured) but go nowhere."""

from __future__ import annotations

from django_statsd_push.client.transports.base import Transport


class NullTransport(Transport):
    """Sends nothing; for settings that want the code paths without the network."""
