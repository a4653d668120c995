"""The ``statsd`` object: pystatsd's API, configured from settings on first use.

``statsd`` is a :class:`StatsdClient`, a subclass of pystatsd's ``StatsClientBase``:
pystatsd formats every line (``name:value|type[|@rate]``); this module only decides
the name (via :mod:`django_statsd_push.names`), where the line goes, and when. For
speed, ``timing`` and ``incr`` of a name already seen (rate 1) reuse pystatsd's line
for that name with the value text pystatsd would write in it, instead of walking
pystatsd's call chain again (tests/client/test_fast_path.py holds the two together).

Fire-and-forget: no method of ``statsd`` raises or blocks on the network. A host that
does not resolve, a refused port or a full socket buffer drop the datagram and count
it in ``statsd.transport.dropped``; a bad setting is logged and turns metrics off
(the system checks name it); nothing reaches the caller.

Internal API used by the middleware and the hooks (``django_statsd_push.hooks``):

``statsd.timing(names.db_query(alias, vendor, verb), ms)``
    Every ``statsd`` method accepts a :class:`~django_statsd_push.names.Metric` as
    well as a plain string. Hooks build names with :mod:`names`, never by hand.

``current_batch() -> Batch | None``
    The batch of the request being served in this context (thread or asyncio task;
    contextvars, so ``sync_to_async`` views share their request's batch), or None
    outside a request. While a batch is current, every metric emitted in that
    context is buffered in it instead of being sent.

``Batch.add_query(ms)``
    The DB hook's per-request counters (``db_queries``, ``db_time``), emitted by the
    middleware as ``request.<view>.<METHOD>.db_queries`` / ``.db_time``.

``batching()``
    Context manager that makes a new batch current and sends it, packed into as few
    datagrams as ``STATSD_MAXUDPSIZE`` allows, when the block ends (management
    commands, scripts). ``statsd.send_batch(batch)`` sends one explicitly; a batch
    sent while another is current joins that one.

``activate_batch(batch) -> token`` / ``deactivate_batch(token)``
    The same for code driven by signals (Celery's task_prerun / task_postrun).

``statsd.fast -> State | None``
    The settings state while the fast path is on (metrics enabled, no
    ``STATSD_SAMPLE_RATE``, no capture), else None. ``state.heads[stat]`` is the
    name's ``(head, tail, incr line)``: a line is ``head + value + tail`` with the
    value text pystatsd writes (``TIMING_VALUE``, ``COUNT_VALUE``); the middleware
    keeps its per-route lines in ``state.heads.memo``.

Settings are read on first use and again after any ``STATSD_*`` setting changes
(Django's ``setting_changed`` signal, sent by ``override_settings``) and after
``os.fork()`` (the child gets its own socket and DNS refresher).
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from statsd.client.base import StatsClientBase
from statsd.client.udp import Pipeline as _PackingPipeline

from django_statsd_push import names
from django_statsd_push.conf import TAG_FORMATS
from django_statsd_push.conf import settings as conf

logger = logging.getLogger("django_statsd_push")

# How long the first use waits for the first DNS answer before carrying on without
# an address (metrics are then dropped until the background lookup succeeds).
FIRST_LOOKUP_WAIT = 0.5
# Stream transports: connect timeout, and how long to drop metrics after a failed
# connect instead of trying again on every request.
STREAM_TIMEOUT = 1.0
STREAM_RETRY_AFTER = 5.0
STREAM_PACKET_SIZE = 8192
CAPTURE_MAXLEN = 10_000


# --- per-request batching ------------------------------------------------------------


class Batch:
    """Metrics buffered for one request (or one ``batching()`` block)."""

    __slots__ = ("lines", "db_queries", "db_time")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.db_queries = 0
        self.db_time = 0.0  # milliseconds

    def add_query(self, ms: float) -> None:
        self.db_queries += 1
        self.db_time += ms


_current_batch: contextvars.ContextVar[Batch | None] = contextvars.ContextVar(
    "django_statsd_push_batch", default=None
)


def current_batch() -> Batch | None:
    return _current_batch.get()


def activate_batch(batch: Batch) -> contextvars.Token:
    """Make ``batch`` current (signal-driven code: Celery's prerun/postrun)."""
    return _current_batch.set(batch)


def deactivate_batch(token: contextvars.Token) -> None:
    """Undo :func:`activate_batch`; then send the batch with ``statsd.send_batch``."""
    _current_batch.reset(token)


@contextmanager
def batching(batch: Batch | None = None) -> Iterator[Batch]:
    batch = Batch() if batch is None else batch
    token = _current_batch.set(batch)
    try:
        yield batch
    finally:
        _current_batch.reset(token)
        statsd.send_batch(batch)


# --- transports: where a formatted datagram goes ---------------------------------------


class Transport:
    """Sends already formatted datagrams; never raises."""

    packet_size = 512
    dropped = 0  # datagrams that could not be sent

    def send(self, data: str) -> None:
        pass

    def close(self) -> None:
        pass


class NullTransport(Transport):
    pass


class LogTransport(Transport):
    """Logs each datagram (logger ``django_statsd_push``, INFO): development aid."""

    def send(self, data: str) -> None:
        logger.info("statsd: %s", data)


class CaptureTransport(Transport):
    """Keeps the last datagrams in memory (``STATSD_CLIENT = "capture"``, for tests)."""

    def __init__(self, packet_size: int = 512) -> None:
        self.packet_size = packet_size
        self.datagrams: deque[str] = deque(maxlen=CAPTURE_MAXLEN)

    def send(self, data: str) -> None:
        self.datagrams.append(data)


class Resolver:
    """Knows the daemon's address; looks it up again every ``refresh`` seconds.

    Why a thread: a request must never wait for DNS, and a statsd host behind a
    changing record (Kubernetes service, failover) must be followed without a
    restart. A failed lookup keeps the last good address. ``on_change(family,
    address)`` is called from the lookup thread when the answer changes.
    """

    def __init__(
        self,
        host: str,
        port: int,
        family: socket.AddressFamily,
        socktype: socket.SocketKind,
        refresh: float,
        on_change: Callable[[int, Any], None],
        lookup: Callable[..., list] = socket.getaddrinfo,
    ) -> None:
        self.host, self.port, self.family, self.socktype = host, port, family, socktype
        self.refresh = refresh
        self.address: Any = None
        self.failures = 0
        self._on_change = on_change
        self._lookup = lookup
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float = FIRST_LOOKUP_WAIT) -> None:
        self._thread = threading.Thread(
            target=self._run, name="django-statsd-push-dns", daemon=True
        )
        self._thread.start()
        self._first.wait(wait)

    def _run(self) -> None:
        try:
            self.resolve()
        finally:
            self._first.set()
        while self.refresh > 0 and not self._stop.wait(self.refresh):
            self.resolve()

    def resolve(self) -> bool:
        """One lookup now; True when it answered. Called by the thread (and tests)."""
        try:
            family, _, _, _, address = self._lookup(
                self.host, self.port, self.family, self.socktype
            )[0]
        except (OSError, UnicodeError, IndexError) as exc:
            self.failures += 1
            logger.warning(
                "statsd: cannot resolve %s:%s (%s); keeping %s",
                self.host, self.port, exc, self.address,
            )
            return False
        if address != self.address:
            try:
                self._on_change(family, address)
            except OSError as exc:
                self.failures += 1
                logger.warning("statsd: cannot use %s (%s)", address, exc)
                return False
            self.address = address
        return True

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A lookup in progress cannot be interrupted; the thread is a daemon.
            thread.join(timeout=0.2)


