"""URLs for the debug-toolbar test: an HTML page sending metrics, and the toolbar's own URLs."""

from debug_toolbar.toolbar import debug_toolbar_urls
from django.http import HttpResponse
from django.urls import path

from django_statsd_push import statsd


def page(request):
    statsd.incr("shop.orders", 3)
    statsd.timing("shop.checkout", 12.5)
    statsd.gauge("shop.queue", 7)
    statsd.set("shop.users", "alice")
    return HttpResponse("<html><head></head><body><h1>Shop</h1></body></html>")


urlpatterns = [path("page/", page, name="page"), *debug_toolbar_urls()]
