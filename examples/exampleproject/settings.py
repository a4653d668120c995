"""Example project settings; everything that differs between machines comes from the environment."""

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
TEMPLATES = []

STATSD_HOST = os.environ.get("STATSD_HOST", "127.0.0.1")
STATSD_PORT = int(os.environ.get("STATSD_PORT", "8125"))
STATSD_PREFIX = os.environ.get("STATSD_PREFIX", "") or None
STATSD_HOOKS = ["db", "cache", "models"]
STATSD_EXPORT_MIGRATIONS = True
# deploy markers: `python manage.py statsd_event "deploy v2" --tags deploy` (the stack sets it)
STATSD_EVENTS_URL = os.environ.get("STATSD_EVENTS_URL", "http://127.0.0.1:8080/events/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_statsd_push": {"handlers": ["console"], "level": "WARNING"}},
}
