"""DB hook on real SQLite, PostgreSQL and MariaDB: every query timed, errors counted."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.db.utils import DatabaseError

from django_statsd_push import hooks
from django_statsd_push.hooks import db as db_hook
from django_statsd_push.testing import capture_metrics

from .conftest import database, request_lines

DDL = "CREATE TEMPORARY TABLE hooks_t (id integer PRIMARY KEY, name varchar(20))"


@pytest.fixture
def db_hook_on(settings):
    settings.STATSD_HOOKS = ["db"]
    assert "db" in hooks.installed()
    yield
    settings.STATSD_HOOKS = []


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def any_db(request, db_hook_on):
    if request.param == "sqlite":
        request.getfixturevalue("db")
        return connection
    return request.getfixturevalue(request.param)


def run_workload(conn) -> DatabaseError:
    """select, insert, executemany, update, delete and one failing query."""
    with conn.cursor() as cursor:
        cursor.execute(DDL)
        cursor.execute("INSERT INTO hooks_t (id, name) VALUES (%s, %s)", [1, "one"])
        cursor.executemany(
            "INSERT INTO hooks_t (id, name) VALUES (%s, %s)", [(2, "two"), (3, "three")]
        )
        cursor.execute("UPDATE hooks_t SET name = %s WHERE id = %s", ["uno", 1])
        cursor.execute("SELECT name FROM hooks_t ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == ["uno", "two", "three"]
        cursor.execute("DELETE FROM hooks_t WHERE id = %s", [3])
        with pytest.raises(DatabaseError) as failure:
            cursor.execute("SELECT * FROM hooks_no_such_table")
        cursor.execute("DROP TABLE hooks_t")
    return failure.value


def test_every_query_timed_and_error_counted(any_db):
    alias, vendor = any_db.alias, any_db.vendor
    with capture_metrics() as metrics:
        error = run_workload(any_db)
    base = f"db.{alias}.{vendor}"
    metrics.assert_timing(f"{base}.insert", count=2)  # execute + one executemany
    metrics.assert_timing(f"{base}.update", count=1)
    metrics.assert_timing(f"{base}.delete", count=1)
    metrics.assert_timing(f"{base}.select", count=2)  # the good one and the failing one
    metrics.assert_timing(f"{base}.other", count=2)  # CREATE, DROP
    # Django's own class (django.db.utils.*), named as such.
    assert type(error).__module__ == "django.db.utils"
    metrics.assert_incr(f"db.{alias}.errors.{type(error).__name__}", value=1, count=1)
    assert len(metrics.filter(type="c")) == 1


def test_the_database_error_reaches_the_caller_unchanged(any_db):
    seen = []

    def inner(execute, sql, params, many, context):  # runs inside ours
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            seen.append(exc)
            raise

    with any_db.execute_wrapper(inner), any_db.cursor() as cursor:
        with pytest.raises(DatabaseError) as failure:
            cursor.execute("SELECT * FROM hooks_no_such_table")
    assert failure.value is seen[0]
    assert failure.value.__cause__ is seen[0].__cause__  # the driver's error still chained


@pytest.mark.django_db
def test_queries_sent_as_real_datagrams(udp, db_hook_on):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        with pytest.raises(DatabaseError):
            cursor.execute("SELEC oops")
    lines = udp.lines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("db.default.sqlite.select:") and lines[0].endswith("|ms")
    assert float(lines[0].split(":")[1].split("|")[0]) >= 0
    assert lines[1] == "db.default.errors.OperationalError:1|c"
    assert lines[2].startswith("db.default.sqlite.other:")


@pytest.mark.django_db
def test_request_counts_its_queries_in_one_datagram(udp, db_hook_on, settings, client):
    lines = request_lines(client, udp, settings, "/three-queries/")
    assert sum(line.startswith("db.default.sqlite.select:") for line in lines) == 3
    assert "request.three_queries.GET.db_queries:3.000000|ms" in lines
    db_time = [line for line in lines if line.startswith("request.three_queries.GET.db_time:")]
    assert len(db_time) == 1 and float(db_time[0].split(":")[1].split("|")[0]) > 0


def test_installing_twice_counts_once(db_hook_on, unblocked, tmp_path):
    hooks.install_enabled()
    db_hook.install()
    db_hook.install()
    with database("hooks_twice", {"ENGINE": "django.db.backends.sqlite3",
                                  "NAME": str(tmp_path / "twice.sqlite3")}) as conn:
        with capture_metrics() as metrics:
            conn.cursor().execute("SELECT 1")  # connects: connection_created
            conn.close()
            db_hook.install()
            conn.cursor().execute("SELECT 2")  # a second connection, same wrapper object
        assert conn.execute_wrappers.count(db_hook.time_query) == 1
        metrics.assert_timing("db.hooks_twice.sqlite.select", count=2)


def test_project_wrapper_block_does_not_remove_ours(db_hook_on, unblocked, tmp_path):
    """Ours is attached inside the project's block (first connect): its pop must take its own."""
    def project_wrapper(execute, sql, params, many, context):
        return execute(sql, params, many, context)

    with database("hooks_block", {"ENGINE": "django.db.backends.sqlite3",
                                  "NAME": str(tmp_path / "block.sqlite3")}) as conn:
        with conn.execute_wrapper(project_wrapper):
            conn.cursor().execute("SELECT 1")
        assert conn.execute_wrappers == [db_hook.time_query]


