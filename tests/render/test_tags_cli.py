"""``statsd-push render --tagdb/--events-db`` as a real process: tagged series already on disk
are indexed at start, events land in the given file, a bad store is a clear exit."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request

from django_statsd_push.render import cli, tagdb

from .conftest import write_metric
from .test_cli import REPO


def test_stores_given_on_the_command_line(root, tmp_path):
    path = "web.hits;env=prod"
    readable = tagdb.whisper_paths(str(root), path)[1]
    write_metric(root, readable[len(str(root)) + 1:-4].replace("/", "."), [5])
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", str(root),
                             "--port", "0", "--tagdb", str(tmp_path / "t.db"), "--events-db", str(tmp_path / "e.db")],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].split()[0]
        with urllib.request.urlopen(url + "/tags/findSeries?expr=env=prod", timeout=10) as r:
            assert json.load(r) == [path]
        request = urllib.request.Request(url + "/events/", data=b'{"what": "deploy", "tags": "deploy"}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        finally:
            proc.stdout.close()
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("SELECT path FROM series").fetchall() == [(path,)]
    with sqlite3.connect(tmp_path / "e.db") as db:
        assert db.execute("SELECT what, tags FROM events").fetchall() == [("deploy", "deploy")]
    assert not (root.parent / "tagdb.sqlite3").exists()


def test_unreachable_redis_is_a_clear_error(root, capsys):
    assert cli.main(["--whisper-root", str(root), "--port", "0", "--tagdb", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot reach the tag database" in capsys.readouterr().err