class UDPTransport(Transport):
    """A connected, non-blocking UDP socket (one ``send`` per datagram, no lookup)."""

    def __init__(
        self,
        host: str,
        port: int,
        ipv6: bool = False,
        packet_size: int = 512,
        refresh: float = 60.0,
        lookup: Callable[..., list] = socket.getaddrinfo,
    ) -> None:
        self.packet_size = packet_size
        self._sock: socket.socket | None = None
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.resolver = Resolver(
            host, port, family, socket.SOCK_DGRAM, refresh, self._connect, lookup
        )
        self.resolver.start()

    def _connect(self, family: int, address: Any) -> None:
        sock = self._sock
        if sock is not None and sock.family == family:
            # Re-pointing the same socket: concurrent senders never see it closed.
            sock.connect(address)
            return
        new = socket.socket(family, socket.SOCK_DGRAM)
        new.setblocking(False)
        new.connect(address)
        self._sock = new
        if sock is not None:
            sock.close()

    def send(self, data: str) -> None:
        sock = self._sock
        if sock is None:
            self.dropped += 1
            return
        try:
            sock.send(data.encode("ascii"))
        except (OSError, UnicodeError):
            # ECONNREFUSED after an ICMP port unreachable, EAGAIN on a full buffer,
            # EBADF after close: a metric is not worth an exception.
            self.dropped += 1

    def close(self) -> None:
        self.resolver.close()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class StreamTransport(Transport):
    """TCP or Unix stream socket, one newline-terminated chunk per send.

    Connects on first send (at most ``STREAM_TIMEOUT`` seconds, then no new attempt
    for ``STREAM_RETRY_AFTER`` seconds): use UDP where even that is too much.
    Subclasses say where to connect (``_address``).
    """

    packet_size = STREAM_PACKET_SIZE

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def _address(self) -> tuple[int, Any]:
        """``(family, address)`` to connect to now; OSError when there is none yet."""
        raise NotImplementedError

    def _open(self) -> socket.socket:
        family, address = self._address()
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(STREAM_TIMEOUT)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, data: str) -> None:
        with self._lock:
            try:
                if self._sock is None:
                    if time.monotonic() < self._retry_at:
                        self.dropped += 1
                        return
                    self._sock = self._open()
                self._sock.sendall(data.encode("ascii") + b"\n")
            except (OSError, UnicodeError):
                self.dropped += 1
                self._retry_at = time.monotonic() + STREAM_RETRY_AFTER
                self._drop_socket()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def reconnect(self, *_: Any) -> None:
        with self._lock:
            self._drop_socket()
            self._retry_at = 0.0

    def close(self) -> None:
        with self._lock:
            self._drop_socket()


