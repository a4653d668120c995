"""``statsd-push render --tagdb/--events-db`` as a real process: tagged series already on disk
are indexed at start, events land in the given file, a bad store is a clear exit."""

from __future__ import annotations

import json
import sqlite3
import urllib.request

from django_statsd_push.render import cli, tagdb

from .conftest import render_process, write_metric


def test_stores_given_on_the_command_line(root, tmp_path):
    path = "web.hits;env=prod"
    readable = tagdb.whisper_paths(str(root), path)[1]
    write_metric(root, readable[len(str(root)) + 1:-4].replace("/", "."), [5])
    with render_process(root, "--tagdb", str(tmp_path / "t.db"), "--events-db", str(tmp_path / "e.db")) as server:
        with urllib.request.urlopen(server.url + "/tags/findSeries?expr=env=prod", timeout=10) as r:
            assert json.load(r) == [path]
        request = urllib.request.Request(server.url + "/events/", data=b'{"what": "deploy", "tags": "deploy"}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
        assert server.stop() == 0
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("SELECT path FROM series").fetchall() == [(path,)]
    with sqlite3.connect(tmp_path / "e.db") as db:
        assert db.execute("SELECT what, tags FROM events").fetchall() == [("deploy", "deploy")]
    assert not (root.parent / "tagdb.sqlite3").exists()


def test_unreachable_redis_is_a_clear_error(root, capsys):
    assert cli.main(["--whisper-root", str(root), "--port", "0", "--tagdb", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot reach the tag database" in capsys.readouterr().err
