"""The debug-toolbar panel, in the real django-debug-toolbar: render the toolbar for a
request, open the panel as the toolbar's JavaScript does, and read its rows."""

from __future__ import annotations

import html
import re

import pytest

from tests.conftest import require_import

require_import("debug_toolbar")

PANEL = "django_statsd_push.panels.StatsdPanel"


@pytest.fixture
def toolbar(settings):
    settings.DEBUG = True
    settings.STATIC_URL = "/static/"  # before the app that needs it is installed
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django.contrib.staticfiles", "debug_toolbar"]
    settings.TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
    settings.ROOT_URLCONF = "tests.client.toolbar_urls"
    settings.MIDDLEWARE = [
        "django_statsd_push.middleware.StatsdMiddleware",
        "debug_toolbar.middleware.DebugToolbarMiddleware",
    ]
    settings.DEBUG_TOOLBAR_PANELS = ["debug_toolbar.panels.timer.TimerPanel", PANEL]
    settings.DEBUG_TOOLBAR_CONFIG = {"SHOW_TOOLBAR_CALLBACK": lambda request: True, "IS_RUNNING_TESTS": False}
    settings.STATSD_CLIENT = "capture"
    settings.STATSD_PREFIX = "app"


def open_panel(client, page_html: str) -> str:
    """The panel's HTML, fetched the way the toolbar's JavaScript fetches it."""
    request_id = re.search(r'data-request-id="([0-9a-f]+)"', page_html)[1]
    answer = client.get("/__debug__/render_panel/", {"request_id": request_id, "panel_id": "StatsdPanel"})
    assert answer.status_code == 200
    return answer.json()["content"]


def rows(panel_html: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', panel_html, re.S)[1]
    return [
        [html.unescape(cell.strip()) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr.*?</tr>", body, re.S)
    ]


def test_panel_lists_the_requests_metrics_and_datagrams(client, toolbar, settings):
    from django_statsd_push import statsd

    response = client.get("/page/")
    page_html = response.content.decode()
    assert 'id="djDebug"' in page_html  # the real toolbar was inserted
    assert "StatsdPanel" in page_html
    assert "4 from the view, more at the end" in page_html  # drawn before the middleware's lines
    sent = list(statsd.transport.datagrams)
    assert len(sent) == 1  # the page's request, one datagram

    panel = open_panel(client, page_html)
    metrics = rows(panel, "statsd-metrics")
    assert metrics[:4] == [
        ["app.shop.orders", "counter", "3", "1.0", ""],
        ["app.shop.checkout", "timer", "12.500000", "1.0", ""],
        ["app.shop.queue", "gauge", "7", "1.0", ""],
        ["app.shop.users", "set", "alice", "1.0", ""],
    ]
    names = [row[0] for row in metrics]
    # ... and the middleware's own lines, added after the toolbar drew its bar.
    assert "app.request.page.GET" in names and "app.response.200" in names
    assert len(metrics) == len(sent[0].split("\n"))
    assert rows(panel, "statsd-datagrams") == [["1", str(len(sent[0]))]]
    counts = dict((type_, int(n)) for type_, n in rows(panel, "statsd-counts"))
    assert counts == {"counter": 3, "gauge": 1, "set": 1, "timer": 4}
    assert "sent by\n<code>CaptureTransport</code> in 1 datagram" in panel


def test_datagram_sizes_follow_the_packet_size(client, toolbar, settings):
    from django_statsd_push import statsd

    settings.STATSD_MAXUDPSIZE = 64
    page_html = client.get("/page/").content.decode()
    sent = list(statsd.transport.datagrams)
    assert len(sent) > 2
    panel = open_panel(client, page_html)
    assert rows(panel, "statsd-datagrams") == [[str(i), str(len(d))] for i, d in enumerate(sent, 1)]
    assert all(int(size) < 64 for _, size in rows(panel, "statsd-datagrams"))


def test_an_excluded_request_says_nothing_was_sent(client, toolbar, settings):
    settings.STATSD_EXCLUDE_VIEWS = ["page"]
    page_html = client.get("/page/").content.decode()
    panel = open_panel(client, page_html)
    assert "Not sent (yet)" in panel
    assert [row[0] for row in rows(panel, "statsd-metrics")] == [
        "app.shop.orders", "app.shop.checkout", "app.shop.queue", "app.shop.users",
    ]


def test_toolbar_outside_the_statsd_middleware_is_explained(client, toolbar, settings):
    settings.MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]
    page_html = client.get("/page/").content.decode()
    assert "no request batch" in page_html
    panel = open_panel(client, page_html)
    assert "put <code>django_statsd_push.middleware.StatsdMiddleware</code> first" in panel
