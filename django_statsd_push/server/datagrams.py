"""Reading a datagram socket (UDP, Unix datagram) without losing datagrams while the
interpreter is busy elsewhere.

The reader thread shares the interpreter lock (GIL) with the flusher, which at half a
million names works for seconds in Python and NumPy, partly in single C calls of up
to half a second (a full garbage collection took 460 ms) that no thread switch
interrupts. The reader then
holds the GIL only now and then, a few milliseconds (the switch interval) at a time.
Parsing each datagram before reading the next did not keep up: a parse there costs
about 70 us (every name is new to the tables being filled), so the reader took about
1,000 datagrams/s over a whole 500k flush while 6,000/s arrived, and the kernel
dropped the rest once the receive buffer was full.

What keeps up (a bench of that flush with 36,000 datagrams sent during it: 19,000 to
28,000 lost before, none in 12 runs after):

* In each of its turns the reader first moves everything queued into a backlog of
  its own, then parses from it, looking at the kernel's queue again every
  ``INGEST_BETWEEN_READS`` datagrams. Moving is a copy of a microsecond or two, so
  a turn empties the kernel's queue, and parsing catches up after the flush. The
  backlog is bounded (``backlog_bytes`` of payload): beyond it datagrams wait in the
  kernel's buffer, and past that are dropped and counted there, as before. Datagrams
  still reach ``ingest`` one by one in arrival order.
* The reads that empty the queue keep the GIL: libc's ``recv(..., MSG_DONTWAIT)``
  called through ``ctypes.PyDLL``. ``socket.recv_into`` (and ``ctypes.CDLL``) release
  the GIL around the call, and the flusher, waiting for it, can take it back at any
  of them: with those the kernel's queue still peaked at 6.2 MiB (median; of 8) and
  overflowed in 4 of 10 runs, against 3.9 MiB and never with libc. A ctypes call costs
  about what ``recv_into`` does (arguments prepared once, no ``argtypes``). Where
  ctypes or libc is missing, the socket's calls are used.

Reading without giving up the GIL but parsing each datagram as it is read helped
little (18,000 to 25,000 still lost): parsing filled the reader's short turns.

The reader waits in ``poll`` (the GIL released) only when nothing is queued anywhere.
A worker process (``workers.py``) has no flusher in its interpreter, and stamps each
datagram with its kernel arrival time as it parses it (``UdpListener.arrival_ns``,
the stamp of the last datagram read): its loop calls ``read_queued``, which parses
each datagram before reading the next.
"""

from __future__ import annotations

import functools
import logging
import select
import socket
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

BUFFER = 65536  # one byte past the largest max_packet_size: a longer datagram is seen as too large
# The bound of what is read but not yet ingested, payload bytes. The 500k-name bench
# above needed up to 5 MiB. In a sustained overload it is also how far parsing lags
# behind arrival: at the slow parse above, 16 MiB of 600-byte datagrams take 2 s.
BACKLOG_BYTES = 16 << 20
INGEST_BETWEEN_READS = 16  # datagrams ingested from the backlog before the kernel's queue is read again
READ_AT_ONCE = 64  # datagrams read between two looks at the backlog's bound


@functools.cache
def _libc_recv() -> Callable[..., int] | None:
    """libc's ``recv``, called with the GIL held; None where ctypes or libc is missing."""
    try:
        import ctypes

        recv = ctypes.PyDLL(None).recv
    except (ImportError, OSError, AttributeError):
        return None
    recv.restype = ctypes.c_ssize_t
    return recv


