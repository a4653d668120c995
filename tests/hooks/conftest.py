"""Fixtures for the hook tests: real UDP receiver, hooks switched on per test, and
extra database aliases pointing at the real PostgreSQL / MariaDB servers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from django_statsd_push import hooks
from django_statsd_push.client import statsd
# The real UDP receiver and the ``udp`` settings fixture are the client tests' own.
from tests.client.conftest import receiver, udp  # noqa: F401
from tests.conftest import require_import, require_tcp

POSTGRES = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": "127.0.0.1", "PORT": 5432, "USER": "postgres", "NAME": "test",
}
MARIADB = {
    "ENGINE": "django.db.backends.mysql",
    "HOST": "127.0.0.1", "PORT": 3306, "USER": "root", "PASSWORD": "", "NAME": "test",
}


@pytest.fixture(autouse=True)
def _fresh_client_and_hooks():
    statsd.reset()
    yield
    statsd.reset()
    hooks.install_enabled()  # back to what the (restored) settings say


@contextlib.contextmanager
def database(alias: str, config: dict[str, Any]) -> Iterator[Any]:
    """A database alias added for the duration of the block, connection closed after.

    The real server's database is used as is (no test database): the tests only make
    temporary tables, or a database of their own they drop.
    """
    configured = connections.configure_settings({"default": {}, alias: dict(config)})
    connections.settings[alias] = configured[alias]
    try:
        yield connections[alias]
    finally:
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


def request_lines(client: Any, udp: Any, settings: Any, url: str) -> list[str]:
    """GET ``url`` (tests/hooks/urls.py) through the middleware: its one datagram's lines."""
    settings.ROOT_URLCONF = "tests.hooks.urls"
    settings.MIDDLEWARE = ["django_statsd_push.middleware.StatsdMiddleware"]
    assert client.get(url).status_code == 200
    datagrams = udp.datagrams()
    assert len(datagrams) == 1, datagrams
    return datagrams[0].split("\n")


@pytest.fixture
def unblocked(django_db_blocker):
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def postgres(unblocked):
    require_import("psycopg")
    require_tcp("127.0.0.1", 5432, "PostgreSQL")
    with database("hooks_pg", POSTGRES) as connection:
        yield connection


@pytest.fixture
def mariadb(unblocked):
    require_import("MySQLdb")
    require_tcp("127.0.0.1", 3306, "MariaDB")
    with database("hooks_maria", MARIADB) as connection:
        yield connection
