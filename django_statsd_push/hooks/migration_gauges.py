"""Migration gauges: ``migrations.<alias>.applied|unapplied`` for every database alias.

Why: a deploy that forgot ``migrate`` on one database shows up as ``unapplied > 0`` on
a dashboard (and can be alerted on) before the first request fails on it.

Sent by ``manage.py statsd_migrations`` (deploy scripts) and, with
``STATSD_EXPORT_MIGRATIONS = True`` (or ``"migrations"`` in ``STATSD_HOOKS``), once per
process at startup. "At startup" means: when the process handles its first request
(``request_started``), in a background thread. Not in ``AppConfig.ready()``, where
Django warns against queries and where every management command (``migrate`` itself
included) would pay for it; not in the request's thread, so the first request does not
wait for the connections to every database. Worker processes that never serve a
request (Celery) do not send it; the management command covers them.

Counting: the migration graph on disk (as ``migrate`` sees it, squashed migrations
resolved) against the ``django_migrations`` table of that database. A database that
cannot be reached or read sends ``-1`` for both and logs a warning; the dummy backend
(``DATABASES = {}``) is skipped.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NamedTuple

from django.core.signals import request_started
from django.db import connections

from django_statsd_push import names
from django_statsd_push.client import statsd

logger = logging.getLogger("django_statsd_push")

_UID = "django_statsd_push.hooks.migration_gauges"
UNREACHABLE = -1

startup_thread: threading.Thread | None = None
"""The thread of the startup export once started (tests join it)."""
_lock = threading.Lock()


class MigrationState(NamedTuple):
    alias: str
    applied: int
    unapplied: int
    error: str | None = None


def is_dummy(alias: str) -> bool:
    return connections.settings[alias]["ENGINE"] == "django.db.backends.dummy"


def count(alias: str) -> MigrationState:
    """Applied and unapplied migrations on one database; -1 when it cannot be read."""
    from django.db.migrations.loader import MigrationLoader

    try:
        loader = MigrationLoader(connections[alias], ignore_no_migrations=True)
        nodes = set(loader.graph.nodes)
        applied = len(nodes.intersection(loader.applied_migrations))
    except Exception as exc:
        logger.warning("statsd: cannot read the migrations of database %r: %s", alias, exc)
        return MigrationState(alias, UNREACHABLE, UNREACHABLE, f"{type(exc).__name__}: {exc}")
    return MigrationState(alias, applied, len(nodes) - applied)


def export(aliases: Any = None) -> list[MigrationState]:
    """Count and send the gauges for ``aliases`` (default: every non-dummy alias)."""
    states = []
    for alias in connections if aliases is None else aliases:
        if is_dummy(alias):
            continue
        state = count(alias)
        statsd.gauge(names.migrations(alias, "applied"), state.applied)
        statsd.gauge(names.migrations(alias, "unapplied"), state.unapplied)
        states.append(state)
    return states


def _export_and_close() -> None:
    try:
        export()
    except Exception:
        logger.exception("statsd: migration gauges not sent")
    finally:
        # The connections this thread opened belong to it alone: close them.
        connections.close_all()


def _on_first_request(**_: Any) -> None:
    global startup_thread
    request_started.disconnect(dispatch_uid=_UID)
    with _lock:  # two first requests in two threads start one export
        if startup_thread is not None:
            return
        startup_thread = threading.Thread(
            target=_export_and_close, name="django-statsd-push-migrations", daemon=True
        )
        startup_thread.start()


def install() -> None:
    if startup_thread is None:  # once per process
        request_started.connect(_on_first_request, dispatch_uid=_UID)


def uninstall() -> None:
    request_started.disconnect(dispatch_uid=_UID)


def reset_for_tests() -> None:
    """Forget that the startup export ran (tests; the next install arms it again)."""
    global startup_thread
    startup_thread = None
