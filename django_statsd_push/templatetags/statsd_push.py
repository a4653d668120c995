"""``{% load statsd_push %}{% statsd_browser_timing %}``: the browser-timing beacon.

Put it once in the base template (before ``</body>``); the page's view name (from
``request.resolver_match``, so the ``request`` context processor must be on) and the
endpoint's URL (``include("django_statsd_push.urls")``) are written into the script.
Where either is missing the tag writes an HTML comment saying which, never an error:
a page must not fail because of metrics. It writes nothing when metrics are disabled
or the page's view is not in ``STATSD_BROWSER_VIEWS`` (its beacon would be dropped).
``nonce`` is passed on for a Content Security Policy:
``{% statsd_browser_timing nonce=request.csp_nonce %}``.
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from django_statsd_push.client import statsd
from django_statsd_push.conf import SettingError
from django_statsd_push.conf import settings as conf

register = template.Library()

# After the load event (so loadEventEnd is set), once: the navigation entry's figures
# and the latest largest-contentful-paint seen so far, as one JSON beacon.
SCRIPT = """(function (url, view) {
  var perf = window.performance, lcp = null;
  if (!perf || !perf.getEntriesByType || !navigator.sendBeacon) return;
  try {
    new PerformanceObserver(function (list) {
      var entries = list.getEntries();
      if (entries.length) lcp = entries[entries.length - 1].startTime;
    }).observe({type: "largest-contentful-paint", buffered: true});
  } catch (e) {}
  window.addEventListener("load", function () {
    setTimeout(function () {
      var nav = perf.getEntriesByType("navigation")[0];
      if (!nav) return;
      var body = {view: view, ttfb: nav.responseStart,
                  dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd};
      if (lcp !== null) body.lcp = lcp;
      navigator.sendBeacon(url, new Blob([JSON.stringify(body)], {type: "application/json"}));
    }, 0);
  });
})(%s, %s);"""


def _js_string(value: str) -> str:
    # JSON is a JavaScript string literal; '<', '>', '&' escaped so it cannot end the script.
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@register.simple_tag(takes_context=True)
def statsd_browser_timing(context: Any, nonce: str | None = None) -> SafeString:
    """The ``<script>`` sending this page's Navigation Timing figures to ``record``."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is None:
        return mark_safe("<!-- statsd_browser_timing: no request.resolver_match (enable the "
                         "'django.template.context_processors.request' context processor) -->")
    view = match.view_name
    try:
        allowed = conf.parsed("browser_views")
        enabled = statsd.state.enabled
    except SettingError:
        return mark_safe("<!-- statsd_browser_timing: a bad STATSD_BROWSER_VIEWS (manage.py check) -->")
    if not enabled or (allowed is not None and view not in allowed):
        return mark_safe("")  # the beacon would be refused or dropped: do not send it
    try:
        url = reverse("statsd_browser_timing")
    except NoReverseMatch:
        return mark_safe("<!-- statsd_browser_timing: add include('django_statsd_push.urls') "
                         "to the URLconf -->")
    script = mark_safe(SCRIPT % (_js_string(url), _js_string(view)))
    if nonce:
        return format_html('<script nonce="{}">{}</script>', nonce, script)
    return format_html("<script>{}</script>", script)