class TCPTransport(StreamTransport):
    def __init__(self, host: str, port: int, ipv6: bool = False, refresh: float = 60.0) -> None:
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        super().__init__()
        self.resolver = Resolver(
            host, port, family, socket.SOCK_STREAM, refresh, self.reconnect
        )
        self.resolver.start()

    def _address(self) -> tuple[int, Any]:
        if self.resolver.address is None:
            raise OSError("statsd host not resolved")
        return self.resolver.family, self.resolver.address

    def close(self) -> None:
        self.resolver.close()
        super().close()


class UnixTransport(StreamTransport):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__()

    def _address(self) -> tuple[int, Any]:
        return socket.AF_UNIX, self.path


def build_transport() -> Transport:
    """The transport the current settings ask for."""
    kind = conf.client
    if kind == "udp":
        return UDPTransport(
            conf.host, int(conf.port), bool(conf.ipv6), int(conf.maxudpsize),
            float(conf.dns_refresh),
        )
    if kind == "tcp":
        return TCPTransport(conf.host, int(conf.port), bool(conf.ipv6), float(conf.dns_refresh))
    if kind == "unix":
        if not conf.unix_socket:
            raise ValueError("STATSD_CLIENT='unix' needs STATSD_UNIX_SOCKET")
        return UnixTransport(conf.unix_socket)
    if kind == "log":
        return LogTransport()
    if kind == "capture":
        return CaptureTransport(int(conf.maxudpsize))
    if kind == "null":
        return NullTransport()
    raise ValueError(f"unknown STATSD_CLIENT {kind!r}")


# --- the client ------------------------------------------------------------------------


class State(NamedTuple):
    """Everything read from settings, swapped as one object when settings change."""

    transport: Transport
    enabled: bool
    prefix: str | None
    tag_format: str | None
    sample_rate: float
    hooks: frozenset[str]
    heads: Heads  # per-name line templates for these settings (the fast path)


def load_state() -> State:
    try:
        enabled = conf.enabled is not False
        prefix, tag_format = conf.prefix or None, conf.tag_format or None
        if not isinstance(prefix, (str, type(None))):
            raise TypeError("STATSD_PREFIX must be a string")
        if tag_format not in TAG_FORMATS:
            raise ValueError(f"unknown STATSD_TAG_FORMAT {tag_format!r}")
        raw_hooks = conf.hooks
        # A malformed STATSD_HOOKS (check E009) must not cost the other metrics.
        valid_hooks = isinstance(raw_hooks, (list, tuple, set, frozenset))
        hooks = frozenset(raw_hooks) if valid_hooks else frozenset()
        sample_rate = float(conf.sample_rate)
        return State(
            build_transport() if enabled else NullTransport(),
            enabled, prefix, tag_format, sample_rate, hooks, Heads(prefix, tag_format),
        )
    except Exception:
        # The system checks name the bad setting; at run time it only costs metrics.
        logger.exception("statsd: bad STATSD_* settings, metrics are disabled")
        return State(NullTransport(), False, None, None, 1.0, frozenset(), Heads(None, None))


