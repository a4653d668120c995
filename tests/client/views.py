"""Views the middleware tests request."""

import asyncio

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.views import View

from django_statsd_push import statsd
from django_statsd_push.client import current_batch


def ten_metrics(request):
    for i in range(10):
        statsd.incr(f"view.metric{i}")
    return HttpResponse("ok")


def unnamed(request):
    return HttpResponse("unnamed")


class ClassView(View):
    def get(self, request):
        return HttpResponse("class")


def not_found(request):
    raise Http404("nope")


def forbidden(request):
    raise PermissionDenied


def boom(request):
    raise ValueError("boom")


def with_queries(request):
    # What the DB hook does for each query.
    batch = current_batch()
    batch.add_query(2.0)
    batch.add_query(3.0)
    return HttpResponse("db")


def streaming(request):
    def chunks():
        yield b"one"
        statsd.incr("stream.chunk")  # emitted while the server iterates
        yield b"two"

    return StreamingHttpResponse(chunks())


async def async_view(request):
    await asyncio.sleep(0)
    statsd.incr("async.view")
    return HttpResponse("async")


async def async_streaming(request):
    async def chunks():
        yield b"a"
        yield b"b"

    return StreamingHttpResponse(chunks())
