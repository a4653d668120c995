"""django-debug-toolbar panel: the metrics the current request sent, and in what datagrams.

Add it to the toolbar (StatsdMiddleware must come first in MIDDLEWARE, as always)::

    DEBUG_TOOLBAR_PANELS = [..., "django_statsd_push.panels.StatsdPanel"]

Why it watches the request's batch instead of reading it when the toolbar asks: the
toolbar collects its panels' figures inside the request, before StatsdMiddleware (the
outer middleware) adds the request's own timer and counters and packs the datagrams.
The panel records what the view emitted so far, then records again, complete, when
the batch is sent; the toolbar shows a panel's content from its store when it is
opened, so the complete figures are what people see. Works with any ``STATSD_CLIENT``
(with ``null`` the datagrams are made and dropped at the transport).

Only this module imports debug_toolbar: nothing else of django_statsd_push needs it.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from debug_toolbar.panels import Panel
from django.http import HttpRequest, HttpResponseBase

from django_statsd_push.client import current_batch, read_line, statsd

logger = logging.getLogger("django_statsd_push")

TYPES = {"c": "counter", "ms": "timer", "g": "gauge", "s": "set", "h": "histogram"}


def describe(lines: list[str], datagrams: list[str] | None) -> dict[str, Any]:
    """What the panel shows: one row per metric, counts by type, datagram sizes."""
    state = statsd.state
    prefix = state.rendered_prefix
    rows = []
    for line in lines:
        record = read_line(line, prefix)
        rows.append({
            "name": record.name, "type": TYPES.get(record.type, record.type),
            "value": record.value, "rate": record.rate,
            "tags": ", ".join(f"{k}={v}" for k, v in record.tags.items()),
        })
    counts = Counter(row["type"] for row in rows)
    return {
        "sent": datagrams is not None,
        "metrics": rows,
        "counts": sorted(counts.items()),
        "datagrams": [len(d.encode("utf-8")) for d in datagrams or ()],
        "bytes": sum(len(d.encode("utf-8")) for d in datagrams or ()),
        "packet_size": state.transport.packet_size,
        "client": type(statsd.transport).__name__,
    }


class StatsdPanel(Panel):
    """Metrics (name, type, value, rate, tags) of this request, with counts and datagram sizes."""

    title = "StatsD metrics"
    nav_title = "StatsD"
    template = "django_statsd_push/debug_toolbar_panel.html"
    is_async = True

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()
        if not stats.get("in_batch", True):
            return "no request batch"
        if stats.get("sent"):
            count, sizes = len(stats["metrics"]), stats["datagrams"]
            return f"{count} metrics in {len(sizes)} datagram{'s' if len(sizes) != 1 else ''}"
        # The toolbar draws its bar before StatsdMiddleware adds the request's own lines.
        return f"{len(stats.get('metrics', ()))} from the view, more at the end"

    def process_request(self, request: HttpRequest) -> HttpResponseBase:
        batch = current_batch()
        self._batch = batch
        if batch is not None:
            batch.watch(self._sent)
        return super().process_request(request)

    def generate_stats(self, request: HttpRequest, response: HttpResponseBase) -> None:
        batch = getattr(self, "_batch", None)
        if batch is None:
            self.record_stats({"in_batch": False, "metrics": [], "sent": False})
        elif not self.get_stats().get("sent"):
            self._record(list(batch.lines), None)

    def _sent(self, datagrams: list[str]) -> None:
        """Called by ``statsd.send_batch`` with what it sent."""
        self._record([line for datagram in datagrams for line in datagram.split("\n")], datagrams)

    def _record(self, lines: list[str], datagrams: list[str] | None) -> None:
        # Inside Django's request path: a panel must never fail a request.
        try:
            self.record_stats({"in_batch": True, **describe(lines, datagrams)})
        except Exception:
            logger.debug("statsd panel: not recorded", exc_info=True)