class Captured(NamedTuple):
    """One metric as sent (see :mod:`django_statsd_push.testing`)."""

    name: str  # as sent, prefix included (tags excluded)
    stat: str  # as sent, without the prefix
    type: str  # c, ms, g, s
    value: str  # pystatsd's text: "1", "12.500000", "+3", "user-42"
    rate: float
    tags: dict[str, str]
    line: str


_render = names.render
_STAT_TYPES = (str, names.Metric)
_format = StatsClientBase._prepare  # pystatsd's line formatting (and sampling)
HEADS_MAXLEN = 8192
# pystatsd's value text (StatsClientBase.timing and .incr), for the fast path; the
# fast-path tests compare every line with pystatsd's own.
TIMING_VALUE = "%0.6f|ms"
COUNT_VALUE = "%s|c"
_ONE = 1  # ``count is _ONE``: exactly the int 1 (True == 1 but formats as "True")


class Heads(dict):
    """``stat -> (head, tail, incr line)``: a line is ``head + value + tail``.

    Why: rendering a name (prefix, sanitising, tags) and pystatsd's ``_prepare`` cost
    more than the rest of a metric together, and the same few hundred names are sent
    on every request. ``head`` is pystatsd's own line for the rendered name with an
    empty value (``"app.cache.default.get:"``), so the wire format stays pystatsd's;
    ``tail`` carries DogStatsD tags; the third item is the whole ``incr(stat)`` line.
    One dict per settings state, so a changed prefix or tag format can never reuse an
    old head; bounded like ``names.render``'s cache.
    """

    __slots__ = ("prefix", "tag_format", "memo")

    def __init__(self, prefix: str | None, tag_format: str | None) -> None:
        super().__init__()
        self.prefix, self.tag_format = prefix, tag_format
        # Other modules' caches of lines built from these heads (the middleware's
        # per-route lines): they go when the settings, and so the heads, change.
        self.memo: dict[Any, Any] = {}

    def __missing__(self, stat: Any) -> tuple[str, str, str]:
        if not isinstance(stat, _STAT_TYPES):
            raise KeyError(stat)  # the slow path turns it into a string first
        name, tail, _ = _render(stat, self.prefix, self.tag_format)
        head = _format(_NamedPrepare, name, "", 1)
        entry = (head, tail, head + COUNT_VALUE % 1 + tail)
        if len(self) >= HEADS_MAXLEN:
            self.clear()
        self[stat] = entry
        return entry


def _dropped(kind: str, value: Any, stat: Any) -> None:
    logger.debug("statsd: bad %s value %r for %r dropped", kind, value, stat)


class _NamedPrepare:
    """Shared by the client and its pipelines: names, tags, sample rate, capture."""

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
        # Every line, from the client or a pipeline, passes here: the one place that
        # guarantees a bad name or rate never raises to the caller. Hot path.
        try:
            root = self._root
            state = root._state or root.state
            if not state.enabled:
                return None
            if state.sample_rate != 1:
                rate = rate * state.sample_rate
            if not isinstance(stat, _STAT_TYPES):
                stat = str(stat)
            rendered = _render(stat, state.prefix, state.tag_format)
            name, tail, _ = rendered
            line = _format(self, name, value, rate)
            if line is None:  # sampled out
                return None
            if tail:
                line += tail
            if root._captures:
                root._capture(stat, state, rendered, value, rate, line)
            return line
        except Exception:
            logger.debug("statsd: metric %r dropped", stat, exc_info=True)
            return None


class Pipeline(_NamedPrepare, _PackingPipeline):
    """pystatsd's pipeline (packing lines up to the packet size), with our naming."""

    def __init__(self, client: StatsdClient | Pipeline) -> None:
        self._root = client._root
        super().__init__(client)


