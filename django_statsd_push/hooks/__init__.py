"""Instrumentation hooks (DB, cache, models, migrations, Celery), switched on by STATSD_HOOKS.

Each hook module exposes ``install()`` and ``uninstall()``; both are idempotent, so
``install_enabled()`` can run from ``AppConfig.ready()`` as often as Django calls it
(some test setups call ``ready()`` twice) without counting anything twice.

``install_enabled()`` also runs again whenever ``STATSD_HOOKS`` or
``STATSD_EXPORT_MIGRATIONS`` change (``override_settings``), so a project's tests can
switch a hook on for one test and off again afterwards.

The model mixin (:class:`django_statsd_push.hooks.models.StatsdModelMixin`) works
whatever ``STATSD_HOOKS`` says: using it on a model is the opt-in.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger("django_statsd_push")

# hook name in STATSD_HOOKS -> module holding install()/uninstall()
MODULES = {
    "db": "django_statsd_push.hooks.db",
    "cache": "django_statsd_push.hooks.cache",
    "models": "django_statsd_push.hooks.models",
    "migrations": "django_statsd_push.hooks.migration_gauges",
    "celery": "django_statsd_push.hooks.celery",
}

_installed: set[str] = set()
_watching = False


def wanted() -> set[str]:
    """The hooks the current settings ask for; unknown names are logged by name and
    skipped (check E009 reports them too), so the known ones still install."""
    from django_statsd_push.conf import settings as conf

    raw = conf.hooks
    if not isinstance(raw, (list, tuple, set, frozenset)):  # reported by check E009
        logger.error("statsd: STATSD_HOOKS = %r is not a list: no hooks installed", raw)
        raw = ()
    names = {name for name in raw if name in MODULES}
    for name in raw:
        if name not in MODULES:
            logger.error(
                "statsd: unknown hook %r in STATSD_HOOKS ignored (known: %s)",
                name, ", ".join(MODULES),
            )
    if conf.export_migrations is True:
        # STATSD_EXPORT_MIGRATIONS = True and "migrations" in STATSD_HOOKS mean the same.
        names.add("migrations")
    return names


def install_enabled() -> None:
    """Install the hooks named in settings and remove the others; safe to call repeatedly.

    ``AppConfig.ready()`` calls it, and so does every change of ``STATSD_HOOKS`` or
    ``STATSD_EXPORT_MIGRATIONS``; a script without the app installed can call it too:

        >>> from django_statsd_push import hooks
        >>> hooks.install_enabled()
        >>> hooks.installed()
        frozenset({'db', 'cache'})
    """
    global _watching
    if not _watching:
        from django.core.signals import setting_changed

        setting_changed.connect(_on_setting_changed, dispatch_uid="django_statsd_push.hooks")
        _watching = True
    target = wanted()
    for name in sorted(_installed - target):
        _call(name, "uninstall")
    for name in sorted(target - _installed):
        _call(name, "install")


def installed() -> frozenset[str]:
    """The hooks installed now (after install_enabled())."""
    return frozenset(_installed)


def _call(name: str, action: str) -> None:
    # A hook that cannot install (Celery missing, a backend refusing the wrapper) costs
    # its metrics, never the start of the project.
    try:
        getattr(importlib.import_module(MODULES[name]), action)()
    except ImportError as exc:  # an optional extra that is not installed
        logger.warning("statsd: the %r hook is not available (%s)", name, exc)
        return
    except Exception:
        logger.exception("statsd: cannot %s the %r hook", action, name)
        return
    if action == "install":
        _installed.add(name)
    else:
        _installed.discard(name)


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting in ("STATSD_HOOKS", "STATSD_EXPORT_MIGRATIONS"):
        install_enabled()