class DatagramReader:
    """Hands each datagram of ``sock`` to ``ingest(data)``, from ``run`` (a thread of its
    own) or ``read_queued`` (a caller's poll loop).

    One buffer serves every read (``recv(65536)`` would allocate 64 KiB and shrink it
    each time). A datagram over ``max_packet_size`` is counted as ``packets_too_large``;
    an exception from ``ingest`` is logged and counted as ``ingest_errors``, and
    reading goes on. ``keep_gil=False`` reads with the socket's own calls, as where
    ctypes is missing.
    """

    def __init__(self, sock: socket.socket, ingest: Callable[[bytes], None], *, max_packet_size: int,
                 count: Callable[[str, float], None], name: str, backlog_bytes: int = BACKLOG_BYTES,
                 keep_gil: bool = True) -> None:
        self.sock = sock
        self.ingest = ingest
        self.count = count
        self.max_packet_size = max_packet_size
        self.name = name
        self.backlog_bytes = backlog_bytes
        self.stopping = False  # set by the owner, who then shuts the socket: run() ends once all is read
        self._buffer = bytearray(BUFFER)
        libc_recv = _libc_recv() if keep_gil else None
        if libc_recv is None:
            self._recv_nowait: Callable[[], int] = self._socket_recv_nowait
            return
        import ctypes

        # Arguments made once (no ``argtypes`` to convert on each call). The descriptor is
        # a number here: the owner must not close the socket while a reader may still
        # use it, as the number could go to another file meanwhile.
        view = (ctypes.c_char * BUFFER).from_buffer(self._buffer)
        self._recv_nowait = functools.partial(libc_recv, sock.fileno(), view, ctypes.c_size_t(BUFFER),
                                              socket.MSG_DONTWAIT)

    @property
    def keeps_gil(self) -> bool:
        """Whether queued datagrams are read without giving the GIL up (libc through ctypes)."""
        return self._recv_nowait != self._socket_recv_nowait

    def _socket_recv_nowait(self) -> int:
        try:
            return self.sock.recv_into(self._buffer, 0, socket.MSG_DONTWAIT)
        except OSError:  # nothing queued (or an error, reported by this call and so cleared)
            return -1

    def _take(self, handle: Callable[[bytearray], None], limit: int) -> tuple[int, int]:
        """Read up to ``limit`` queued datagrams, without waiting, and hand each within
        ``max_packet_size`` to ``handle`` (a larger one is counted); (how many were read,
        fewer than ``limit`` when the queue was read empty; their bytes handed over)."""
        recv, buffer, largest = self._recv_nowait, self._buffer, self.max_packet_size
        handed = 0
        for done in range(limit):
            size = recv()
            if size < 0:
                return done, handed
            if size > largest:
                self.count("packets_too_large", 1)
            else:
                handle(buffer[:size])
                handed += size
        return limit, handed

    def _ingest_failed(self) -> None:
        """In an ``except`` around ``ingest``: a bug must not end receiving; log it, count it."""
        log.exception("error ingesting a datagram from %s", self.name)
        self.count("ingest_errors", 1)

    def _deliver(self, data: bytearray) -> None:
        try:
            self.ingest(data)
        except Exception:
            self._ingest_failed()

    def read_queued(self, limit: int = 256) -> int:
        """Ingest up to ``limit`` datagrams already queued, each before the next is read,
        without waiting; how many were read."""
        return self._take(self._deliver, limit)[0]

    def run(self) -> None:
        """Read and ingest until ``stopping`` is set and the socket, shut by the owner,
        is read empty (what was queued before is still ingested).

        Shutting the socket wakes ``poll``: a shut socket polls readable.
        """
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        backlog: deque[bytearray] = deque()
        held = 0  # payload bytes in the backlog
        take, ingest, keep, pop = self._take, self.ingest, backlog.append, backlog.popleft
        while True:
            if not backlog:
                poller.poll()
            while held < self.backlog_bytes:
                read, handed = take(keep, READ_AT_ONCE)
                held += handed
                if read < READ_AT_ONCE:
                    break
            if not backlog:  # so held < backlog_bytes: the queue was read empty
                if self.stopping:
                    return
                continue
            try:
                for _ in range(min(len(backlog), INGEST_BETWEEN_READS)):
                    data = pop()
                    held -= len(data)
                    ingest(data)
            except Exception:  # the rest stays in the backlog
                self._ingest_failed()
