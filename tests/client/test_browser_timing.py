"""Browser timings: the template tag, the beacon endpoint's rules, and the whole path in
a real headless Chromium loading a page of the example project (served as
tests/client/test_example.py serves it: runserver for WSGI, uvicorn for ASGI) whose
beacon arrives at a real UDP socket as metrics."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from django_statsd_push import browser
from django_statsd_push.testing import capture_metrics
from tests.client.test_example import SERVERS, example_env, example_server, manage  # noqa: F401
from tests.conftest import require_program
from tests.stack.dashboard_page import CHROMIUM_FLAGS

URL = "/statsd/browser-timing/"
GOOD = {"view": "page", "ttfb": 12.5, "dom_content_loaded": 80, "load": 120.25, "lcp": 95}


@pytest.fixture(autouse=True)
def urls(settings):
    settings.ROOT_URLCONF = "tests.client.browser_urls"
    settings.TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django.contrib.sessions"]
    settings.MIDDLEWARE = [
        "django_statsd_push.middleware.StatsdMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ]
    browser.rate_limit.buckets.clear()


def beacon(client, body, content_type="application/json", **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data, content_type=content_type, **extra)


def test_a_beacon_becomes_one_timer_per_figure(client):
    with capture_metrics() as metrics:
        response = beacon(client, GOOD)
    assert response.status_code == 204
    for figure, value in [("ttfb", 12.5), ("dom_content_loaded", 80), ("load", 120.25), ("lcp", 95)]:
        metrics.assert_sent(f"browser.page.{figure}", "ms", value, count=1)


def test_timings_leave_in_their_own_datagram_even_if_the_endpoint_is_excluded(client, settings):
    from django_statsd_push import statsd

    settings.STATSD_EXCLUDE_VIEWS = ["statsd_browser_timing"]
    assert beacon(client, GOOD).status_code == 204
    (datagram,) = statsd.transport.datagrams  # the beacon request's own metrics: excluded
    assert [line.split(":")[0] for line in datagram.split("\n")] == [
        "browser.page.ttfb", "browser.page.dom_content_loaded", "browser.page.load", "browser.page.lcp",
    ]


def test_namespaced_and_unnamed_views_as_resolver_match_names_them(client):
    with capture_metrics() as metrics:
        assert beacon(client, {"view": "shop:cart", "load": 1}).status_code == 204
        assert beacon(client, {"view": "tests.client.browser_urls.unnamed", "load": 2}).status_code == 204
    metrics.assert_timing("browser.shop_cart.load", count=1)
    metrics.assert_timing("browser.tests_client_browser_urls_unnamed.load", count=1)


def test_no_cookie_no_session_no_csrf_token_needed(client):
    client = type(client)(enforce_csrf_checks=True)
    response = beacon(client, GOOD)
    assert response.status_code == 204  # csrf_exempt: the content type is the protection
    assert not response.cookies
    assert "Vary" not in response  # the session was never read


@pytest.mark.parametrize(
    "body, content_type, status, problem",
    [
        (GOOD, "text/plain", 415, "the body must be application/json"),
        (GOOD, "application/x-www-form-urlencoded", 415, "the body must be application/json"),
        ("{not json", "application/json", 400, "the body is not JSON"),
        ([1, 2], "application/json", 400, "the body is not a JSON object"),
        ({"load": 1}, "application/json", 400, "'view' is missing or not a string"),
        ({"view": "admin:index", "load": 1}, "application/json", 400, "unknown view 'admin:index'"),
        ({"view": "page", "cpu": 1}, "application/json", 400, "unknown figure 'cpu'; known: ttfb,"),
        ({"view": "page"}, "application/json", 400, "no figure"),
        ({"view": "page", "load": "12"}, "application/json", 400, "load is not a number"),
        ({"view": "page", "load": True}, "application/json", 400, "load is not a number"),
        ('{"view": "page", "load": NaN}', "application/json", 400, "load is not a number"),
        ({"view": "page", "load": -1}, "application/json", 400, "load = -1 is outside 0-600000 ms"),
        ({"view": "page", "ttfb": 1e9}, "application/json", 400, "ttfb = 1000000000.0 is outside"),
        ({"view": "page", "load": 1, "pad": "x" * 2000}, "application/json", 413, "larger than 1024 bytes"),
    ],
)
def test_bad_beacons_are_refused_by_name_and_send_nothing(client, body, content_type, status, problem):
    with capture_metrics() as metrics:
        response = beacon(client, body, content_type)
    assert response.status_code == status
    assert problem in response.content.decode()
    assert not [name for name in metrics.names() if name.startswith("browser")]


def test_only_post(client):
    assert client.get(URL).status_code == 405


def test_browser_views_setting_narrows_the_url_names(client, settings):
    settings.STATSD_BROWSER_VIEWS = ["shop:cart"]
    assert beacon(client, {"view": "shop:cart", "load": 1}).status_code == 204
    assert beacon(client, GOOD).content.decode() == "unknown view 'page'\n"


def test_rate_limit_per_client_address(client, settings):
    settings.STATSD_BROWSER_RATE = 3
    statuses = [beacon(client, GOOD).status_code for _ in range(5)]
    assert statuses == [204, 204, 204, 429, 429]
    other = beacon(client, GOOD, REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 204  # another address has its own budget


def test_rate_limit_refills_and_forgets_the_oldest_address():
    now = [0.0]
    limit = browser.RateLimit(max_clients=2, clock=lambda: now[0])
    assert [limit.allow("a", 60) for _ in range(61)].count(True) == 60
    now[0] += 1.0  # one second at 60 a minute: one more
    assert limit.allow("a", 60) and not limit.allow("a", 60)
    limit.allow("b", 60)
    limit.allow("c", 60)
    assert list(limit.buckets) == ["b", "c"]


def test_bad_rate_setting_is_named(client, settings):
    settings.STATSD_BROWSER_RATE = 0
    response = beacon(client, GOOD)
    assert response.status_code == 503
    assert "STATSD_BROWSER_RATE = 0 is not valid" in response.content.decode()


def test_the_tag_writes_the_view_name_and_the_endpoint(client):
    page = client.get("/shop/cart/").content.decode()
    assert '})("/statsd/browser-timing/", "shop:cart");</script>' in page
    assert "navigator.sendBeacon(url" in page


def test_no_script_where_the_beacon_would_be_dropped(client, settings):
    settings.STATSD_BROWSER_VIEWS = ["page"]
    assert "sendBeacon" in client.get("/page/").content.decode()
    assert "sendBeacon" not in client.get("/shop/cart/").content.decode()
    settings.STATSD_ENABLED = False
    assert "sendBeacon" not in client.get("/page/").content.decode()


def test_the_tag_escapes_and_explains(rf, settings):
    from django.template import engines
    from django.urls import resolve

    template = engines["django"].from_string("{% load statsd_push %}{% statsd_browser_timing nonce=n %}")
    request = rf.get("/page/")
    request.resolver_match = resolve("/page/")
    request.resolver_match.view_name = "</script><b>"
    out = template.render({"request": request, "n": "abc"})
    assert '<script nonce="abc">' in out and "</script><b>" not in out
    assert '"\\u003c/script\\u003e\\u003cb\\u003e"' in out
    assert "request' context processor" in template.render({})
    settings.ROOT_URLCONF = "tests.client.urls"  # no include("django_statsd_push.urls")
    assert "add include('django_statsd_push.urls')" in template.render({"request": request})


# --- the real thing: Chromium loads an example page, its beacon arrives as metrics -------


@pytest.mark.slow
@pytest.mark.parametrize("server_command", SERVERS.values(), ids=SERVERS.keys())
def test_chromium_sends_the_example_pages_timings(example_env, receiver, tmp_path, server_command):
    chromium = require_program("chromium")
    manage(example_env, "migrate", "-v0")
    manage(example_env, "seed_polls")
    receiver.datagrams(timeout=0.05)
    with example_server(example_env, server_command) as base:
        receiver.datagrams(timeout=0.05)
        dom = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
             f"{base}/polls/1/"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout
        assert "statsd_browser_timing" not in dom.split("<script>")[0]  # no warning comment
        assert '"polls:detail"' in dom
        # The beacon is a second request: its metrics come in its own datagram.
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("example.browser.") for line in lines):
            assert time.monotonic() < deadline, f"no browser timings arrived: {lines}"
            lines += receiver.lines(timeout=1.0)
    timings = {}
    for line in lines:
        match = re.fullmatch(r"example\.browser\.polls_detail\.(\w+):([\d.]+)\|ms", line)
        if match:
            timings[match[1]] = float(match[2])
    assert set(timings) >= {"ttfb", "dom_content_loaded", "load"}, lines
    assert 0 < timings["ttfb"] <= timings["dom_content_loaded"] <= timings["load"] < 600_000
    assert "example.request.statsd_browser_timing.POST" in {line.split(":")[0] for line in lines}
    assert "example.response.204" in {line.split(":")[0] for line in lines}
