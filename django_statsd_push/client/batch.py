"""The request batch: metrics buffered while a request (or task, or block) runs.

Why: a request's metrics leave together, packed into as few datagrams as
``STATSD_MAXUDPSIZE`` allows, when the response is finished; one ``send`` instead of one
per metric is most of what makes the middleware cheap. The batch is held in a
``contextvars`` variable, so a ``sync_to_async`` view shares its request's batch and
two concurrent requests (threads or asyncio tasks) never share one.

This is the public API for code that drives batches (the middleware, the Celery hook,
a management command):

    >>> from django_statsd_push.client import Batch, activate_batch, deactivate_batch, statsd
    >>> batch = Batch()
    >>> token = activate_batch(batch)
    >>> statsd.incr("jobs.done")         # buffered in ``batch``, not sent
    >>> deactivate_batch(token)
    >>> statsd.send_batch(batch)         # one datagram

``django_statsd_push.client.batching()`` does the same as a context manager.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

__all__ = ["Batch", "activate_batch", "current_batch", "deactivate_batch", "pack"]


class Batch:
    """Lines buffered for one request (or one ``batching()`` block), and its DB figures.

    ``lines`` holds finished statsd lines in the order they were emitted; the DB hook
    calls :meth:`add_query` so the middleware can send ``db_queries``/``db_time`` for
    the request.
    """

    __slots__ = ("lines", "db_queries", "db_time", "watchers")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.db_queries = 0
        self.db_time = 0.0  # milliseconds
        # Called with the datagrams once the batch is sent (the debug-toolbar panel);
        # None, not a list, so a request without one pays no allocation.
        self.watchers: list[Callable[[list[str]], None]] | None = None

    def watch(self, watcher: Callable[[list[str]], None]) -> None:
        """Call ``watcher(datagrams)`` when this batch is sent (not when it joins an
        outer batch, nor when an excluded request drops it)."""
        if self.watchers is None:
            self.watchers = []
        self.watchers.append(watcher)

    def add_query(self, ms: float) -> None:
        """Count one query of ``ms`` milliseconds in this batch (the DB hook)."""
        self.db_queries += 1
        self.db_time += ms


def pack(lines: list[str], packet_size: int) -> list[str]:
    """Lines joined into datagrams shorter than ``packet_size``, in order.

    pystatsd's packing rule (its UDP ``Pipeline``: a line that would bring a datagram
    to the packet size starts the next one; a longer line goes alone);
    tests/client/test_client.py holds the two together.
    """
    datagrams: list[str] = []
    data = ""
    for line in lines:
        if not data:
            data = line
        elif len(data) + len(line) + 1 >= packet_size:
            datagrams.append(data)
            data = line
        else:
            data += "\n" + line
    if data:
        datagrams.append(data)
    return datagrams


_current: contextvars.ContextVar[Batch | None] = contextvars.ContextVar(
    "django_statsd_push_batch", default=None
)

current_batch: Callable[[], Batch | None] = _current.get
"""The batch current in this context, or None outside one.

The context variable's own ``get`` rather than a wrapper function: the DB hook calls it
on every query, and a Python frame around it measured as much as the rest of its work.
"""


def activate_batch(batch: Batch) -> contextvars.Token:
    """Make ``batch`` current until :func:`deactivate_batch` (then send it with
    ``statsd.send_batch``)."""
    return _current.set(batch)


def deactivate_batch(token: contextvars.Token) -> None:
    """Undo :func:`activate_batch`: the batch that was current before is current again."""
    _current.reset(token)