class StatsdClient(_NamedPrepare, StatsClientBase):
    """pystatsd's API, lazily configured, batching inside requests, never raising."""

    def __init__(self) -> None:
        self._root = self
        self._state: State | None = None
        # The current state's heads while every line may take the fast path (enabled,
        # no global sample rate, no capture), else None. Changed under the lock.
        self._heads: Heads | None = None
        self.fast: State | None = None  # the state whose heads those are (middleware)
        self._lock = threading.Lock()
        self._captures: list[list[Captured]] = []
        _clients.add(self)

    # the fast path: a metric with a known name and rate 1 is one concatenation of
    # pystatsd's value text (the same expression as in StatsClientBase) between the
    # name's cached head and tail, then an append to the request's batch. Anything
    # else (first use of a name, a sample rate, a timedelta, a capture) goes through
    # pystatsd's methods and _prepare below, which give the same line.
    # timing and incr repeat their last lines on purpose: one shared helper measured
    # +35 ns a metric (incr 128 -> 167 ns), about a tenth of a request's metric cost.

    def timing(self, stat: Any, delta: Any, rate: float = 1) -> None:
        heads = self._heads
        if heads is not None and rate == 1:
            try:
                head, tail, _ = heads[stat]
                line = head + TIMING_VALUE % delta + tail
            except Exception:
                pass
            else:
                batch = _current_batch.get()
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
                batch = _current_batch.get()
                if batch is None:
                    self._send(line)
                else:
                    batch.lines.append(line)
                return
        _NamedPrepare.incr(self, stat, count, rate)

    # configuration

    @property
    def state(self) -> State:
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    _watch_settings_and_forks()
                    self._state = load_state()
                    self._update_fast()
                state = self._state
        return state

    def _update_fast(self) -> None:
        """Switch the fast path on or off (call with the lock held)."""
        state = self._state
        fast = state is not None and state.enabled and state.sample_rate == 1
        self.fast = state if fast and not self._captures else None
        self._heads = self.fast.heads if self.fast is not None else None

    @property
    def transport(self) -> Transport:
        return self.state.transport

    @property
    def _maxudpsize(self) -> int:  # read by pystatsd's packing pipeline
        return self.state.transport.packet_size

    def reset(self) -> None:
        """Forget the configuration (and close the socket); the next metric re-reads it."""
        with self._lock:
            state, self._state = self._state, None
            self._heads = self.fast = None
        if state is not None:
            state.transport.close()

    close = reset

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held by another thread at the fork.
        self._lock = threading.Lock()
        self.reset()

    # sending

    def _send_stat(self, stat: Any, value: str, rate: float) -> None:
        line = self._prepare(stat, value, rate)
        if line is not None:
            batch = _current_batch.get()
            if batch is None:
                self._send(line)
            else:
                batch.lines.append(line)

    def _after(self, data: str) -> None:
        batch = _current_batch.get()
        if batch is not None:
            batch.lines.append(data)
        else:
            self._send(data)

    def _send(self, data: str) -> None:
        (self._state or self.state).transport.send(data)

    def pipeline(self) -> Pipeline:
        return Pipeline(self)

    def send_batch(self, batch: Batch) -> None:
        """Send a batch's lines packed into as few datagrams as the packet size allows."""
        lines = batch.lines
        if not lines:
            return
        batch.lines = []
        outer = _current_batch.get()
        if outer is not None:  # a batch inside a request joins the request's batch
            outer.lines.extend(lines)
            return
        try:
            transport = (self._state or self.state).transport
            data = "\n".join(lines)
            if len(data) < transport.packet_size:
                transport.send(data)  # the usual case: one datagram
                return
            pipe = Pipeline(self)  # pystatsd's packing for the rest
            pipe._stats.extend(lines)
            pipe.send()
        except Exception:
            logger.debug("statsd: batch dropped", exc_info=True)

    # capture (django_statsd_push.testing)

    @contextmanager
    def capture(self) -> Iterator[list[Captured]]:
        records: list[Captured] = []
        with self._lock:
            self._captures.append(records)
            self._update_fast()  # captured lines take the general path
        try:
            yield records
        finally:
            with self._lock:
                self._captures.remove(records)
                self._update_fast()

    def _capture(
        self, stat: Any, state: State, rendered: names.Rendered, value: str, rate: float, line: str
    ) -> None:
        number, _, kind = value.partition("|")
        name = rendered.name.split(";", 1)[0]
        stat_name = names.render(stat, None, state.tag_format).name.split(";", 1)[0]
        record = Captured(name, stat_name, kind, number, rate, dict(rendered.tags), line)
        for records in self._captures:
            records.append(record)


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
