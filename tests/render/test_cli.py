"""``statsd-push render`` as a real process: listens, answers /version, stops on SIGTERM."""

from __future__ import annotations

import urllib.request

from django_statsd_push.render import cli

from .conftest import render_process, write_metric


def test_serves_until_sigterm(root):
    write_metric(root, "x.y", [1])
    with render_process(root) as server:
        with urllib.request.urlopen(server.url + "/version", timeout=5) as r:
            assert r.read().decode().strip() == "1.1.8"
        with urllib.request.urlopen(server.url + "/metrics/find?query=x.*", timeout=5) as r:
            assert b'"id": "x.y"' in r.read()
        assert server.stop() == 0


def test_missing_root_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["--whisper-root", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_bad_cluster_server_is_a_clear_error(tmp_path, capsys):
    from django_statsd_push.render.cli import main

    assert main(["--whisper-root", str(tmp_path), "--port", "0", "--cluster-server", "ftp://peer:1"]) == 2
    assert "cluster server must be HOST:PORT" in capsys.readouterr().err
    assert main(["--whisper-root", str(tmp_path), "--port", "0", "--carbonlink", "nohost"]) == 2
    assert "--carbonlink / STATSD_PUSH_RENDER_CARBONLINK must be HOST:PORT[:INSTANCE]" in capsys.readouterr().err
    assert main(["--whisper-root", str(tmp_path), "--port", "0", "--cluster-server", "a:1",
                 "--cluster-timeout", "0"]) == 2
    assert "--cluster-timeout / STATSD_PUSH_RENDER_CLUSTER_TIMEOUT must be a positive" in capsys.readouterr().err


def test_bad_budget_is_a_clear_error(root, capsys):
    assert cli.main(["--whisper-root", str(root), "--port", "0", "--time-budget", "0"]) == 2
    assert "--time-budget / STATSD_PUSH_RENDER_TIME_BUDGET must be a positive number" in capsys.readouterr().err
