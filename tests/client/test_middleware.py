"""StatsdMiddleware through Django's test Client (WSGI path) and AsyncClient (ASGI path),
asserted on the datagrams a real UDP socket receives."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpResponse
from django.test import AsyncClient, Client

from django_statsd_push.middleware import StatsdMiddleware


def split(lines: list[str]) -> dict[str, str]:
    """name -> "value|type" for lines whose names are unique."""
    return dict(line.split(":", 1) for line in lines)


def timer_names(lines):
    """The request timers (body sizes, also timers, have tests of their own)."""
    names = [line.split(":")[0] for line in lines if line.endswith("|ms")]
    return [name for name in names if not name.endswith("_bytes")]


def test_ten_metrics_and_the_request_metrics_leave_in_one_datagram(udp):
    response = Client().get("/ten/")
    assert response.status_code == 200
    datagrams = udp.datagrams()
    assert len(datagrams) == 1, datagrams
    lines = datagrams[0].split("\n")
    assert lines[:10] == [f"view.metric{i}:1|c" for i in range(10)]
    assert timer_names(lines) == ["request.ten.GET"]
    assert lines[-2:] == ["response.200:1|c", "response.2xx:1|c"]
    assert len(datagrams[0]) < 512


def test_request_timer_is_milliseconds(udp):
    Client().get("/ten/")
    value = [line for line in udp.lines() if line.startswith("request.ten.GET:")][0]
    ms = float(value.split(":")[1].split("|")[0])
    assert 0 < ms < 5000


@pytest.mark.parametrize(
    "url, view",
    [
        ("/unnamed/", "tests_client_views_unnamed"),
        ("/class/", "tests_client_views_ClassView"),
        ("/ns/detail/", "polls_detail"),
        ("/no/such/page/", "unresolved"),
    ],
)
def test_view_names(udp, url, view):
    Client().get(url)
    assert timer_names(udp.lines()) == [f"request.{view}.GET"]


def test_unmatched_url_is_unresolved_404_and_not_an_exception(udp):
    assert Client().get("/no/such/page/").status_code == 404
    lines = udp.lines()
    assert "response.404:1|c" in lines and "response.4xx:1|c" in lines
    assert not [line for line in lines if "exception" in line]


@pytest.mark.parametrize("url, status", [("/not-found/", 404), ("/forbidden/", 403)])
def test_http404_and_permission_denied_are_not_exceptions(udp, url, status):
    assert Client().get(url).status_code == status
    lines = udp.lines()
    assert f"response.{status}:1|c" in lines
    assert not [line for line in lines if "exception" in line]


def test_exception_is_counted_and_the_500_still_served(udp):
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    lines = udp.lines()
    assert "request.exception.ValueError:1|c" in lines
    assert "response.500:1|c" in lines and "response.5xx:1|c" in lines
    assert timer_names(lines) == ["request.boom.GET"]


def test_unknown_method_shares_one_series(udp):
    Client().generic("BREW", "/ten/")
    assert timer_names(udp.lines()) == ["request.ten.OTHER"]


def test_db_counters_when_the_db_hook_is_on(udp, settings):
    settings.STATSD_HOOKS = ["db"]
    Client().get("/db/")
    values = split(udp.lines())
    assert values["request.db.GET.db_queries"] == "2.000000|ms"
    assert values["request.db.GET.db_time"] == "5.000000|ms"


def test_no_db_counters_without_the_db_hook(udp):
    Client().get("/db/")
    assert not [line for line in udp.lines() if "db_" in line]


def test_streaming_response_is_sent_when_the_stream_closes(udp):
    response = Client().get("/stream/")
    assert response.status_code == 200
    assert udp.datagrams(timeout=0.1) == []  # the stream has not been read yet
    assert b"".join(response.streaming_content) == b"onetwo"  # test Client closes at the end
    (datagram,) = udp.datagrams()  # the stream's own metric joined the request's
    lines = datagram.split("\n")
    assert lines[0] == "stream.chunk:1|c"
    assert timer_names(lines) == ["request.stream.GET"]
    assert "response.200:1|c" in lines


def test_tagged_names(udp, settings):
    settings.STATSD_TAG_FORMAT = "dogstatsd"
    Client().get("/ns/detail/")
    lines = udp.lines()
    assert "response:1|c|#status:200,status_class:2xx" in lines
    assert [line for line in lines if line.startswith("request:")][0].endswith(
        "|ms|#view:polls_detail,method:GET"
    )


def test_unreachable_daemon_does_not_affect_the_request(settings):
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_HOST = "statsd.invalid"  # RFC 6761: never resolves
    assert Client().get("/ten/").status_code == 200
    assert Client().get("/ten/").status_code == 200


# --- ASGI ------------------------------------------------------------------------------


def test_middleware_is_async_in_an_async_chain():
    async def get_response(request):
        return HttpResponse()

    def sync_get_response(request):
        return HttpResponse()

    assert iscoroutinefunction(StatsdMiddleware(get_response))
    assert not iscoroutinefunction(StatsdMiddleware(sync_get_response))


async def test_async_view_via_asgi(udp):
    response = await AsyncClient().get("/async/")
    assert response.status_code == 200
    datagrams = udp.datagrams()
    assert len(datagrams) == 1
    lines = datagrams[0].split("\n")
    assert lines[0] == "async.view:1|c"
    assert timer_names(lines) == ["request.async.GET"]
    assert lines[-2:] == ["response.200:1|c", "response.2xx:1|c"]


async def test_sync_view_via_asgi_shares_the_request_batch(udp):
    # The sync view runs in a worker thread (sync_to_async copies the context).
    await AsyncClient().get("/ten/")
    datagrams = udp.datagrams()
    assert len(datagrams) == 1
    assert datagrams[0].startswith("view.metric0:1|c\n")


async def test_async_exception_is_counted(udp):
    response = await AsyncClient(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert "request.exception.ValueError:1|c" in udp.lines()


async def test_async_streaming_response(udp):
    response = await AsyncClient().get("/async-stream/")
    assert udp.datagrams(timeout=0.1) == []
    assert b"".join([chunk async for chunk in response.streaming_content]) == b"ab"
    assert timer_names(udp.lines()) == ["request.async_stream.GET"]


class CountingMiddleware:
    """A later middleware that sends its own metric."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django_statsd_push import statsd

        statsd.incr("other.middleware")
        return self.get_response(request)


