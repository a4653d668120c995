"""DogStatsD events into Graphite events: each one POSTed to graphite-web's ``/events/``.

The parser turns ``_e{..}`` lines into ``protocol.Event`` records and the aggregator
hands them to every sink in ``Snapshot.events``; this sink, built when ``events_url``
is set, posts each as graphite-web's JSON body (title -> ``what``, text -> ``data``,
tags -> ``tags``, the event's timestamp, or the flush time, -> ``when``), so they show in
``/events/get_data`` and the ``events()`` render function of ``statsd-push render``
or graphite-web.

The network is kept off the flush: ``flush`` only queues, one thread of its own posts
with a short timeout. What cannot wait (the queue is full, a post fails, ``close``
runs out of time) is counted in ``statsd.events_dropped`` and not retried; a failing
server is logged once when the outage begins and once when it answers again.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_statsd_push.server.config import Settings
    from django_statsd_push.server.snapshot import Snapshot

log = logging.getLogger(__name__)

POST_TIMEOUT = 2.0  # seconds for one POST
MAX_QUEUED = 10_000  # events waiting for the poster; more are dropped and counted
MAX_WHAT = 255  # graphite-web's column for the headline (a longer one would be refused)
MAX_TAGS = 32  # graphite-web's and statsd-push render's limit


def event_body(event: Any, default_when: float) -> bytes:
    """A ``protocol.Event`` as the JSON graphite-web's ``POST /events/`` takes."""
    return json.dumps({
        "what": event.title[:MAX_WHAT] or "event",
        "data": event.text,
        "tags": list(event.tags[:MAX_TAGS]),
        "when": event.timestamp if event.timestamp is not None else default_when,
    }).encode("utf-8")


class EventsSink:
    """Posts each flush's events on its own thread; see the module docstring."""

    def __init__(self, url: str, count: Callable[[str, float], None], *, timeout: float = POST_TIMEOUT,
                 max_queued: int = MAX_QUEUED) -> None:
        self.url = url
        self.count = count
        self.timeout = timeout
        self.posted = 0
        self.dropped = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_queued)
        self._failing: str | None = None  # the error that began the current outage
        self._dropped_in_outage = 0
        self._give_up_at = float("inf")  # set by close(): later events are dropped, not posted
        self._drop_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="statsd-events", daemon=True)
        self._thread.start()

    @classmethod
    def for_settings(cls, settings: Settings, count: Callable[[str, float], None]) -> EventsSink:
        assert settings.events_url
        return cls(settings.events_url, count)

    def flush(self, snapshot: Snapshot) -> None:
        # No timestamp: when it was flushed (the stamp of the flush ``stop`` makes lies
        # ahead, and an event from the future hides from ``/events/get_data`` until then).
        when = min(snapshot.timestamp, time.time())
        for event in snapshot.events:
            try:
                self._queue.put_nowait(event_body(event, when))
            except queue.Full:
                self._drop("the queue of events to post is full")

    def reload(self, settings: Settings) -> None:
        pass  # events_url needs a restart (config.SETTINGS)

    def close(self, timeout: float) -> None:
        """Post what is queued within ``timeout`` seconds; the rest is dropped, counted."""
        self._give_up_at = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=max(0.0, timeout))
        except queue.Full:
            # The poster is still in one post (a stuck server) with the queue full behind
            # it: a plain put waited out that post's own timeout. What is queued is past
            # the deadline now and would be dropped as "stopping" anyway: drop it here.
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._drop("stopping")
            self._queue.put_nowait(None)
        self._thread.join(max(0.0, self._give_up_at - time.monotonic()) + 0.1)

    def _drop(self, why: str) -> None:
        with self._drop_lock:  # the poster's thread, and close() with a full queue
            self.dropped += 1
            self.count("events_dropped", 1)
            if self._failing is None:
                self._failing = why
                log.warning("DogStatsD events not posted to %s (%s): dropping them until it answers", self.url, why)
            self._dropped_in_outage += 1

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            if time.monotonic() >= self._give_up_at:
                self._drop("stopping")
                continue
            try:
                self._post(body)
            except Exception as exc:  # noqa: BLE001 - any failure is one dropped event, never a dead thread
                self._drop(f"{type(exc).__name__}: {exc}")
                continue
            self.posted += 1
            if self._failing is not None:
                log.info("events: %s answers again; %d event(s) dropped meanwhile", self.url, self._dropped_in_outage)
                self._failing, self._dropped_in_outage = None, 0

    def _post(self, body: bytes) -> None:
        timeout = min(self.timeout, max(0.1, self._give_up_at - time.monotonic()))
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the operator's URL)
            response.read()
