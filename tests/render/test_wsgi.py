"""The WSGI entry point under real gunicorn, and the one settings object behind it and the CLI."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest

from django_statsd_push.render import cli
from django_statsd_push.render.settings import RenderSettings

from .conftest import REPO, write_metric

GUNICORN_START = 60  # seconds; two workers importing NumPy on a loaded 2-core machine


def test_cli_flags_and_environment_give_the_same_settings(tmp_path):
    values = {"whisper-root": str(tmp_path), "max-series": "7", "max-points": "900", "time-budget": "2.5",
              "regex-budget": "0.25", "carbonlink": "127.0.0.1:7002", "static-dir": str(tmp_path),
              "host": "127.0.0.2", "port": "0", "log-level": "DEBUG", "cluster-server": "127.0.0.3:8080",
              "cluster-timeout": "1.5"}
    argv = [part for flag, value in values.items() for part in ("--" + flag, value)]
    from_cli = RenderSettings.from_args(cli.build_parser().parse_args(argv))
    env = {"STATSD_PUSH_RENDER_" + flag.upper().replace("-", "_"): value for flag, value in values.items()}
    assert RenderSettings.from_env(env) == from_cli
    assert from_cli.limits.time_budget == 2.5 and from_cli.carbonlink_hosts == [("127.0.0.1", 7002, None)]
    assert from_cli.cluster_servers == ["127.0.0.3:8080"] and from_cli.cluster_timeout == 1.5
    # several peers and caches: the flag repeated, or one comma-separated value (the variable's form)
    repeated = RenderSettings.from_args(cli.build_parser().parse_args(
        ["--whisper-root", "/w", "--cluster-server", "127.0.0.3:8080", "--cluster-server", "127.0.0.4:8080",
         "--carbonlink", "127.0.0.3:7002:a", "--carbonlink", "127.0.0.4:7002:a"]))
    from_env = RenderSettings.from_env({
        "STATSD_PUSH_RENDER_WHISPER_ROOT": "/w", "STATSD_PUSH_RENDER_CLUSTER_SERVER": "127.0.0.3:8080,127.0.0.4:8080",
        "STATSD_PUSH_RENDER_CARBONLINK": "127.0.0.3:7002:a, 127.0.0.4:7002:a"})
    for settings in (repeated, from_env):
        assert settings.cluster_servers == ["127.0.0.3:8080", "127.0.0.4:8080"]
        assert settings.carbonlink_hosts == [("127.0.0.3", 7002, "a"), ("127.0.0.4", 7002, "a")]
    # and the defaults agree too
    assert RenderSettings.from_env({"STATSD_PUSH_RENDER_WHISPER_ROOT": "/w"}) == RenderSettings.from_args(
        cli.build_parser().parse_args(["--whisper-root", "/w"]))


@pytest.mark.parametrize(("env", "message"), [
    ({}, "STATSD_PUSH_RENDER_WHISPER_ROOT"),
    ({"STATSD_PUSH_RENDER_MAX_SERIES": "lots"}, "STATSD_PUSH_RENDER_MAX_SERIES='lots' is not an integer"),
    ({"STATSD_PUSH_RENDER_TIME_BUDGET": "-1"}, "--time-budget / STATSD_PUSH_RENDER_TIME_BUDGET must be positive"),
    ({"STATSD_PUSH_RENDER_REGEX_BUDGET": "nan"}, "STATSD_PUSH_RENDER_REGEX_BUDGET must be a positive"),
    ({"STATSD_PUSH_RENDER_CARBONLINK": "nowhere"}, "STATSD_PUSH_RENDER_CARBONLINK must be HOST:PORT"),
    ({"STATSD_PUSH_RENDER_CLUSTER_SERVER": "ftp://peer:1"}, "STATSD_PUSH_RENDER_CLUSTER_SERVER: cluster server must"),
    ({"STATSD_PUSH_RENDER_CLUSTER_TIMEOUT": "0"}, "STATSD_PUSH_RENDER_CLUSTER_TIMEOUT must be a positive"),
])
def test_bad_environment_names_the_variable(env, message):
    env = {"STATSD_PUSH_RENDER_WHISPER_ROOT": "/w", **env} if env else env
    with pytest.raises(ValueError) as info:
        RenderSettings.from_env(env)
    assert message.replace(" must be positive", " must be a positive") in str(info.value)


def start_gunicorn(env_settings: dict[str, str], log) -> subprocess.Popen:
    """gunicorn on a port it picks itself (port 0; ``wait_for_workers`` reads which from
    its log): a port probed free here could be taken before gunicorn binds it."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), **env_settings)
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:0",
                             "--graceful-timeout", "5", "django_statsd_push.render.wsgi:application"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_for_workers(proc: subprocess.Popen, log_path, count: int) -> int:
    """Await gunicorn's own log lines: listening, then ``count`` workers booted; the port."""
    end = time.monotonic() + GUNICORN_START
    while time.monotonic() < end:
        text = log_path.read_text()
        listening = re.search(r"Listening at: http://127\.0\.0\.1:(\d+) ", text)
        if listening and text.count("Booting worker") >= count:
            return int(listening.group(1))
        assert proc.poll() is None, f"gunicorn exited with {proc.returncode}:\n{text}"
        time.sleep(0.05)
    raise AssertionError(f"gunicorn did not start in {GUNICORN_START} s:\n{log_path.read_text()}")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def test_gunicorn_serves_render_and_find_with_two_workers(root, tmp_path):
    write_metric(root, "app.requests", [1, 2, 3], end=int(time.time()) // 10 * 10, now=int(time.time()))
    write_metric(root, "app.errors", [0, 1, 0], end=int(time.time()) // 10 * 10, now=int(time.time()))
    write_metric(root, "a" * 60 + ".b", [1])
    settings = {"STATSD_PUSH_RENDER_WHISPER_ROOT": str(root), "STATSD_PUSH_RENDER_MAX_POINTS": "20",
                "STATSD_PUSH_RENDER_REGEX_BUDGET": "0.5"}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        proc = start_gunicorn(settings, log)
    try:
        port = wait_for_workers(proc, log_path, 2)
    except AssertionError:
        stop(proc)
        raise
    try:
        assert len(children(proc.pid)) == 2
        status, body = get(port, "/render?target=app.requests&from=-2min&format=json")
        assert status == 200, body
        [series] = json.loads(body)
        assert series["target"] == "app.requests"
        assert [v for v, _ in series["datapoints"] if v is not None] == [1.0, 2.0, 3.0]
        status, body = get(port, "/metrics/find?query=app.*")
        assert status == 200, body
        assert sorted(node["id"] for node in json.loads(body)) == ["app.errors", "app.requests"]
        # a setting read from the environment: STATSD_PUSH_RENDER_MAX_POINTS=20
        status, body = get(port, "/render?target=app.requests&from=-1h&format=json")
        assert status == 400 and b"more than 20 points" in body, body
        hostile = "/render?" + urlencode({"target": f"grep({'a' * 60}.*, '^(?=a)(a|aa)+$')", "format": "json",
                                          "from": "-1min"})
        status, body = get(port, hostile)
        assert status == 400 and b"time budget of 0.5 s (--regex-budget)" in body, body
    finally:
        code = stop(proc)
    assert code == 0, log_path.read_text()


def test_gunicorn_refuses_to_start_with_a_bad_setting(root, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        proc = start_gunicorn({"STATSD_PUSH_RENDER_WHISPER_ROOT": str(root),
                               "STATSD_PUSH_RENDER_MAX_POINTS": "many"}, log)
    try:
        code = proc.wait(GUNICORN_START)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise
    text = log_path.read_text()
    assert code != 0
    assert "STATSD_PUSH_RENDER_MAX_POINTS='many' is not an integer" in text


def test_importing_the_entry_point_reads_no_settings(monkeypatch):
    monkeypatch.delenv("STATSD_PUSH_RENDER_WHISPER_ROOT", raising=False)
    import django_statsd_push.render.wsgi as entry  # noqa: PLC0415 - the import is what is tested

    with pytest.raises(ValueError, match="STATSD_PUSH_RENDER_WHISPER_ROOT"):
        entry.application  # noqa: B018 - built on first access, from the environment
