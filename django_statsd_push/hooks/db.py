"""DB hook: time every query as ``db.<alias>.<vendor>.<verb>``, count errors.

Why ``execute_wrapper`` and not a replacement ENGINE: the project keeps its own backend
(psycopg 3 with pools, PostGIS, a vendor's fork), its persistent connections and its
``CONN_HEALTH_CHECKS``; Django calls the wrapper around every ``cursor.execute`` and
``executemany``, ORM or raw.

The wrapper is attached to each connection object when it connects
(``connection_created``) and, at install time, to the connections already opened in
the installing thread. It goes FIRST in ``execute_wrappers``, so a project's own
``with connection.execute_wrapper(...)`` block, which pops the LAST wrapper on exit,
can never remove ours (or have ours removed in its place).

``executemany`` is one query (one round trip, as in ``connection.queries``).
A failing query is timed, counted in ``db.<alias>.errors.<Class>`` (Django's class:
``IntegrityError``, ``ProgrammingError``, ``OperationalError``...) and re-raised unchanged.
Inside a request, each query also feeds the request's ``db_queries``/``db_time``.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from django_statsd_push import names
from django_statsd_push.client import current_batch, statsd

_UID = "django_statsd_push.hooks.db"
_VERBS = {"select": "select", "insert": "insert", "update": "update", "delete": "delete"}
# What the ORM writes: the first six characters say it, no stripping or lowering.
_ORM_VERBS = {word.upper(): word for word in _VERBS}
_active = False
_timing, _incr, _db_query = statsd.timing, statsd.incr, names.db_query


def verb(sql: Any) -> str:
    """select/insert/update/delete/other from the statement's first word."""
    if not isinstance(sql, str):  # psycopg.sql.Composed and the like
        return "other"
    found = _ORM_VERBS.get(sql[:6])
    if found is not None:
        return found
    # lstrip returns the same object when there is nothing to strip: no copy of long SQL.
    return _VERBS.get(sql.lstrip(" \t\r\n(")[:6].lower(), "other")


def time_query(execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """The execute wrapper (Django's signature). Hot path: every query passes here."""
    if not _active:  # uninstalled: a copy left on another thread's connection
        return execute(sql, params, many, context)
    start = perf_counter()
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        try:
            _incr(names.db_error(context["connection"].alias, type(exc).__name__))
        except Exception:
            pass
        raise
    finally:
        ms = (perf_counter() - start) * 1000.0
        try:
            connection = context["connection"]
            _timing(_db_query(connection.alias, connection.vendor, verb(sql)), ms)
            batch = current_batch()
            if batch is not None:
                batch.add_query(ms)
        except Exception:
            pass


def attach(connection: Any) -> None:
    """Put the wrapper on one connection object, once."""
    if time_query not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, time_query)


def _on_connection_created(sender: Any, connection: Any, **_: Any) -> None:
    attach(connection)


def install() -> None:
    global _active
    _active = True
    connection_created.connect(_on_connection_created, dispatch_uid=_UID)
    for connection in connections.all(initialized_only=True):
        attach(connection)


def uninstall() -> None:
    global _active
    _active = False
    connection_created.disconnect(dispatch_uid=_UID)
    for connection in connections.all(initialized_only=True):
        while time_query in connection.execute_wrappers:
            connection.execute_wrappers.remove(time_query)
