"""``STATSD_CLIENT = "log"``: each datagram to the ``django_statsd_push`` logger."""

from __future__ import annotations

import logging

from django_statsd_push.client.transports.base import Transport

logger = logging.getLogger("django_statsd_push")


class LogTransport(Transport):
    """Logs each datagram at INFO: a development aid, to see metrics without a daemon."""

    def send(self, data: str) -> None:
        logger.info("statsd: %s", data)
