"""The example project, for real: migrate, seed_polls, runserver, every URL of the
contract, and the datagrams it sends to a UDP socket."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_statsd_push.stack.health import PortHold
from tests.conftest import require_import

MANAGE = Path(__file__).resolve().parents[2] / "examples" / "manage.py"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@pytest.fixture
def example_env(tmp_path, receiver):
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        EXAMPLE_DB=str(tmp_path / "db.sqlite3"),
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(receiver.port),
        STATSD_PREFIX="example",
    )
    return env


def manage(env, *args):
    return subprocess.run(
        [sys.executable, str(MANAGE), *args], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )


SERVERS = {
    "runserver (WSGI)": lambda port: [
        sys.executable, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{port}",
    ],
    "uvicorn (ASGI)": lambda port: [
        sys.executable, "-m", "uvicorn", "--app-dir", str(MANAGE.parent),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "exampleproject.asgi:application",
    ],
}


@contextlib.contextmanager
def example_server(env: dict[str, str], command) -> Iterator[str]:
    """The base URL of the example project served by ``command(port)`` (a value of
    SERVERS), once its /healthz answers; the server is stopped on exit.

    The port is held for it (both bind with SO_REUSEADDR; runserver cannot say which
    port 0 gave it): a port picked and let go could be taken before the server binds it.
    """
    # uvicorn imports the project by name: the checkout and examples/ on the path.
    paths = [str(MANAGE.parents[1]), str(MANAGE.parent), env.get("PYTHONPATH", "")]
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, paths)))
    with PortHold() as hold:
        server = subprocess.Popen(command(hold.port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{hold.port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if get(f"{base}/healthz") == (200, b"ok"):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
            yield base
        finally:
            server.terminate()
            server.wait(10)


@pytest.mark.parametrize("server_command", SERVERS.values(), ids=SERVERS.keys())
def test_example_project_end_to_end(example_env, receiver, server_command):
    manage(example_env, "migrate", "-v0")
    assert "20 questions created" in manage(example_env, "seed_polls").stdout
    assert "0 questions created" in manage(example_env, "seed_polls").stdout
    receiver.datagrams(timeout=0.05)  # whatever migrate sent

    with example_server(example_env, server_command) as base:
        assert get(f"{base}/")[0] == 200
        status, body = get(f"{base}/polls/")
        assert status == 200 and body.count(b"<li>") == 20
        assert get(f"{base}/polls/1/")[0] == 200
        assert get(f"{base}/polls/999/")[0] == 404
        assert get(f"{base}/cached/")[0] == 200
        assert get(f"{base}/slow/")[0] == 200
        assert get(f"{base}/error/")[0] == 500
        assert get(f"{base}/nowhere/")[0] == 404

        expected_names = [
            "example.request.healthz.GET",
            "example.request.index.GET",
            "example.example.index.visits",
            "example.request.polls_list.GET",
            "example.request.polls_detail.GET",
            "example.example.detail.render",
            "example.request.cached.GET",
            "example.request.slow.GET",
            "example.request.error.GET",
            "example.request.exception.RuntimeError",
            "example.request.unresolved.GET",
            "example.response.500",
            "example.response.404",
            "example.response.2xx",
        ]
        # The server sends a request's datagram as the response closes, which may be
        # after the client has read it: gather until every name is in, or a deadline.
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not set(expected_names) <= {line.split(":")[0] for line in lines} and time.monotonic() < deadline:
            lines += receiver.lines(timeout=1.0)
        names = {line.split(":")[0] for line in lines}
        for expected in expected_names:
            assert expected in names, (expected, sorted(names))
        slow = [line for line in lines if line.startswith("example.request.slow.GET:")][0]
        assert float(slow.split(":")[1].split("|")[0]) >= 100


def test_example_pages_link_to_every_view_and_show_the_toolbar_in_debug(example_env):
    """With EXAMPLE_DEBUG=1 and django-debug-toolbar installed, each page has the toolbar
    with the StatsD panel; every page links to every view of the example."""
    require_import("debug_toolbar")
    manage(example_env, "migrate", "-v0")
    manage(example_env, "seed_polls")
    code = (
        "from django.test import Client; import json, re; page = Client().get('/polls/').content.decode(); "
        "print(json.dumps(re.findall(r'href=\"(/[^\"]*)\"', page))); "
        "print('StatsdPanel' in page, 'sendBeacon' in page)"
    )
    out = manage(dict(example_env, EXAMPLE_DEBUG="1"), "shell", "-c", code).stdout.splitlines()
    links = json.loads(out[-2])
    for path in ["/", "/polls/", "/polls/1/", "/cached/", "/slow/", "/error/", "/nowhere/", "/healthz"]:
        assert path in links, (path, links)
    assert out[-1] == "True True"
