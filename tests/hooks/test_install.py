"""install_enabled(): driven by settings, idempotent (ready() twice counts once)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.cache import caches
from django.db import connection

from django_statsd_push import hooks
from django_statsd_push.testing import capture_metrics


@pytest.mark.django_db
def test_ready_twice_counts_once(settings):
    settings.STATSD_HOOKS = ["db", "cache", "models", "celery"]
    config = apps.get_app_config("django_statsd_push")
    config.ready()
    config.ready()
    assert hooks.installed() == {"db", "cache", "models", "celery"}
    with capture_metrics() as metrics:
        connection.cursor().execute("SELECT 1")
        caches["default"].get("k")
    metrics.assert_timing("db.default.sqlite.select", count=1)
    metrics.assert_timing("cache.default.get", count=1)
    metrics.assert_incr("cache.default.get.miss", count=1)
    assert len(metrics.records) == 3


def test_settings_drive_what_is_installed(settings):
    settings.STATSD_HOOKS = ["cache"]
    assert hooks.installed() == {"cache"}
    settings.STATSD_EXPORT_MIGRATIONS = True
    assert hooks.installed() == {"cache", "migrations"}
    settings.STATSD_HOOKS = ("db",)
    assert hooks.installed() == {"db", "migrations"}
    settings.STATSD_HOOKS = "db"  # not a list: check E009 reports it; nothing installed
    settings.STATSD_EXPORT_MIGRATIONS = False
    assert hooks.installed() == set()


def test_an_unknown_hook_is_named_and_the_others_install(settings, caplog):
    with caplog.at_level("ERROR", logger="django_statsd_push"):
        settings.STATSD_HOOKS = ["cache", "orm"]
    assert hooks.installed() == {"cache"}
    assert "unknown hook 'orm' in STATSD_HOOKS ignored" in caplog.text
