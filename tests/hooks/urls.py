"""Views the hook tests request through the middleware."""

from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.urls import path


def three_queries(request):
    with connection.cursor() as cursor:
        for n in range(3):
            cursor.execute("SELECT %s", [n])
    return HttpResponse("ok")


def cached(request):
    cache.get("hooks-missing")
    cache.set("hooks-key", "value")
    cache.get("hooks-key")
    return HttpResponse("ok")


urlpatterns = [
    path("three-queries/", three_queries, name="three_queries"),
    path("cached/", cached, name="cached"),
]
