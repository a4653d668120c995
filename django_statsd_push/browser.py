"""Browser timings: the page's Navigation Timing figures, sent back as ``browser.<view>.<figure>``.

``{% statsd_browser_timing %}`` (templatetags/statsd_push.py) puts a small script in a
page; after the page's ``load`` event it sends the figures below with
``navigator.sendBeacon`` to :func:`record`, which checks them and emits one timer each.

Why so strict: the endpoint is public and unauthenticated by nature (any visitor's
browser posts to it), so everything it accepts becomes a metric name or value anyone
can choose. It therefore

* takes only ``POST`` with a ``Content-Type: application/json`` body of at most
  ``MAX_BODY`` bytes: a cross-site page cannot make a browser send that type without a
  CORS preflight this view never answers, so a CSRF token is not needed (the view is
  ``csrf_exempt``) and no form post can reach it;
* never reads cookies, the session or the user, so it sets no cookie and no
  ``Vary: Cookie``, and a forged request gains nothing but a metric;
* accepts only view names of the project's URLconf (``STATSD_BROWSER_VIEWS`` narrows
  them), so the number of series stays what the URLconf makes it;
* accepts only the figures of ``FIGURES``, each a number of milliseconds from 0 to
  ``MAX_MS``;
* accepts ``STATSD_BROWSER_RATE`` beacons a minute from one client address
  (``REMOTE_ADDR``: behind a proxy, every client shares the proxy's budget unless
  the proxy sets it), answering 429 beyond that.

Every refusal is a 4xx naming the problem; nothing here can answer 500.
"""

from __future__ import annotations

import contextvars
import json
import math
import threading
import time
from functools import lru_cache
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.decorators.csrf import csrf_exempt

from django_statsd_push import names
from django_statsd_push.client import batching, statsd
from django_statsd_push.conf import SettingError
from django_statsd_push.conf import settings as conf

# JSON key -> what it measures (PerformanceNavigationTiming / largest-contentful-paint),
# in milliseconds from the start of the navigation.
FIGURES = {
    "ttfb": "responseStart: time to the first byte of the page",
    "dom_content_loaded": "domContentLoadedEventEnd",
    "load": "loadEventEnd",
    "lcp": "largest contentful paint, as of the load event",
}
MAX_MS = 600_000.0  # ten minutes: anything longer is a broken clock, not a page load
MAX_BODY = 1024
MAX_CLIENTS = 10_000  # client addresses the rate limit remembers (oldest forgotten first)


class RateLimit:
    """A token bucket per client address: ``per_minute`` beacons, refilled continuously.

    Bounded: beyond ``max_clients`` addresses the least recently seen is forgotten, so a
    flood of addresses costs memory up to that bound, and at worst a fresh budget.
    """

    def __init__(self, max_clients: int = MAX_CLIENTS, clock: Any = time.monotonic) -> None:
        self.max_clients, self.clock = max_clients, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)
        self.lock = threading.Lock()

    def allow(self, client: str, per_minute: int) -> bool:
        now = self.clock()
        with self.lock:
            tokens, when = self.buckets.pop(client, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - when) * per_minute / 60.0)
            allowed = tokens >= 1.0
            self.buckets[client] = (tokens - 1.0 if allowed else tokens, now)  # now the newest
            if len(self.buckets) > self.max_clients:
                del self.buckets[next(iter(self.buckets))]
            return allowed


rate_limit = RateLimit()


@lru_cache(maxsize=8)
def url_names(resolver: URLResolver) -> frozenset[str]:
    """Every view name a request of this URLconf can resolve to, as ``ResolverMatch.view_name``
    gives it (``ns:name``, or the view's dotted path when the pattern has no name)."""
    found: set[str] = set()

    def walk(patterns: Any, namespaces: tuple[str, ...]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, namespaces + ((pattern.namespace,) if pattern.namespace else ()))
            elif isinstance(pattern, URLPattern):
                found.add(":".join(namespaces + (pattern.name or _func_path(pattern.callback),)))

    walk(resolver.url_patterns, ())
    return frozenset(found)


def _func_path(func: Any) -> str:
    # Django's own rule for an unnamed pattern (``__name__``), so the result equals
    # ``ResolverMatch.view_name``; not exclusions.view_path, which uses ``__qualname__``.
    func = getattr(func, "view_class", func)
    if not hasattr(func, "__name__"):
        return f"{type(func).__module__}.{type(func).__name__}"
    return f"{func.__module__}.{func.__name__}"


class Refused(ValueError):
    def __init__(self, status: int, problem: str) -> None:
        self.status = status
        super().__init__(problem)


def read_beacon(request: HttpRequest) -> tuple[str, dict[str, float]]:
    """(view, {figure: ms}) from the request, or :class:`Refused` saying what is wrong."""
    if request.content_type != "application/json":
        raise Refused(415, "the body must be application/json")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body is not a JSON object")
    view = data.pop("view", None)
    if not isinstance(view, str):
        raise Refused(400, "'view' is missing or not a string")
    allowed = conf.parsed("browser_views")
    known = url_names(get_resolver(getattr(request, "urlconf", None)))
    if view not in known or (allowed is not None and view not in allowed):
        raise Refused(400, f"unknown view {view[:100]!r}")
    unknown = sorted(set(data) - set(FIGURES))
    if unknown:
        raise Refused(400, f"unknown figure {unknown[0][:100]!r}; known: {', '.join(FIGURES)}")
    if not data:
        raise Refused(400, f"no figure; send some of {', '.join(FIGURES)}")
    figures = {}
    for figure, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Refused(400, f"{figure} is not a number")
        if not 0 <= value <= MAX_MS:
            raise Refused(400, f"{figure} = {value} is outside 0-{MAX_MS:.0f} ms")
        figures[figure] = float(value)
    return view, figures


@csrf_exempt
def record(request: HttpRequest) -> HttpResponse:
    """The beacon's endpoint: 204 when recorded, 4xx with the reason otherwise."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        per_minute = conf.parsed("browser_rate")
        if not rate_limit.allow(request.META.get("REMOTE_ADDR") or "-", per_minute):
            raise Refused(429, f"more than {per_minute} beacons a minute from this address")
        view, figures = read_beacon(request)
    except Refused as refused:
        return HttpResponse(f"{refused}\n", status=refused.status, content_type="text/plain")
    except SettingError as exc:  # manage.py check names it too
        return HttpResponse(f"browser timings are off: {exc}\n", status=503, content_type="text/plain")
    # In a context of their own, not the beacon request's batch: the timings leave in one
    # datagram even when STATSD_EXCLUDE_VIEWS drops the beacon request's own metrics.
    contextvars.Context().run(send_timings, view, figures)
    return HttpResponse(status=204)


def send_timings(view: str, figures: dict[str, float]) -> None:
    with batching():
        for figure, value in figures.items():
            statsd.timing(names.browser(view, figure), value)
