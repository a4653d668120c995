import importlib.util

from django.conf import settings
from django.urls import include, path

from polls import views

urlpatterns = [
    path("", views.index, name="index"),
    path("polls/", include("polls.urls")),
    path("cached/", views.cached, name="cached"),
    path("slow/", views.slow, name="slow"),
    path("error/", views.error, name="error"),
    path("healthz", views.healthz, name="healthz"),
    path("statsd/", include("django_statsd_push.urls")),  # the browser-timing beacon
]
if settings.DEBUG and importlib.util.find_spec("debug_toolbar"):
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
