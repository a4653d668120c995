"""URLs for the browser-timing tests: two pages (one namespaced) and the beacon's endpoint."""

from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

PAGE = "{% load statsd_push %}<html><body><h1>page</h1>{% statsd_browser_timing %}</body></html>"


def page(request):
    return HttpResponse(engines["django"].from_string(PAGE).render({"request": request}, request))


def unnamed(request):
    return page(request)


shop = ([path("cart/", page, name="cart")], "shop")

urlpatterns = [
    path("page/", page, name="page"),
    path("unnamed/", unnamed),
    path("shop/", include(shop)),
    path("statsd/", include("django_statsd_push.urls")),
]
