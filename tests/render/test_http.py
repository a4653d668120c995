"""The endpoints over real HTTP (the bundled threaded server on port 0), and the 400s."""

from __future__ import annotations

import http.client
import json
import pickle
import random
from urllib.parse import urlencode

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.evaluator import Limits
from django_statsd_push.render.httpserver import BackgroundServer

from .conftest import NOW, write_metric


def _utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _strict(text: str):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


class Http:
    def __init__(self, url: str) -> None:
        host, port = url.split("//")[1].split(":")
        self.host, self.port = host, int(port)

    def call(self, method: str, path: str, params=None, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            query = urlencode(params or [], doseq=True)
            if method == "GET" and query:
                path = f"{path}?{query}"
            elif method == "POST" and body is None:
                body = query
                headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read()
        finally:
            conn.close()

    def get(self, path, params=None):
        return self.call("GET", path, params)


@pytest.fixture
def static_dir(tmp_path):
    d = tmp_path / "static"
    d.mkdir()
    (d / "index.html").write_text("<html>dashboard</html>")
    (d / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("secret")
    return d


@pytest.fixture
def server(data, static_dir):
    app = RenderApp(str(data), Limits(max_series=50, max_points=20_000), static_dir=str(static_dir),
                    clock=lambda: NOW)
    with BackgroundServer(app) as url:
        yield Http(url)


def test_version_and_misc_endpoints(server):
    status, ctype, body = server.get("/version")
    assert status == 200 and body.decode().strip() == "1.1.8"
    for path in ("/tags/autoComplete/tags", "/tags/autoComplete/values", "/events/get_data"):
        status, ctype, body = server.get(path, {"tagPrefix": "x"})
        assert (status, ctype, _strict(body.decode())) == (200, "application/json", [])


def test_render_get_and_post_with_repeated_targets(server):
    params = [("target", "a.b1.c"), ("target", "sumSeries(a.b*.c)"), ("from", "-1min"), ("until", "now"),
              ("format", "json")]
    for method in ("GET", "POST"):
        status, ctype, body = server.call(method, "/render", params)
        assert status == 200 and ctype == "application/json"
        doc = _strict(body.decode())
        assert [s["target"] for s in doc] == ["a.b1.c", "sumSeries(a.b*.c)"]
        assert doc[0]["tags"] == {"name": "a.b1.c"}
        assert doc[0]["datapoints"][0] == [1.0, NOW - 50]


def test_render_json_post_body(server):
    doc = {"target": ["a.b1.c"], "from": "-1min", "format": "json"}
    status, _, body = server.call("POST", "/render", body=json.dumps(doc),
                                  headers={"Content-Type": "application/json"})
    assert status == 200 and _strict(body.decode())[0]["target"] == "a.b1.c"


def test_formats(server):
    base = [("target", "a.b1.c"), ("from", "-1min")]
    status, ctype, body = server.get("/render", base + [("format", "csv")])
    assert ctype == "text/csv"
    lines = body.decode().splitlines()
    assert lines[0] == f"a.b1.c,{_utc(NOW - 50)},1.0" and lines[2] == f"a.b1.c,{_utc(NOW - 30)},"
    status, ctype, body = server.get("/render", base + [("format", "raw")])
    assert body.decode() == f"a.b1.c,{NOW - 50},{NOW + 10},10|1.0,2.0,None,4.0,5.0,6.0\n"
    status, ctype, body = server.get("/render", base + [("format", "pickle")])
    info = pickle.loads(body)
    assert info[0]["name"] == "a.b1.c" and info[0]["values"] == [1.0, 2.0, None, 4.0, 5.0, 6.0]
    assert (info[0]["start"], info[0]["end"], info[0]["step"]) == (NOW - 50, NOW + 10, 10)
    status, ctype, body = server.get("/render", base + [("format", "json"), ("jsonp", "cb")])
    assert ctype == "text/javascript" and body.decode().startswith("cb([{")
    status, ctype, body = server.get("/render", base + [("format", "json"), ("noNullPoints", "1")])
    assert [t for _, t in _strict(body.decode())[0]["datapoints"]] == [NOW - 50, NOW - 40, NOW - 20, NOW - 10, NOW]
    status, ctype, body = server.get("/render", [("target", "a.b3.c"), ("from", "-1min"), ("format", "json"),
                                                 ("noNullPoints", "")])
    assert _strict(body.decode()) == []


def test_csv_uses_the_tz_parameter(server):
    _, _, body = server.get("/render", [("target", "a.b1.c"), ("from", "-1min"), ("format", "csv"),
                                       ("tz", "Europe/Paris")])
    paris = datetime.fromtimestamp(NOW - 50, ZoneInfo("Europe/Paris")).strftime("%Y-%m-%d %H:%M:%S")
    assert body.decode().splitlines()[0] == f"a.b1.c,{paris},1.0"
    assert paris != _utc(NOW - 50)


def test_absolute_times(server):
    _, _, body = server.get("/render", [("target", "a.b1.c"), ("from", str(NOW - 30)), ("until", str(NOW)),
                                       ("format", "json")])
    assert [t for _, t in _strict(body.decode())[0]["datapoints"]] == [NOW - 20, NOW - 10, NOW]


def test_find_fields_and_order(server):
    for method in ("GET", "POST"):
        status, ctype, body = server.call(method, "/metrics/find", {"query": "*"})
        doc = _strict(body.decode())
        assert status == 200
        assert doc[0] == {"text": "a", "id": "a", "allowChildren": 1, "expandable": 1, "leaf": 0}
        leaves = [n for n in doc if n["leaf"]]
        assert {"text": "counter", "id": "counter", "allowChildren": 0, "expandable": 0, "leaf": 1} in leaves
        assert doc.index(leaves[0]) > max(i for i, n in enumerate(doc) if not n["leaf"])  # branches first
    _, _, body = server.get("/metrics/find", {"query": "a.b{1,2}"})
    assert [n["id"] for n in _strict(body.decode())] == ["a.b1", "a.b2"]
    _, _, body = server.get("/metrics/find", {"query": "srv.h", "format": "completer"})
    assert _strict(body.decode())["metrics"][0] == {"path": "srv.h1.", "name": "h1", "is_leaf": "0"}


def test_expand_and_index(server):
    _, _, body = server.get("/metrics/expand", [("query", "a.b*.c"), ("query", "srv.h1.*")])
    assert _strict(body.decode()) == {"results": ["a.b1.c", "a.b2.c", "a.b3.c", "srv.h1.cpu"]}
    _, _, body = server.get("/metrics/expand", [("query", "a.b*.c"), ("groupByExpr", "1")])
    assert _strict(body.decode()) == {"results": {"a.b*.c": ["a.b1.c", "a.b2.c", "a.b3.c"]}}
    _, _, body = server.get("/metrics/index.json")
    index = _strict(body.decode())
    assert "srv.h2.cpu.user" in index and index == sorted(index)


def test_functions_document_is_strict_json_from_the_registry(server):
    status, ctype, body = server.get("/functions")
    doc = _strict(body.decode())  # keepLastValue's default is infinity: must still be valid JSON
    assert status == 200 and {"sumSeries", "sum", "aliasSub", "movingAverage", "keepLastValue"} <= set(doc)
    assert doc["sumSeries"]["group"] == "Combine"
    assert doc["sumSeries"]["params"] == [{"name": "seriesLists", "type": "seriesList", "required": True,
                                           "multiple": True}]
    assert doc["keepLastValue"]["params"][1]["default"] == float("inf")
    _, _, body = server.get("/functions", {"grouped": "1"})
    assert "movingAverage" in _strict(body.decode())["Calculate"]
    status, _, body = server.get("/functions/aliasSub")
    assert status == 200 and _strict(body.decode())["name"] == "aliasSub"
    assert server.get("/functions/nope")[0] == 404


def test_static_files_and_traversal(server):
    assert server.get("/")[2] == b"<html>dashboard</html>"
    status, ctype, body = server.get("/static/app.js")
    assert status == 200 and body == b"console.log(1)"
    for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/nope.js"):
        assert server.get(path)[0] == 404


@pytest.mark.parametrize("params,fragment", [
    ({"target": "sumSeries(a.b*.c", "from": "-1min"}, "unbalanced parentheses"),
    ({"target": "nope(a.b1.c)", "from": "-1min"}, "unknown function nope()"),
    ({"target": "scale(a.b1.c, 'two')", "from": "-1min"}, 'invalid "float" value'),
    ({"target": "a.b1.c", "from": "yesterdayish"}, "invalid time"),
    ({"target": "a.b1.c", "from": "-1min", "until": "-1min"}, "empty time range"),
    ({"target": "a.b1.c", "format": "xml"}, "unsupported format"),
    ({"target": "a.b1.c", "format": "json", "jsonp": "alert(1);x"}, "invalid jsonp"),
    ({"target": "a.b1.c", "maxDataPoints": "lots"}, "must be an integer"),
    ({"target": "a.b1.c", "xFilesFactor": "2"}, "xFilesFactor"),
    ({"target": "a.b1.c", "tz": "Mars/Olympus"}, "unknown time zone"),
    ({"target": "a.b*.c", "from": "-1y"}, "more than 20000 points"),
    ({"target": "../../etc/passwd"}, "invalid metric path"),
])
def test_render_400s(server, params, fragment):
    status, ctype, body = server.get("/render", params)
    text = body.decode()
    assert status == 400 and ctype.startswith("text/plain")
    assert fragment in text and "Traceback" not in text


def test_find_400s(server):
    assert server.get("/metrics/find")[0] == 400
    status, _, body = server.get("/metrics/find", {"query": "a..b"})
    assert status == 400 and b"empty node" in body
    assert server.get("/metrics/find", {"query": "*", "format": "xml"})[0] == 400


def test_series_limit(server, data):
    for i in range(51):
        write_metric(data, f"many.m{i}", [1])
    status, _, body = server.get("/render", {"target": "sumSeries(many.*)", "from": "-1min"})
    assert status == 400 and b"more than 50" in body


def test_other_methods_and_paths(server):
    assert server.call("PUT", "/render")[0] == 405
    assert server.get("/nope")[0] == 404


def test_garbage_targets_never_cause_a_500(server):
    rng = random.Random(1234)
    alphabet = "ab.*?[]{},()'\"\\|=-1e5 sumSeries(scale,alias)xyz"
    for _ in range(300):
        target = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        status, _, body = server.get("/render", {"target": target, "from": "-1min"})
        assert status in (200, 400), (target, status, body)
        assert b"Traceback" not in body


def test_grafana_style_post(server):
    """Grafana's Graphite datasource: POST form, epoch from/until, maxDataPoints, aliasSub."""
    form = [("target", r"aliasSub(a.b*.c, '^a\.(\w+)\.c$', '\1')"), ("from", str(NOW - 60)),
            ("until", str(NOW)), ("format", "json"), ("maxDataPoints", "1264")]
    status, ctype, body = server.call("POST", "/render", form)
    doc = _strict(body.decode())
    assert status == 200 and [s["target"] for s in doc] == ["b1", "b2", "b3"]
    assert doc[0]["datapoints"][0] == [1.0, NOW - 50]
    status, _, body = server.call("POST", "/metrics/find", [("query", "a.*"), ("from", str(NOW - 3600)),
                                                            ("until", str(NOW))])
    assert status == 200 and [n["text"] for n in _strict(body.decode())] == ["b1", "b2", "b3"]
