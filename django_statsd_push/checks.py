"""System checks for the STATSD_* settings (``manage.py check``).

A bad setting must show up here, naming the setting, the problem and the fix, rather
than as a crash on the first request: at run time the client logs the same message
and sends nothing. The rules live in ``conf`` (one per setting, with its stable id, so
they can be silenced one by one); this module only reports them.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.checks import CheckMessage, Error

from django_statsd_push.conf import UNIX_NEEDS_SOCKET, SettingError
from django_statsd_push.conf import settings as conf
from django_statsd_push.migrating import legacy_settings


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """One error per unusable setting: the rules of ``conf`` the client also applies."""
    errors: list[CheckMessage] = []
    for setting in conf.definitions():
        try:
            conf.parsed(setting.attribute)
        except SettingError as exc:
            errors.append(_error(exc))
    if conf.client == "unix" and not conf.unix_socket:
        errors.append(_error(UNIX_NEEDS_SOCKET))
    errors.extend(check_middleware_order())
    errors.extend(legacy_settings())
    return errors


def _error(exc: SettingError) -> Error:
    return Error(str(exc), hint=exc.hint, id=f"django_statsd_push.{exc.check_id}")


MIDDLEWARE_PATH = "django_statsd_push.middleware.StatsdMiddleware"


def check_middleware_order() -> list[CheckMessage]:
    from django.conf import settings

    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH in middleware and middleware[0] != MIDDLEWARE_PATH:
        return [
            checks.Warning(
                f"{MIDDLEWARE_PATH} is not the first entry of MIDDLEWARE.",
                hint="Move it first: responses made by the middleware above it are not "
                "counted, and their metrics are sent outside the request's datagram.",
                id="django_statsd_push.W001",
            )
        ]
    return []
