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
    Batch, activate_batch, current_batch, deactivate_batch,
)
from django_statsd_push.client.heads import COUNT_VALUE, TIMING_VALUE, Heads
from django_statsd_push.client.resolver import FIRST_LOOKUP_WAIT, Resolver
from django_statsd_push.client.state import State, load_state
from django_statsd_push.client.statsd_client import Pipeline, StatsdClient, batching, statsd
from django_statsd_push.client.transports import (
    CaptureTransport, Captured, LogTransport, NullTransport, Recorder, StreamTransport,
    TCPTransport, Transport, UDPTransport, UnixTransport, build_transport, read_line,
)

__all__ = [
    "COUNT_VALUE", "FIRST_LOOKUP_WAIT", "TIMING_VALUE", "Batch", "CaptureTransport",
    "Captured", "Heads", "LogTransport", "NullTransport", "Pipeline", "Recorder",
    "Resolver", "State", "StatsdClient", "StreamTransport", "TCPTransport", "Transport",
    "UDPTransport", "UnixTransport", "activate_batch", "batching", "build_transport",
    "current_batch", "deactivate_batch", "load_state", "read_line", "statsd",
]
