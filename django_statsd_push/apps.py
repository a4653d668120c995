"""Django app: registers the system checks and installs the hooks chosen in settings."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class StatsdPushConfig(AppConfig):
    name = "django_statsd_push"
    verbose_name = "StatsD push"

    def ready(self) -> None:
        from django_statsd_push import hooks
        from django_statsd_push.checks import check_settings

        checks.register(check_settings, "django_statsd_push")
        # Idempotent by contract: ready() can run more than once in some test setups.
        hooks.install_enabled()
