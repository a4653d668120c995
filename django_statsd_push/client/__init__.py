"""The Django side's statsd client, in small modules:

``statsd_client``  the ``statsd`` object (pystatsd's API, the fast path, capture)
``batch``          the per-request batch and the functions that make one current
``heads``          the fast path's cache of line heads
``state``          the settings state the client runs with
``resolver``       the background DNS lookup
``transports``     where datagrams go: udp, tcp, unix, null, log, capture

Everything users and hooks need is importable from here::

    from django_statsd_push.client import statsd, batching, current_batch
"""

from django_statsd_push.client.batch import (
    Batch, activate_batch, current_batch, deactivate_batch, pack,
)
from django_statsd_push.client.heads import COUNT_VALUE, HEADS_MAXLEN, TIMING_VALUE, Heads
from django_statsd_push.client.resolver import FIRST_LOOKUP_WAIT, Resolver
from django_statsd_push.client.state import State, build_transport, load_state
from django_statsd_push.client.statsd_client import Pipeline, StatsdClient, batching, statsd
from django_statsd_push.client.transports import (
    CaptureTransport, Captured, LogTransport, NullTransport, Recorder, StreamTransport,
    TCPTransport, Transport, UDPTransport, UnixTransport, make_transport, read_line,
)
from django_statsd_push.client.transports.capture import CAPTURE_MAXLEN
from django_statsd_push.client.transports.stream import (
    STREAM_PACKET_SIZE, STREAM_RETRY_AFTER, STREAM_TIMEOUT,
)

__all__ = [
    "CAPTURE_MAXLEN", "COUNT_VALUE", "FIRST_LOOKUP_WAIT", "HEADS_MAXLEN",
    "STREAM_PACKET_SIZE", "STREAM_RETRY_AFTER", "STREAM_TIMEOUT", "TIMING_VALUE",
    "Batch", "CaptureTransport", "Captured", "Heads", "LogTransport", "NullTransport",
    "Pipeline", "Recorder", "Resolver", "State", "StatsdClient", "StreamTransport",
    "TCPTransport", "Transport", "UDPTransport", "UnixTransport", "activate_batch",
    "batching", "build_transport", "current_batch", "deactivate_batch", "load_state",
    "make_transport", "pack", "read_line", "statsd",
]
