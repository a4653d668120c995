"""Keeping what is sent, for tests: ``STATSD_CLIENT = "capture"`` and ``statsd.capture()``.

Why capture at the transport: the client's fast path (cached line heads, see
``client/heads.py``) is what production runs, so a test that records metrics must see
the lines that path writes, not lines made by a slower path switched on for the test.
``statsd.capture()`` puts a :class:`Recorder` in front of whatever transport the
settings chose; it records each line as it is handed to that transport (a request's
lines when its batch is sent) and passes the datagram on unchanged.

Records are read back from the lines the client wrote with :func:`read_line`: the
client knows how it formats a line (pystatsd's ``name:value|type[|@rate]``, plus the
tag format's tags); tests/client/test_roundtrip.py checks the reading against the
daemon's parser.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from django_statsd_push.client.transports.base import Transport

CAPTURE_MAXLEN = 10_000


class Captured(NamedTuple):
    """One metric as sent (see :mod:`django_statsd_push.testing`)."""

    name: str  # as sent, prefix included (tags excluded)
    stat: str  # as sent, without the prefix
    type: str  # c, ms, g, s
    value: str  # pystatsd's text: "1", "12.500000", "+3", "user-42"
    rate: float
    tags: dict[str, str]
    line: str


def read_line(line: str, prefix: str = "") -> Captured:
    """Split one line the client wrote back into its parts.

    ``prefix`` is the rendered ``STATSD_PREFIX`` with its dot (``"app."``), stripped
    from ``name`` to give ``stat``. Names never hold ``:`` (``names`` cleans them), so
    the first ``:`` ends the name whatever a set's value holds.

        >>> read_line("app.cache:1.5|ms|@0.5|#alias:default", "app.")
        Captured(name='app.cache', stat='cache', type='ms', value='1.5', rate=0.5, \
tags={'alias': 'default'}, line='app.cache:1.5|ms|@0.5|#alias:default')
    """
    name, _, rest = line.partition(":")
    value, _, rest = rest.partition("|")
    kind, _, rest = rest.partition("|")
    rate, tags = 1.0, {}
    for field in rest.split("|") if rest else ():
        if field.startswith("@"):
            rate = float(field[1:])
        elif field.startswith("#"):  # DogStatsD tags
            tags.update(tag.split(":", 1) for tag in field[1:].split(",") if ":" in tag)
    name, *graphite_tags = name.split(";")
    tags.update(tag.split("=", 1) for tag in graphite_tags if "=" in tag)
    stat = name[len(prefix):] if prefix and name.startswith(prefix) else name
    return Captured(name, stat, kind, value, rate, tags, line)


class CaptureTransport(Transport):
    """Keeps the last datagrams in memory (``STATSD_CLIENT = "capture"``): nothing leaves."""

    def __init__(self, packet_size: int = 512) -> None:
        self.packet_size = packet_size
        self.datagrams: deque[str] = deque(maxlen=CAPTURE_MAXLEN)

    def send(self, data: str) -> None:
        self.datagrams.append(data)


class Recorder(Transport):
    """In front of the configured transport while ``statsd.capture()`` blocks are open.

    Each datagram is passed on to ``inner`` unchanged (so with ``udp`` it is really
    sent) and each of its lines is appended, as a :class:`Captured`, to every list in
    ``sinks`` (the open capture blocks; the client's own list, shared).
    """

    def __init__(self, inner: Transport, sinks: list[list[Captured]], prefix: str) -> None:
        self.inner, self.sinks, self.prefix = inner, sinks, prefix
        self.packet_size = inner.packet_size

    @property  # type: ignore[override]
    def dropped(self) -> int:  # the configured transport's count
        return self.inner.dropped

    def send(self, data: str) -> None:
        self.inner.send(data)
        records = [read_line(line, self.prefix) for line in data.split("\n")]
        for sink in list(self.sinks):
            sink.extend(records)

    def close(self) -> None:
        self.inner.close()
