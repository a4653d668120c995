"""System checks for the STATSD_* settings (``manage.py check``).

A bad setting must show up here, naming the setting and the fix, rather than as a
crash on the first request: at run time the client only logs it and sends nothing.
Ids are stable; one per setting, so they can be silenced one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core import checks
from django.core.checks import CheckMessage, Error

from django_statsd_push.conf import CLIENTS, HOOKS, TAG_FORMATS
from django_statsd_push.conf import settings as conf


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_number_in(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _is_optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_hooks(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset)) and all(h in HOOKS for h in value)


# (id, setting, property of conf, valid?, hint)
RULES: tuple[tuple[str, str, str, Callable[[Any], bool], str], ...] = (
    ("E001", "STATSD_HOST", "host", lambda v: isinstance(v, str) and v != "",
     "Set STATSD_HOST to a host name or IP address string, e.g. '127.0.0.1'."),
    ("E002", "STATSD_PORT", "port", _is_int_in(1, 65535),
     "Set STATSD_PORT to an integer between 1 and 65535 (statsd listens on 8125)."),
    ("E003", "STATSD_PREFIX", "prefix", _is_optional_str,
     "Set STATSD_PREFIX to a string such as 'myapp', or None for no prefix."),
    ("E004", "STATSD_MAXUDPSIZE", "maxudpsize", _is_int_in(64, 65507),
     "Set STATSD_MAXUDPSIZE to an integer between 64 and 65507 bytes "
     "(512 is safe on any network, 1432 fits a 1500-byte MTU)."),
    ("E005", "STATSD_IPV6", "ipv6", _is_bool, "Set STATSD_IPV6 to True or False."),
    ("E006", "STATSD_CLIENT", "client", lambda v: v in CLIENTS,
     f"Set STATSD_CLIENT to one of {', '.join(map(repr, CLIENTS))}."),
    ("E007", "STATSD_ENABLED", "enabled", _is_bool, "Set STATSD_ENABLED to True or False."),
    ("E008", "STATSD_SAMPLE_RATE", "sample_rate", _is_number_in(0.0, 1.0),
     "Set STATSD_SAMPLE_RATE to a number between 0 and 1 (1 sends everything)."),
    ("E009", "STATSD_HOOKS", "hooks", _is_hooks,
     f"Set STATSD_HOOKS to a list drawn from {', '.join(map(repr, HOOKS))}."),
    ("E010", "STATSD_TAG_FORMAT", "tag_format", lambda v: v in TAG_FORMATS,
     "Set STATSD_TAG_FORMAT to None (plain dotted names), 'dogstatsd' or 'graphite'."),
    ("E011", "STATSD_DNS_REFRESH", "dns_refresh", _is_number_in(0, 86400),
     "Set STATSD_DNS_REFRESH to a number of seconds between 0 (never refresh) and 86400."),
    ("E012", "STATSD_UNIX_SOCKET", "unix_socket", _is_optional_str,
     "Set STATSD_UNIX_SOCKET to the path of the daemon's Unix socket."),
    ("E013", "STATSD_EXPORT_MIGRATIONS", "export_migrations", _is_bool,
     "Set STATSD_EXPORT_MIGRATIONS to True or False."),
    ("E020", "STATSD_EVENTS_URL", "events_url", lambda v: v is None or _is_http_url(v),
     "Set STATSD_EVENTS_URL to the events API's URL, e.g. 'http://127.0.0.1:8080/events/', or None."),
)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for check_id, setting, attribute, valid, hint in RULES:
        value = getattr(conf, attribute)
        if not valid(value):
            errors.append(
                Error(f"{setting} = {value!r} is not valid.", hint=hint,
                      id=f"django_statsd_push.{check_id}")
            )
    if conf.client == "unix" and not conf.unix_socket:
        errors.append(
            Error("STATSD_CLIENT = 'unix' needs STATSD_UNIX_SOCKET.",
                  hint="Set STATSD_UNIX_SOCKET to the daemon's socket path, or use 'udp'.",
                  id="django_statsd_push.E014")
        )
    errors.extend(check_middleware_order())
    return errors


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
