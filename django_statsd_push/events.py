"""Deploy markers (and other events) from Django: one HTTP POST to graphite's events API.

The one line a deploy script adds::

    python manage.py statsd_event "deploy $VERSION" --tags deploy,web

or, from Python, ``send_event("deploy v1.4", tags=["deploy", "web"])``. Both post to
``STATSD_EVENTS_URL`` (``statsd-push render``'s ``/events/``, or graphite-web's) with
a short timeout and never raise: an unreachable server or a bad argument costs a
logged warning and a ``False``, never a failed deploy or request.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Iterable

from django_statsd_push.conf import settings as conf

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0  # seconds; a deploy script must not hang on a metrics server


def split_tags(tags: Iterable[str] | str | None) -> list[str]:
    """``"deploy,web"``, ``"deploy web"`` or ``["deploy", "web"]`` -> ``["deploy", "web"]``."""
    if tags is None:
        return []
    items = [tags] if isinstance(tags, str) else list(tags)
    return [word for item in items for word in str(item).replace(",", " ").split()]


def send_event(what: str, tags: Iterable[str] | str | None = None, data: str = "", when: float | None = None,
               url: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Record an event (``what`` is its headline); True once the server accepted it.

    ``url`` defaults to ``STATSD_EVENTS_URL``; with neither, nothing is sent."""
    try:
        target = url or conf.events_url
        if not target:
            log.warning("event %r not sent: STATSD_EVENTS_URL is not set", what)
            return False
        body = json.dumps({"what": str(what), "tags": split_tags(tags), "data": str(data),
                           "when": time.time() if when is None else float(when)}).encode("utf-8")
        request = urllib.request.Request(target, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the operator's URL)
            response.read()
        return True
    except Exception as exc:  # noqa: BLE001 - the promise: never raise into a deploy script or a request
        log.warning("event %r not recorded at %s: %s", what, url or conf.events_url, exc)
        return False
