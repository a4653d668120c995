"""The demo traffic driver against a real HTTP server on a free port."""

from __future__ import annotations

import collections
import http.server
import json
import threading
import time

import pytest

from django_statsd_push.stack import traffic
from django_statsd_push.stack.traffic import BEACON_INTERVAL, Traffic
from django_statsd_push.templatetags.statsd_push import SCRIPT, _js_string

POLLS_PAGE = b'<a href="/polls/3/">a</a> <a href="/polls/7/">b</a>'
# a detail page as {% statsd_browser_timing %} writes it (the view name escaped as the tag escapes it)
DETAIL_PAGE = ("<p>detail</p><script>" + SCRIPT % (_js_string("/statsd/browser-timing/"),
                                                    _js_string("polls:detail<&>")) + "</script>").encode()


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.paths: collections.Counter[str] = collections.Counter()
        self.posts: list[tuple[float, str, str, bytes]] = []  # (when, path, content type, body)
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each keep-alive response waits on a delayed ACK

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.paths[self.path] += 1
        status, body = 404, b"not found"
        if self.path in ("/", "/cached/", "/slow/", "/healthz"):
            status, body = 200, b"ok"
        elif self.path in ("/polls/3/", "/polls/7/"):
            status, body = 200, DETAIL_PAGE
        elif self.path == "/polls/":
            status, body = 200, POLLS_PAGE
        elif self.path == "/error/":
            status, body = 500, b"boom"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.posts.append((time.monotonic(), self.path, self.headers["Content-Type"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def test_mix_reaches_every_kind_of_view(server: Recorder) -> None:
    t = Traffic(f"http://127.0.0.1:{server.server_address[1]}", rate=400, threads=3, seed=1)
    t.start()
    try:
        end = time.monotonic() + 60
        while t.tally.total < 300:
            assert time.monotonic() < end, f"only {t.tally.total} requests in 60s"
            time.sleep(0.05)
    finally:
        t.stop()
    assert t.poll_ids == [3, 7]
    with server.lock:
        paths = dict(server.paths)
    assert {"/", "/polls/", "/cached/", "/slow/", "/error/", "/healthz"} <= paths.keys()
    assert paths.get("/polls/3/", 0) + paths.get("/polls/7/", 0) > 0
    assert "/polls/1/" not in paths  # detail ids come from the list page
    assert any(p.startswith("/no-such-page/") for p in paths)
    counts = t.tally.counts
    assert counts[200] > counts[404] > 0 and counts[500] > 0 and counts[0] == 0


def test_cli_runs_for_a_duration_and_prints_a_summary(server: Recorder, capsys) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    assert traffic.main(["--url", url, "--rate", "50", "--duration", "0.5", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "requests (200:" in out


def test_cli_fails_when_nothing_answers(capsys, held_port) -> None:
    url = f"http://127.0.0.1:{held_port()}"  # refuses connections, and nothing else can listen there
    assert traffic.main(["--url", url, "--rate", "20", "--duration", "0.3"]) == 1
    assert "is the example app running?" in capsys.readouterr().err


def test_cli_rejects_bad_arguments(capsys) -> None:
    assert traffic.main(["--url", "ftp://x", "--duration", "0.1"]) == 2
    assert traffic.main(["--rate", "0"]) == 2


def test_tagged_counter_and_deploy_event(server: Recorder, tmp_path) -> None:
    """The tag/event demo: a Graphite-tagged counter per status class, one deploy marker at start."""
    import json
    import socket
    import urllib.request

    from django_statsd_push.render.app import RenderApp
    from django_statsd_push.render.events import EventStore
    from django_statsd_push.render.httpserver import BackgroundServer

    (tmp_path / "whisper").mkdir()
    store = EventStore(str(tmp_path / "events.sqlite3"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            BackgroundServer(RenderApp(str(tmp_path / "whisper"), static_dir=None, events=store)) as render:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(20)
        t = Traffic(f"http://127.0.0.1:{server.server_address[1]}", rate=200, threads=2, seed=3,
                    statsd_address=udp.getsockname(), events_url=render + "/events/")
        t.start()
        try:
            lines: set[str] = set()
            while not {"2xx", "4xx", "5xx"} <= {line.split("status=")[1][:3] for line in lines}:
                lines.add(udp.recv(512).decode())
        finally:
            t.stop()
        assert all(line.startswith("demo_traffic.responses;status=") and line.endswith(":1|c") for line in lines)
        with urllib.request.urlopen(render + "/events/get_data?tags=deploy", timeout=10) as response:
            (event,) = json.load(response)
        assert event["what"] == "demo-traffic started" and event["tags"] == ["deploy", "demo"]
    store.close()


def test_a_page_with_the_timing_script_gets_its_beacon_now_and_then(server: Recorder) -> None:
    """The body the tag's script sends, to the URL the page names, for the view the page
    names; at most one every BEACON_INTERVAL (the endpoint limits beacons per address)."""
    t = Traffic(f"http://127.0.0.1:{server.server_address[1]}", rate=400, threads=3, seed=4)
    started = time.monotonic()
    t.start()
    try:
        deadline = started + 120
        while t.beacons.total < 2:
            assert time.monotonic() < deadline, f"{t.beacons.total} beacons in 120s"
            time.sleep(0.05)
    finally:
        t.stop()
    elapsed = time.monotonic() - started
    with server.lock:
        posts = list(server.posts)
    assert t.beacons.counts == {204: len(posts)}
    assert 2 <= len(posts) <= elapsed / BEACON_INTERVAL + 1
    assert all(b - a >= BEACON_INTERVAL * 0.99 for (a, *_), (b, *_) in zip(posts, posts[1:]))
    for _, path, content_type, body in posts:
        assert (path, content_type) == ("/statsd/browser-timing/", "application/json")
        beacon = json.loads(body)
        assert beacon.pop("view") == "polls:detail<&>"
        assert beacon.keys() == {"ttfb", "dom_content_loaded", "load", "lcp"}
        assert 0 <= beacon["ttfb"] <= beacon["dom_content_loaded"] <= beacon["load"] < 60_000
