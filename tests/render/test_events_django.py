"""Deploy markers from Django: ``manage.py statsd_event`` and ``send_event`` post to a real
render API over HTTP; the event is then in get_data and in the events() function.
Failures never raise into the caller."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from django.core.management import call_command

from django_statsd_push.checks import check_settings
from django_statsd_push.events import send_event, split_tags
from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.events import EventStore
from django_statsd_push.render.httpserver import BackgroundServer


@pytest.fixture
def server(tmp_path):
    (tmp_path / "whisper").mkdir()
    store = EventStore(str(tmp_path / "events.sqlite3"))
    with BackgroundServer(RenderApp(str(tmp_path / "whisper"), static_dir=None, events=store)) as url:
        yield url
    store.close()


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_command_records_a_deploy_marker(server, settings):
    settings.STATSD_EVENTS_URL = server + "/events/"
    out = io.StringIO()
    before = int(time.time())
    call_command("statsd_event", "deploy v1.4", "--tags", "deploy,web", "--data", "sha abc", stdout=out)
    assert "recorded" in out.getvalue()
    (event,) = get_json(server + "/events/get_data?tags=deploy")
    assert (event["what"], event["tags"], event["data"]) == ("deploy v1.4", ["deploy", "web"], "sha abc")
    assert before <= event["when"] <= time.time() + 1
    doc = get_json(server + "/render?target=events('deploy','web')&from=-5min&format=json")
    marked = [t for v, t in doc[0]["datapoints"] if v == 1]
    assert marked == [min(event["when"], doc[0]["datapoints"][-1][1])]  # "now" falls in the last second


def test_send_event_from_python(server):
    when = int(time.time()) - 3600
    assert send_event("migrate", tags=["db"], data="3 migrations", when=when, url=server + "/events/")
    (event,) = get_json(server + "/events/get_data?tags=db")
    assert (event["when"], event["what"], event["data"]) == (when, "migrate", "3 migrations")


def test_failures_never_raise(server, settings, caplog, held_port):
    settings.STATSD_EVENTS_URL = None
    assert send_event("x") is False  # nowhere to send
    closed_port = held_port()  # refuses connections, and nothing else can listen there
    assert send_event("x", url=f"http://127.0.0.1:{closed_port}/events/") is False
    assert send_event("x", url="not a url") is False
    assert send_event("x" * 1000, url=server + "/events/") is False  # the server's 400
    assert send_event("x", tags=object(), url=server + "/events/") is False  # a bad argument
    with socket.socket() as silent:  # accepts, never answers: the timeout bounds the wait
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        assert send_event("x", url=f"http://127.0.0.1:{silent.getsockname()[1]}/events/", timeout=0.5) is False
        assert time.monotonic() - started < 5
    assert "not recorded" in caplog.text
    settings.STATSD_EVENTS_URL = f"http://127.0.0.1:{closed_port}/events/"
    err = io.StringIO()
    call_command("statsd_event", "deploy", stderr=err, stdout=io.StringIO())  # exits normally
    assert "not recorded" in err.getvalue()
    assert get_json(server + "/events/get_data") == []


def test_split_tags():
    assert split_tags("deploy,web") == split_tags("deploy web") == split_tags(["deploy", "web"]) == ["deploy", "web"]
    assert split_tags(None) == []


@pytest.mark.parametrize("value, ok", [(None, True), ("http://127.0.0.1:8080/events/", True),
                                       ("https://graphite.example/events/", True), ("127.0.0.1:8080", False),
                                       ("ftp://x/events/", False), (8080, False), ("http://", False)])
def test_system_check(settings, value, ok):
    settings.STATSD_EVENTS_URL = value
    ids = [e.id for e in check_settings()]
    assert ("django_statsd_push.E020" not in ids) is ok


def test_django_side_does_not_import_the_daemon_side():
    code = ("import django_statsd_push.events, django_statsd_push.management.commands.statsd_event, sys; "
            "print(sorted(m for m in sys.modules if m.startswith('django_statsd_push.render')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
