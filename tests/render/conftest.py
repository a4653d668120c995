"""Fixtures for the render API tests: real Whisper files (written with the ``whisper``
library) under tmp_path, a fixed clock, and a client for the real WSGI app."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.conftest import require_import

require_import("numpy")
whisper = require_import("whisper")

from django_statsd_push.render.app import RenderApp  # noqa: E402
from django_statsd_push.render.evaluator import Limits  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOW = 1_700_000_000 - 1_700_000_000 % 3600  # an hour boundary keeps bucket arithmetic readable
STEP = 10


def write_metric(root, path: str, values, step: int = STEP, end: int = NOW,
                 retentions=((10, 8640), (60, 10080)), now: int = NOW) -> str:
    """Write ``values`` (None = no point) so the last one lands on ``end``."""
    fs_path = os.path.join(str(root), *path.split(".")) + ".wsp"
    os.makedirs(os.path.dirname(fs_path), exist_ok=True)
    if not os.path.exists(fs_path):
        whisper.create(fs_path, list(retentions))
    points = [(end - (len(values) - 1 - i) * step, float(v)) for i, v in enumerate(values) if v is not None]
    if points:
        whisper.update_many(fs_path, points, now=now)
    return fs_path


class Client:
    """Calls the WSGI app in-process with a real WSGI environ."""

    def __init__(self, app: RenderApp) -> None:
        self.app = app

    def request(self, path: str, params=None, method: str = "GET", body: bytes = b"",
                content_type: str = "application/x-www-form-urlencoded"):
        query = urlencode(params or [], doseq=True)
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query if method == "GET" else "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type,
        }
        if method == "POST" and not body and params:
            data = query.encode()
            environ.update({"wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))})
        captured = {}

        def start_response(status, headers):
            captured["status"] = int(status.split()[0])
            captured["headers"] = dict(headers)

        payload = b"".join(self.app(environ, start_response))
        return captured["status"], captured["headers"], payload

    def render(self, *targets: str, **params):
        """JSON render of targets -> {name: [values]} plus the raw document."""
        params.setdefault("from", "-1min")
        params.setdefault("format", "json")
        status, _, body = self.request("/render", [("target", t) for t in targets] + list(params.items()))
        assert status == 200, body
        return json.loads(body)

    def values(self, target: str, **params) -> list:
        doc = self.render(target, **params)
        assert len(doc) == 1, [s["target"] for s in doc]
        return [v for v, _ in doc[0]["datapoints"]]

    def error(self, path: str, params) -> str:
        status, headers, body = self.request(path, params)
        assert status == 400, (status, body)
        assert "Traceback" not in body.decode()
        return body.decode()


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "whisper"
    path.mkdir()
    return path


@pytest.fixture
def client(root):
    return Client(RenderApp(str(root), Limits(max_series=50, max_points=100_000), static_dir=None,
                            clock=lambda: NOW))


def approx(values):
    """Compare lists with None and floats."""
    return [None if v is None else pytest.approx(v) for v in values]


def nan_free(values):
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


@pytest.fixture
def data(root):
    """The reference data set. With from=-1min the six points sit at NOW-50 ... NOW."""
    write_metric(root, "a.b1.c", [1, 2, None, 4, 5, 6])
    write_metric(root, "a.b2.c", [10, None, None, 40, 50, 60])
    write_metric(root, "a.b3.c", [None] * 6)
    write_metric(root, "counter", [0, 10, 20, 5, 15, 25])
    write_metric(root, "neg", [-1, 2, None, -4, 0, 3])
    write_metric(root, "srv.h1.cpu.user", [1, 1, 1, 1, 1, 1])
    write_metric(root, "srv.h1.cpu.sys", [2, 2, 2, 2, 2, 2])
    write_metric(root, "srv.h2.cpu.user", [3, None, 3, 3, 3, 3])
    write_metric(root, "long", list(range(1, 361)))  # value i+1 at NOW-3590+10i, 360 at NOW
    return root


class RenderProcess:
    """A real ``statsd-push render`` child process (see :func:`render_process`)."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url
        self.host, port = url.split("//")[1].split(":")
        self.port = int(port)

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used (Linux /proc): lets a test await
        "the server is busy with my request" instead of sleeping."""
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit status (SIGKILL and a failure past ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@contextlib.contextmanager
def render_process(root, *flags: str) -> Iterator[RenderProcess]:
    """``statsd-push render --whisper-root ROOT --port 0 FLAGS`` as a child process, ready
    (its first stdout line is printed once the socket is bound); always stopped after."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", str(root),
                             "--port", "0", *flags], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        server = RenderProcess(proc, line.split("listening on ")[1].split()[0])
        try:
            yield server
        finally:
            server.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