def test_later_middleware_metrics_join_the_request_datagram(udp, settings):
    settings.MIDDLEWARE = [
        "django_statsd_push.middleware.StatsdMiddleware",
        "tests.client.test_middleware.CountingMiddleware",
    ]
    Client().get("/unnamed/")
    (datagram,) = udp.datagrams()
    assert datagram.split("\n")[0] == "other.middleware:1|c"


def test_a_batch_inside_a_request_joins_it(udp):
    from django.http import HttpRequest

    from django_statsd_push import statsd
    from django_statsd_push.client import batching

    def view(request):
        with batching():  # e.g. an eager Celery task inside the view
            statsd.incr("inner")
        statsd.incr("outer")
        return HttpResponse()

    request = HttpRequest()
    request.method = "GET"
    StatsdMiddleware(view)(request)
    (datagram,) = udp.datagrams()
    assert datagram.split("\n")[:2] == ["inner:1|c", "outer:1|c"]
    assert "request.unresolved.GET" in datagram


# --- body sizes ---------------------------------------------------------------------------


def sizes(lines, view, method="GET"):
    values = split(lines)
    return tuple(
        float(values[f"request.{view}.{method}.{kind}_bytes"].split("|")[0])
        for kind in ("request", "response")
    )


def test_body_sizes(udp):
    Client().post("/ten/", data=b"x" * 1234, content_type="application/octet-stream")
    assert sizes(udp.lines(), "ten", "POST") == (1234, len(b"ok"))
    Client().get("/ten/")
    assert sizes(udp.lines(), "ten") == (0, 2)


def test_streaming_body_size_is_counted_as_it_is_read(udp):
    response = Client().get("/stream/")
    assert b"".join(response.streaming_content) == b"onetwo"
    assert sizes(udp.lines(), "stream") == (0, 6)


async def test_async_streaming_body_size(udp):
    response = await AsyncClient().get("/async-stream/")
    assert b"".join([chunk async for chunk in response.streaming_content]) == b"ab"
    assert sizes(udp.lines(), "async_stream") == (0, 2)


@pytest.mark.django_db  # closing sends request_finished: close_old_connections
def test_file_response_size_from_its_length(udp, tmp_path):
    from django.http import FileResponse, HttpRequest

    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 5000)
    request = HttpRequest()
    request.method = "GET"
    # What a WSGI server with wsgi.file_wrapper does: send the file, never iterate.
    response = StatsdMiddleware(lambda request: FileResponse(path.open("rb")))(request)
    response.close()
    assert sizes(udp.lines(), "unresolved") == (0, 5000)


# --- exclusions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, value",
    [
        ("STATSD_EXCLUDE_PATHS", ["/te"]),  # a prefix
        ("STATSD_EXCLUDE_PATHS", ["^/t[e]n/$"]),  # a string regex
        ("STATSD_EXCLUDE_PATHS", [re.compile("en/$")]),  # a compiled one, searched
        ("STATSD_EXCLUDE_VIEWS", ["ten"]),  # the URL name
        ("STATSD_EXCLUDE_VIEWS", ["tests.client.views.ten_metrics"]),  # the dotted path
    ],
)
def test_an_excluded_request_sends_nothing(udp, settings, setting, value):
    setattr(settings, setting, value)
    assert Client().get("/ten/").status_code == 200  # its view's ten metrics included
    assert udp.datagrams(timeout=0.2) == []
    Client().get("/unnamed/")  # not excluded
    assert timer_names(udp.lines()) == ["request.tests_client_views_unnamed.GET"]


def test_excluded_namespaced_and_class_views(udp, settings):
    settings.STATSD_EXCLUDE_VIEWS = ["polls:detail", "tests.client.views.ClassView"]
    Client().get("/ns/detail/")
    Client().get("/class/")
    assert udp.datagrams(timeout=0.2) == []


def test_an_excluded_stream_sends_nothing(udp, settings):
    settings.STATSD_EXCLUDE_PATHS = ["/stream/"]
    response = Client().get("/stream/")
    assert b"".join(response.streaming_content) == b"onetwo"
    assert udp.datagrams(timeout=0.2) == []
