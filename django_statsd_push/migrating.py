"""Settings left over from django-statsd(-mozilla) and django-prometheus, and what replaces them.

Why a check: after moving over, the old settings look as if they still do something
(``STATSD_PATCHES``, ``PROMETHEUS_EXPORT_MIGRATIONS``) and some share a name with ours
but not a meaning (``STATSD_CLIENT = "django_statsd.clients.normal"``). Each is reported
once by ``manage.py check`` as warning ``django_statsd_push.W002`` (a setting) or
``W003`` (their app, middleware or instrumented database/cache backends), with the line
to write instead. docs/migrating.rst is the same table in prose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.checks import CheckMessage, Warning

# django-statsd's STATSD_PATCHES entries -> our hook names.
PATCHES = {"django_statsd.patches.db": "db", "django_statsd.patches.cache": "cache"}

# django-statsd's STATSD_CLIENT dotted paths -> our STATSD_CLIENT.
CLIENTS = {
    "statsd.client": "udp",
    "django_statsd.clients.normal": "udp",
    "django_statsd.clients.null": "null",
    "django_statsd.clients.log": "log",
    "django_statsd.clients.toolbar": "udp",  # the panel works with any client
    "django_statsd.clients.nose": "capture",
    "django_statsd.clients.moz_metlog": "udp",
}


def _hooks_with(*names: str) -> str:
    from django.conf import settings

    current = getattr(settings, "STATSD_HOOKS", ())
    current = list(current) if isinstance(current, (list, tuple, set, frozenset)) else []
    wanted = current + [name for name in names if name not in current]
    return f"STATSD_HOOKS = {wanted!r}"


def _patches(value: Any) -> str:
    entries = value if isinstance(value, (list, tuple)) else []
    unknown = [entry for entry in entries if entry not in PATCHES]
    advice = f"Write {_hooks_with(*(PATCHES[e] for e in entries if e in PATCHES))}"
    if unknown:
        advice += f" ({', '.join(map(repr, unknown))} has no hook of the same name)"
    return advice + "."


def _client(value: Any) -> str | None:
    if not isinstance(value, str) or "." not in value:
        return None  # one of ours (or a bad value: check E006 says so)
    ours = CLIENTS.get(value)
    if ours is None:
        return ("STATSD_CLIENT names one of our transports, not a module: write one of "
                "'udp', 'tcp', 'unix', 'null', 'log', 'capture'.")
    extra = " and add django_statsd_push.panels.StatsdPanel to DEBUG_TOOLBAR_PANELS" \
        if value.endswith(".toolbar") else ""
    return f"Write STATSD_CLIENT = {ours!r}{extra}."


BROWSER = ("Use {% statsd_browser_timing %} (django_statsd_push.browser) and its URL; "
           "STATSD_BROWSER_VIEWS lists the URL names it accepts.")

# setting -> (where it comes from, what to write instead: text, or a function of its value)
LEGACY: dict[str, tuple[str, str | Callable[[Any], str | None]]] = {
    "STATSD_PATCHES": ("django-statsd", _patches),
    "STATSD_MODEL_SIGNALS": ("django-statsd", lambda v: f"Write {_hooks_with('models')}." if v else
                             "Remove it."),
    "STATSD_CELERY_SIGNALS": ("django-statsd", lambda v: f"Write {_hooks_with('celery')}." if v else
                              "Remove it."),
    "STATSD_CLIENT": ("django-statsd", _client),
    "STATSD_VIEW_TIMER_DETAILS": (
        "django-statsd", "Remove it: request.<view>.<METHOD> is sent for every request; sum "
        "per method in Graphite (sumSeries(request.*.GET)) instead of sending it twice."),
    "STATSD_RECORD_KEYS": ("django-statsd", BROWSER),
    "STATSD_RECORD_GUARD": ("django-statsd", BROWSER + " Its view limits rate and values itself."),
    "TOOLBAR_STATSD": ("django-statsd", "Remove it: add django_statsd_push.panels.StatsdPanel to "
                       "DEBUG_TOOLBAR_PANELS; it needs no setting."),
    "PROMETHEUS_EXPORT_MIGRATIONS": (
        "django-prometheus", lambda v: "Write STATSD_EXPORT_MIGRATIONS = True (migrations.<alias>."
        "applied/unapplied gauges)." if v else "Remove it."),
    "PROMETHEUS_METRIC_NAMESPACE": (
        "django-prometheus", "Write STATSD_PREFIX = <namespace>; Prometheus names come from the "
        "bridge's mapping file (statsd-push bridge --mapping)."),
    "PROMETHEUS_LATENCY_BUCKETS": (
        "django-prometheus", "Set histogram_options.buckets (in seconds) in the bridge's mapping "
        "file (graphite/statsd-mapping.yml)."),
    "PROMETHEUS_METRICS_EXPORT_PORT": (
        "django-prometheus", "Remove it: Prometheus scrapes the bridge "
        "(statsd-push bridge --listen 127.0.0.1:9102), not the Django process."),
    "PROMETHEUS_METRICS_EXPORT_PORT_RANGE": (
        "django-prometheus", "Remove it: one bridge serves /metrics for every Django process "
        "(statsd-push bridge --listen)."),
    "PROMETHEUS_METRICS_EXPORT_ADDRESS": (
        "django-prometheus", "Remove it: statsd-push bridge --listen HOST:PORT."),
}

# Their middleware and instrumented backends (MIDDLEWARE, DATABASES ENGINE, CACHES BACKEND).
MIDDLEWARE_ADVICE = "Remove it: django_statsd_push.middleware.StatsdMiddleware (first) replaces it."


def legacy_settings() -> list[CheckMessage]:
    """W002 for each leftover setting, W003 for each leftover app, middleware or backend."""
    from django.conf import settings

    found: list[CheckMessage] = []
    for name, (origin, advice) in LEGACY.items():
        if not hasattr(settings, name):
            continue
        value = getattr(settings, name)
        text = advice(value) if callable(advice) else advice
        if text is None:
            continue
        found.append(Warning(f"{name} = {value!r} is a {origin} setting; django-statsd-push "
                             "does not read it.", hint=text, id="django_statsd_push.W002"))
    for app in getattr(settings, "INSTALLED_APPS", None) or ():
        if app in ("django_statsd", "django_prometheus"):
            found.append(Warning(f"INSTALLED_APPS has {app!r}: its signals and patches still send metrics.",
                                 hint="Remove it: 'django_statsd_push' replaces it.",
                                 id="django_statsd_push.W003"))
    for entry in getattr(settings, "MIDDLEWARE", None) or ():
        if isinstance(entry, str) and entry.startswith(("django_statsd.", "django_prometheus.")):
            found.append(Warning(f"MIDDLEWARE has {entry}: metrics of every request are also sent "
                                 "by the package you are moving away from.",
                                 hint=MIDDLEWARE_ADVICE, id="django_statsd_push.W003"))
    for kind, key, hook in (("DATABASES", "ENGINE", "db"), ("CACHES", "BACKEND", "cache")):
        configured = getattr(settings, kind, None) or {}
        for alias, config in configured.items() if isinstance(configured, dict) else ():
            backend = config.get(key) if isinstance(config, dict) else None
            if isinstance(backend, str) and backend.startswith("django_prometheus."):
                found.append(Warning(
                    f"{kind}[{alias!r}][{key!r}] = {backend!r} is django-prometheus's "
                    "instrumented backend.",
                    hint=f"Use Django's own backend ({_django_backend(backend)!r}) and "
                    f"{_hooks_with(hook)}.", id="django_statsd_push.W003"))
    return found


def _django_backend(backend: str) -> str:
    """django_prometheus.db.backends.postgresql -> django.db.backends.postgresql."""
    exact = {
        "django_prometheus.cache.backends.redis.RedisCache": "django_redis.cache.RedisCache",
        "django_prometheus.cache.backends.redis.NativeRedisCache":
            "django.core.cache.backends.redis.RedisCache",
        "django_prometheus.db.backends.postgis": "django.contrib.gis.db.backends.postgis",
        "django_prometheus.db.backends.spatialite": "django.contrib.gis.db.backends.spatialite",
    }
    if backend in exact:
        return exact[backend]
    for old, new in (("django_prometheus.db.", "django.db."),
                     ("django_prometheus.cache.", "django.core.cache.")):
        if backend.startswith(old):
            return new + backend[len(old):]
    return backend
