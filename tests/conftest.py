"""Shared test helpers: services the tests need, and how to find out they are missing.

A test that needs a server it cannot reach fails when ``CI=true`` and skips with a
reason elsewhere, so a laptop without MariaDB still runs the rest.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tcp_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(condition: bool, reason: str) -> None:
    """Skip (or fail in CI) when a real service or program a test needs is missing.

    Works in a test, at the top of a test module and at the top of a folder's conftest.py
    (which then skips the folder).
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason, allow_module_level=True)


def require_program(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    return path  # type: ignore[return-value]


def require_tcp(host: str, port: int, what: str) -> None:
    require(tcp_reachable(host, port), f"{what} is not reachable on {host}:{port}")


def require_import(module: str) -> ModuleType:
    """The module, imported; skip (or fail in CI) when that package is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        require(False, f"{module} is not installed ({exc})")
        raise  # unreachable: require() skipped or failed


@pytest.fixture(scope="session")
def etsy_js() -> Path:
    """etsy statsd 0.9's ``stats.js`` (tests/server/etsy.py installs it with npm once), the
    oracle of the daemon's output; skips, or fails in CI, without node or npm."""
    from tests.server.etsy import install

    require_program("node")
    js = install()
    require(js is not None, "etsy statsd could not be installed with npm")
    return js


@pytest.fixture
def held_port() -> Iterator[Callable[..., int]]:
    """``held_port(host="127.0.0.1")``: a TCP port held until the test ends (see
    ``PortHold``), for a program the test tells the number (carbon, node, Prometheus,
    runserver, ``CarbonCapture(port)``: all bind with SO_REUSEADDR), or for nothing at all:
    until something listens, a connect is refused, and no other program can take it.

    Where the program can bind port 0 and say which port it got, use that instead.
    """
    from django_statsd_push.stack.health import PortHold

    with contextlib.ExitStack() as holds:
        yield lambda host="127.0.0.1": holds.enter_context(PortHold(host)).port
