"""The ``statsd`` object: pystatsd's API, configured from settings on first use.

``statsd`` is a :class:`StatsdClient`, a subclass of pystatsd's ``StatsClientBase``:
pystatsd formats every line (``name:value|type[|@rate]``); this module only decides the
name (via :mod:`django_statsd_push.names`), where the line goes (the request's batch or
the transport), and when. It relies on pystatsd 4's private hooks (``_prepare``,
``_send_stat``, ``_after``, ``_maxudpsize``, the packing ``Pipeline``); setup.cfg pins
``statsd<5`` for that reason.

Fire-and-forget: no method of ``statsd`` raises or blocks on the network. A host that
does not resolve, a refused port or a full socket buffer drop the datagram and count it
in ``statsd.transport.dropped``; a bad setting is logged by name, turns metrics off and
counts each refused metric there too (the system checks name it before that).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from statsd.client.base import StatsClientBase
from statsd.client.udp import Pipeline as _PackingPipeline

from django_statsd_push import names
from django_statsd_push.client.batch import (
    Batch, activate_batch, current_batch, deactivate_batch, pack,
)
from django_statsd_push.client.heads import COUNT_VALUE, STAT_TYPES, TIMING_VALUE, Heads
from django_statsd_push.client.state import State, load_state
from django_statsd_push.client.transports import Captured, Recorder, Transport

logger = logging.getLogger("django_statsd_push")

_render = names.render
_format = StatsClientBase._prepare  # pystatsd's line formatting (and sampling)
_ONE = 1  # ``count is _ONE``: exactly the int 1 (True == 1 but formats as "True")


def _dropped(kind: str, value: Any, stat: Any) -> None:
    logger.debug("statsd: bad %s value %r for %r dropped", kind, value, stat)


class _NamedPrepare:
    """Shared by the client and its pipelines: names, tags, sample rate, never raising."""

    _prefix = None  # pystatsd must not prefix: names.render does
    _root: StatsdClient

    # pystatsd formats (``"%s|c" % count``, ``-count``) or compares (gauge) the value
    # before _prepare runs, so a bad one raises there: each method drops it instead.
    # Spelled out rather than generated: a generic *args wrapper measured +200 ns.
    def timing(self, stat: Any, delta: Any, rate: float = 1) -> None:
        try:
            StatsClientBase.timing(self, stat, delta, rate)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            _dropped("timing", delta, stat)

    def incr(self, stat: Any, count: Any = 1, rate: float = 1) -> None:
        try:
            StatsClientBase.incr(self, stat, count, rate)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            _dropped("incr", count, stat)

    def decr(self, stat: Any, count: Any = 1, rate: float = 1) -> None:
        try:
            StatsClientBase.decr(self, stat, count, rate)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            _dropped("decr", count, stat)

    def gauge(self, stat: Any, value: Any, rate: float = 1, delta: bool = False) -> None:
        try:
            StatsClientBase.gauge(self, stat, value, rate, delta)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            _dropped("gauge", value, stat)

    def set(self, stat: Any, value: Any, rate: float = 1) -> None:
        try:
            StatsClientBase.set(self, stat, value, rate)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            _dropped("set", value, stat)

    def _prepare(self, stat: Any, value: str, rate: float) -> str | None:
        # Every line off the fast path, from the client or a pipeline, passes here: the
        # one place that guarantees a bad name or rate never raises to the caller.
        try:
            state = self._root._state or self._root.state
            if not state.enabled:
                if state.error is not None:  # refused because of a bad setting: counted
                    state.transport.dropped += 1
                return None
            if state.sample_rate != 1:
                rate = rate * state.sample_rate
            if not isinstance(stat, STAT_TYPES):
                stat = str(stat)
            name, tail, _ = _render(stat, state.prefix, state.tag_format)
            line = _format(self, name, value, rate)
            if line is None:  # sampled out
                return None
            return line + tail if tail else line
        except Exception:
            logger.debug("statsd: metric %r dropped", stat, exc_info=True)
            return None


class Pipeline(_NamedPrepare, _PackingPipeline):
    """pystatsd's pipeline (lines packed up to the packet size), with our naming.

        >>> with statsd.pipeline() as pipe:      # sent as one datagram at the end
        ...     pipe.incr("orders")
        ...     pipe.timing("checkout", 120)
    """

    def __init__(self, client: StatsdClient | Pipeline) -> None:
        self._root = client._root
        super().__init__(client)


class StatsdClient(_NamedPrepare, StatsClientBase):
    """pystatsd's API, configured from settings on first use, batching inside requests,
    never raising. Use the shared instance:

        >>> from django_statsd_push import statsd
        >>> statsd.incr("signups")
        >>> statsd.timing("payment.gateway", 12.5)     # milliseconds
        >>> with statsd.timer("report.render"):
        ...     render()

    ``statsd.fast`` is the settings state while the fast path is on (metrics enabled,
    no ``STATSD_SAMPLE_RATE``), else None; the middleware builds its per-route lines
    from ``statsd.fast.heads`` (see ``client/heads.py``).
    """

    def __init__(self) -> None:
        self._root = self
        self._state: State | None = None
        # The current state's heads while every line may take the fast path, else
        # None; ``fast`` is the state they belong to. Changed under the lock.
        self._heads: Heads | None = None
        self.fast: State | None = None
        self._lock = threading.Lock()
        self._captures: list[list[Captured]] = []  # the open capture() blocks' records
        self._in_process = False  # network transports replaced by capture (pytest)
        _clients.add(self)

    # The fast path: a metric with a known name and rate 1 is one concatenation of
    # pystatsd's value text between the name's cached head and tail, then an append to
    # the request's batch (or a send). Anything else (first use of a name, a sample
    # rate, a timedelta) goes through pystatsd's methods and _prepare, which give the
    # same line. timing and incr repeat their last lines on purpose: one shared helper
    # measured +35 ns a metric (incr 128 -> 167 ns).

    def timing(self, stat: Any, delta: Any, rate: float = 1) -> None:
        heads = self._heads
        if heads is not None and rate == 1:
            try:
                head, tail, _ = heads[stat]
                line = head + TIMING_VALUE % delta + tail
            except Exception:
                pass
            else:
                batch = current_batch()
                if batch is None:
                    self._send(line)
                else:
                    batch.lines.append(line)
                return
        _NamedPrepare.timing(self, stat, delta, rate)

    def incr(self, stat: Any, count: Any = 1, rate: float = 1) -> None:
        heads = self._heads
        if heads is not None and rate == 1:
            try:
                head, tail, line = heads[stat]
                if count is not _ONE:
                    line = head + COUNT_VALUE % count + tail
            except Exception:
                pass
            else:
                batch = current_batch()
                if batch is None:
                    self._send(line)
                else:
                    batch.lines.append(line)
                return
        _NamedPrepare.incr(self, stat, count, rate)

    # configuration

    @property
    def state(self) -> State:
        """The settings state, read on first use and after each reset."""
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    _watch_settings_and_forks()
                    self._set_state(load_state(self._in_process))
                state = self._state
        return state  # type: ignore[return-value]

    def _set_state(self, state: State | None) -> None:
        """Swap the state and the fast path with it (call with the lock held)."""
        if state is not None:
            transport = state.transport
            if self._captures and not isinstance(transport, Recorder):
                recorder = Recorder(transport, self._captures, state.rendered_prefix)
                state = state._replace(transport=recorder)
            elif isinstance(transport, Recorder) and not self._captures:
                state = state._replace(transport=transport.inner)
        self._state = state
        self.fast = state if state is not None and state.fast else None
        self._heads = self.fast.heads if self.fast is not None else None

    @property
    def transport(self) -> Transport:
        """Where datagrams go; ``statsd.transport.dropped`` counts what was not sent."""
        transport = self.state.transport
        return transport.inner if isinstance(transport, Recorder) else transport

    @property
    def _maxudpsize(self) -> int:  # read by pystatsd's packing pipeline
        return self.state.transport.packet_size

    def reset(self) -> None:
        """Forget the configuration (and close the socket); the next metric re-reads it."""
        with self._lock:
            state = self._state
            self._set_state(None)
        if state is not None:
            state.transport.close()

    close = reset

    def keep_in_process(self, on: bool = True) -> None:
        """Replace network transports (udp, tcp, unix) by ``capture`` until called with
        False, unless ``STATSD_PYTEST_SEND`` is True. The pytest plugin turns it on for
        every test not marked ``statsd_send``.
        """
        with self._lock:
            self._in_process = on
        self.reset()

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held by another thread at the fork.
        self._lock = threading.Lock()
        self.reset()

    # sending

    def _send_stat(self, stat: Any, value: str, rate: float) -> None:
        line = self._prepare(stat, value, rate)
        if line is not None:
            self._after(line)

    def _after(self, data: str) -> None:
        batch = current_batch()
        if batch is not None:
            batch.lines.append(data)
        else:
            self._send(data)

    def _send(self, data: str) -> None:
        (self._state or self.state).transport.send(data)

    def pipeline(self) -> Pipeline:
        return Pipeline(self)

    def send_batch(self, batch: Batch) -> None:
        """Send a batch's lines packed into as few datagrams as the packet size allows.

        A batch sent while another is current joins that one (a ``batching()`` block
        inside a request leaves with the request).
        """
        lines = batch.lines
        if not lines:
            return
        batch.lines = []
        outer = current_batch()
        if outer is not None:
            outer.lines.extend(lines)
            return
        try:
            transport = (self._state or self.state).transport
            data = "\n".join(lines)
            if len(data) < transport.packet_size:
                datagrams = [data]  # the usual case: one datagram
            else:
                datagrams = pack(lines, transport.packet_size)
            for data in datagrams:
                transport.send(data)
            if batch.watchers is not None:
                for watcher in batch.watchers:
                    watcher(datagrams)
        except Exception:
            logger.debug("statsd: batch dropped", exc_info=True)

    # capture (django_statsd_push.testing)

    @contextmanager
    def capture(self) -> Iterator[list[Captured]]:
        """Record every line handed to the transport inside the block (tests).

        The fast path stays on: a :class:`~transports.Recorder` in front of the
        configured transport reads the lines as they leave, so tests see what
        production sends. Lines buffered in a batch are recorded when it is sent.

            >>> with statsd.capture() as records:
            ...     statsd.incr("orders")
            >>> records[0].line
            'orders:1|c'
        """
        records: list[Captured] = []
        with self._lock:
            self._captures.append(records)
            self._set_state(self._state)
        try:
            yield records
        finally:
            with self._lock:
                self._captures.remove(records)
                self._set_state(self._state)


@contextmanager
def batching(batch: Batch | None = None, client: StatsdClient | None = None) -> Iterator[Batch]:
    """Buffer the block's metrics in one batch and send it, packed, when the block ends.

        >>> with batching():                   # a management command, a script
        ...     for order in orders:
        ...         statsd.incr("orders.exported")
    """
    batch = Batch() if batch is None else batch
    token = activate_batch(batch)
    try:
        yield batch
    finally:
        deactivate_batch(token)
        (client or statsd).send_batch(batch)


_clients: weakref.WeakSet[StatsdClient] = weakref.WeakSet()
_watching = False


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting.startswith("STATSD_"):
        for client in list(_clients):
            client.reset()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


def _watch_settings_and_forks() -> None:
    """Connect once, on first use (not at import): settings changes and forks."""
    global _watching
    if _watching:
        return
    _watching = True
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="django_statsd_push.client")
    os.register_at_fork(after_in_child=_after_fork_in_child)


statsd = StatsdClient()
