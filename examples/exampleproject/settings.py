"""Example project settings; everything that differs between machines comes from the environment."""

import importlib.util
import os
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["*"]  # a local demo; the stack's traffic generator calls 127.0.0.1

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_statsd_push",
    "polls",
]

MIDDLEWARE = [
    # First, so that every other middleware, the view and the hooks share its batch.
    "django_statsd_push.middleware.StatsdMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
WSGI_APPLICATION = "exampleproject.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(EXAMPLES_DIR / "db.sqlite3")),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        # request: {% statsd_browser_timing %} reads the page's view name from it.
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

STATSD_HOST = os.environ.get("STATSD_HOST", "127.0.0.1")
STATSD_PORT = int(os.environ.get("STATSD_PORT", "8125"))
STATSD_PREFIX = os.environ.get("STATSD_PREFIX", "") or None
STATSD_HOOKS = ["db", "cache", "models"]
STATSD_EXPORT_MIGRATIONS = True
# deploy markers: `python manage.py statsd_event "deploy v2" --tags deploy` (the stack sets it)
STATSD_EVENTS_URL = os.environ.get("STATSD_EVENTS_URL", "http://127.0.0.1:8080/events/")

# With EXAMPLE_DEBUG=1 and django-debug-toolbar installed (the dev extra), the toolbar
# shows each page's metrics in its StatsD panel.
if DEBUG and importlib.util.find_spec("debug_toolbar"):
    INSTALLED_APPS += ["django.contrib.staticfiles", "debug_toolbar"]
    MIDDLEWARE.insert(1, "debug_toolbar.middleware.DebugToolbarMiddleware")  # after StatsdMiddleware
    STATIC_URL = "/static/"
    INTERNAL_IPS = ["127.0.0.1"]
    DEBUG_TOOLBAR_PANELS = [
        "debug_toolbar.panels.timer.TimerPanel",
        "debug_toolbar.panels.sql.SQLPanel",
        "django_statsd_push.panels.StatsdPanel",
    ]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_statsd_push": {"handlers": ["console"], "level": "WARNING"}},
}
