"""URLs of django_statsd_push: ``path("statsd/", include("django_statsd_push.urls"))``.

Only the browser-timing beacon's endpoint (``{% statsd_browser_timing %}`` finds it by
its name, ``statsd_browser_timing``).
"""

from django.urls import path

from django_statsd_push import browser

urlpatterns = [
    path("browser-timing/", browser.record, name="statsd_browser_timing"),
]