def test_connections_of_other_threads_are_wrapped(db_hook_on, unblocked, tmp_path):
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "t.sqlite3")}
    errors = []

    def work():
        try:
            connections["hooks_thread"].cursor().execute("SELECT 1")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections["hooks_thread"].close()

    with database("hooks_thread", config), capture_metrics() as metrics:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert not errors
    metrics.assert_timing("db.hooks_thread.sqlite.select", count=1)


@pytest.mark.django_db
def test_switched_off_sends_nothing(settings):
    settings.STATSD_HOOKS = ["db"]
    with capture_metrics() as metrics:
        connection.cursor().execute("SELECT 1")
    metrics.assert_timing("db.default.sqlite.select", count=1)  # on: the same query counts
    settings.STATSD_HOOKS = []
    assert "db" not in hooks.installed()
    assert db_hook.time_query not in connection.execute_wrappers
    with capture_metrics() as metrics:
        connection.cursor().execute("SELECT 1")
    assert metrics.records == []


def test_a_wrapper_left_behind_sends_nothing_once_off(settings, unblocked, tmp_path):
    """uninstall() reaches the installing thread's connections only: a connection another
    thread opened while the hook was on keeps our wrapper, which must then go quiet."""
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "left.sqlite3")}
    settings.STATSD_HOOKS = ["db"]
    connected, switched_off, done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def other_thread():
        conn = connections["hooks_left"]
        try:
            conn.cursor().execute("SELECT 0")  # connects with the hook on
            seen["wrapped"] = db_hook.time_query in conn.execute_wrappers
            connected.set()
            assert switched_off.wait(30)
            seen["still_wrapped"] = db_hook.time_query in conn.execute_wrappers
            conn.cursor().execute("SELECT 1")
        finally:
            conn.close()
            done.set()

    with database("hooks_left", config), capture_metrics() as metrics:
        worker = threading.Thread(target=other_thread)
        worker.start()
        assert connected.wait(30)
        settings.STATSD_HOOKS = []
        metrics.clear()
        switched_off.set()
        assert done.wait(30)
        worker.join()
    assert seen == {"wrapped": True, "still_wrapped": True}
    assert metrics.records == []


def test_verb():
    assert db_hook.verb("SELECT 1") == "select"
    assert db_hook.verb("  (SELECT 1) UNION (SELECT 2)") == "select"
    assert db_hook.verb("insert into t values (1)") == "insert"
    assert db_hook.verb("WITH x AS (SELECT 1) SELECT * FROM x") == "other"
    assert db_hook.verb(b"SELECT 1") == "other"
