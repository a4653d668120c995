"""``statsd-push render`` as a real process: listens, answers /version, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

from django_statsd_push.render import cli

from .conftest import write_metric

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serves_until_sigterm(root):
    write_metric(root, "x.y", [1])
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", str(root),
                             "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # printed once the socket is bound: readiness, no polling
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].split()[0]
        with urllib.request.urlopen(url + "/version", timeout=5) as r:
            assert r.read().decode().strip() == "1.1.8"
        with urllib.request.urlopen(url + "/metrics/find?query=x.*", timeout=5) as r:
            assert b'"id": "x.y"' in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave the server behind, even when the test fails
            proc.wait()
            raise
        finally:
            proc.stdout.close()
    assert code == 0


def test_missing_root_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["--whisper-root", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_bad_cluster_server_is_a_clear_error(tmp_path, capsys):
    from django_statsd_push.render.cli import main

    assert main(["--whisper-root", str(tmp_path), "--port", "0", "--cluster-server", "ftp://peer:1"]) == 2
    assert "cluster server must be HOST:PORT" in capsys.readouterr().err
    assert main(["--whisper-root", str(tmp_path), "--port", "0", "--carbonlink", "nohost"]) == 2
    assert "carbonlink host must be HOST:PORT[:INSTANCE]" in capsys.readouterr().err
