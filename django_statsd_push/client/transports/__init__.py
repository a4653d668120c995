"""Where a formatted datagram goes: one module per ``STATSD_CLIENT`` value.

:func:`make_transport` turns checked settings into one of them; each never raises on
send and counts what it could not send in ``dropped``.
"""

from __future__ import annotations

from django_statsd_push.client.transports.base import Transport
from django_statsd_push.client.transports.capture import (
    CaptureTransport, Captured, Recorder, read_line,
)
from django_statsd_push.client.transports.log import LogTransport
from django_statsd_push.client.transports.null import NullTransport
from django_statsd_push.client.transports.stream import StreamTransport
from django_statsd_push.client.transports.tcp import TCPTransport
from django_statsd_push.client.transports.udp import UDPTransport
from django_statsd_push.client.transports.unix import UnixTransport

__all__ = [
    "CaptureTransport", "Captured", "LogTransport", "NullTransport", "Recorder",
    "StreamTransport", "TCPTransport", "Transport", "UDPTransport", "UnixTransport",
    "make_transport", "read_line",
]


def make_transport(
    kind: str, host: str, port: int, ipv6: bool, packet_size: int, dns_refresh: float,
    unix_socket: str | None,
) -> Transport:
    """The transport for validated settings (``STATSD_CLIENT`` is ``kind``)."""
    if kind == "udp":
        return UDPTransport(host, port, ipv6, packet_size, dns_refresh)
    if kind == "tcp":
        return TCPTransport(host, port, ipv6, dns_refresh)
    if kind == "unix":
        return UnixTransport(unix_socket or "")
    if kind == "log":
        return LogTransport()
    if kind == "capture":
        return CaptureTransport(packet_size)
    return NullTransport()
