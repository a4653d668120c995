"""Migration gauges on two real databases (PostgreSQL + SQLite) in different states."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.loader import MigrationLoader

from django_statsd_push.hooks import migration_gauges
from django_statsd_push.testing import capture_metrics
from tests.conftest import require_import, require_tcp

from .conftest import POSTGRES, database

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def graph_counts() -> tuple[int, int]:
    """(all migrations on disk, those of contenttypes)."""
    nodes = MigrationLoader(None, ignore_no_migrations=True).graph.nodes
    return len(nodes), sum(1 for app, _ in nodes if app == "contenttypes")


@pytest.fixture
def pg_half_migrated(unblocked):
    """A fresh PostgreSQL database where only contenttypes is migrated."""
    psycopg = require_import("psycopg")
    require_tcp("127.0.0.1", 5432, "PostgreSQL")
    name = f"hooks_migr_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with database("hooks_pg_migr", {**POSTGRES, "NAME": name}):
            call_command("migrate", "contenttypes", database="hooks_pg_migr", verbosity=0)
            yield "hooks_pg_migr"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_migrated(unblocked, tmp_path):
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "m.sqlite3")}
    with database("hooks_sqlite_migr", config):
        call_command("migrate", database="hooks_sqlite_migr", verbosity=0)
        yield "hooks_sqlite_migr"


@pytest.fixture
def unreachable(unblocked, held_port):
    port = held_port()  # refuses connections, and nothing else can listen there
    config = {**POSTGRES, "PORT": port, "OPTIONS": {"connect_timeout": 2}}
    with database("hooks_down", config):
        yield "hooks_down"


@pytest.fixture
def dummy(unblocked):
    with database("hooks_dummy", {"ENGINE": "django.db.backends.dummy"}):
        yield "hooks_dummy"


def test_two_databases_in_different_states(pg_half_migrated, sqlite_migrated):
    total, contenttypes = graph_counts()
    assert 0 < contenttypes < total
    with capture_metrics() as metrics:
        states = migration_gauges.export([pg_half_migrated, sqlite_migrated])
    assert [(s.alias, s.applied, s.unapplied) for s in states] == [
        (pg_half_migrated, contenttypes, total - contenttypes),
        (sqlite_migrated, total, 0),
    ]
    metrics.assert_gauge(f"migrations.{pg_half_migrated}.applied", contenttypes, count=1)
    metrics.assert_gauge(f"migrations.{pg_half_migrated}.unapplied", total - contenttypes,
                         count=1)
    metrics.assert_gauge(f"migrations.{sqlite_migrated}.applied", total, count=1)
    metrics.assert_gauge(f"migrations.{sqlite_migrated}.unapplied", 0, count=1)


def test_command_sends_real_datagrams(udp, pg_half_migrated, sqlite_migrated, capsys):
    total, contenttypes = graph_counts()
    call_command("statsd_migrations", database=[pg_half_migrated, sqlite_migrated])
    assert udp.lines() == [
        f"migrations.{pg_half_migrated}.applied:{contenttypes}|g",
        f"migrations.{pg_half_migrated}.unapplied:{total - contenttypes}|g",
        f"migrations.{sqlite_migrated}.applied:{total}|g",
        f"migrations.{sqlite_migrated}.unapplied:0|g",
    ]
    out = capsys.readouterr().out
    assert f"{pg_half_migrated}: {contenttypes} applied, {total - contenttypes} unapplied" in out
    # --check fails on the half-migrated database, not on the migrated one.
    call_command("statsd_migrations", database=[sqlite_migrated], check=True)
    with pytest.raises(CommandError, match="unapplied"):
        call_command("statsd_migrations", database=[pg_half_migrated], check=True)


def test_unreachable_database_sends_minus_one_and_warns(unreachable, caplog):
    with capture_metrics() as metrics, caplog.at_level(logging.WARNING, "django_statsd_push"):
        (state,) = migration_gauges.export([unreachable])
    assert (state.applied, state.unapplied) == (-1, -1) and "OperationalError" in state.error
    # A negative gauge goes out as 0 then -1 (a bare "-1|g" would be a decrement).
    for kind in ("applied", "unapplied"):
        values = [r.value for r in metrics.filter(f"migrations.{unreachable}.{kind}", "g")]
        assert values == ["0", "-1"]
    assert any(unreachable in r.getMessage() for r in caplog.records)


def test_dummy_backend_is_skipped(dummy):
    with capture_metrics() as metrics:
        assert migration_gauges.export([dummy]) == []
    assert metrics.records == []


def test_unknown_alias_is_a_command_error():
    with pytest.raises(CommandError, match="unknown database alias nope"):
        call_command("statsd_migrations", database=["nope"])


@pytest.mark.django_db(transaction=True)
def test_startup_export_on_first_request(settings, client, sqlite_migrated):
    total, _ = graph_counts()
    settings.ROOT_URLCONF = "tests.hooks.urls"
    migration_gauges.reset_for_tests()
    settings.STATSD_EXPORT_MIGRATIONS = True
    try:
        assert migration_gauges.startup_thread is None  # nothing during install
        with capture_metrics() as metrics:
            client.get("/three-queries/")
            thread = migration_gauges.startup_thread
            assert thread is not None
            thread.join(timeout=30)
            assert not thread.is_alive()
            client.get("/three-queries/")  # once per process
            assert migration_gauges.startup_thread is thread
        metrics.assert_gauge(f"migrations.{sqlite_migrated}.applied", total, count=1)
        metrics.assert_gauge(f"migrations.{sqlite_migrated}.unapplied", 0, count=1)
        metrics.assert_gauge("migrations.default.unapplied", 0, count=1)
    finally:
        settings.STATSD_EXPORT_MIGRATIONS = False
        migration_gauges.reset_for_tests()
