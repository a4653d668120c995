"""Federation over real HTTP: a front render API with two peer render APIs (CLUSTER_SERVERS),
each peer over its own Whisper root, and peers that are down, hung, or answer garbage."""

from __future__ import annotations

import json
import pickle
import socket
import threading
import time

import msgpack
import pytest

from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.cluster import FAILED_HEADER, Cluster
from django_statsd_push.render.evaluator import Limits
from django_statsd_push.render.httpserver import BackgroundServer

from .conftest import NOW, Client, write_metric


def app(root, cluster=None, **limits) -> RenderApp:
    return RenderApp(str(root), Limits(**limits) if limits else None, static_dir=None, clock=lambda: NOW,
                     cluster=cluster)


@pytest.fixture
def roots(tmp_path):
    """Two nodes' stores, each series on exactly one of them, as carbon-relay places them;
    ``both`` is on both, with complementary gaps."""
    one, two, front = (tmp_path / name for name in ("one", "two", "front"))
    for d in (one, two, front):
        d.mkdir()
    write_metric(one, "app.hits.a", [1, 2, 3, 4, 5, 6])
    write_metric(one, "app.hits.b", [10, 10, 10, 10, 10, 10])
    write_metric(two, "app.hits.c", [100, 100, 100, 100, 100, 100])
    write_metric(two, "app.other", [7] * 6)
    write_metric(one, "both", [1, None, 3, None, 5, None])
    write_metric(two, "both", [None, 20, None, 40, None, 60])
    return one, two, front


@pytest.fixture
def peers(roots):
    one, two, _ = roots
    with BackgroundServer(app(one)) as url_one, BackgroundServer(app(two)) as url_two:
        yield url_one, url_two


def front(roots, servers, timeout=3.0) -> tuple[Client, Cluster]:
    cluster = Cluster(servers, timeout=timeout)
    return Client(app(roots[2], cluster)), cluster


def test_render_through_the_front_sums_both_nodes(roots, peers):
    client, _ = front(roots, peers)
    assert client.values("sumSeries(app.hits.*)") == [111, 112, 113, 114, 115, 116]
    names = [s["target"] for s in client.render("app.*.*")]
    assert names == ["app.hits.a", "app.hits.b", "app.hits.c"]
    # a node alone has only its part: the partial sums the issue reported
    assert Client(app(roots[0])).values("sumSeries(app.hits.*)") == [11, 12, 13, 14, 15, 16]


def test_the_same_series_on_two_nodes_is_merged_gap_by_gap(roots, peers):
    client, _ = front(roots, peers)
    doc = client.render("both")
    assert [s["target"] for s in doc] == ["both"]
    assert [v for v, _ in doc[0]["datapoints"]] == [1, 20, 3, 40, 5, 60]


def test_find_expand_and_index_through_the_front(roots, peers):
    client, _ = front(roots, peers)
    status, headers, body = client.request("/metrics/find", {"query": "app.*"})
    assert status == 200 and FAILED_HEADER not in headers
    assert [(n["text"], n["leaf"]) for n in json.loads(body)] == [("hits", 0), ("other", 1)]
    status, _, body = client.request("/metrics/find", {"query": "app.hits.*", "format": "json"})
    assert [n["path"] for n in json.loads(body)] == ["app.hits.a", "app.hits.b", "app.hits.c"]
    assert all(n["intervals"] and n["intervals"][0]["start"] < n["intervals"][0]["end"] for n in json.loads(body))
    _, _, body = client.request("/metrics/expand", {"query": "app.hits.*"})
    assert json.loads(body) == {"results": ["app.hits.a", "app.hits.b", "app.hits.c"]}
    _, _, body = client.request("/metrics/index.json", {})
    assert json.loads(body) == ["app.hits.a", "app.hits.b", "app.hits.c", "app.other", "both"]


def test_local_requests_are_never_fanned_out(roots, peers):
    """local=1 is how a federating front asks a peer: the peer answers from its own store
    alone, so two fronts that list each other cannot loop."""
    client, cluster = front(roots, peers)
    assert client.render("app.hits.*", local="1") == []
    status, _, body = client.request("/metrics/find", {"query": "app.*", "local": "1", "format": "pickle"})
    assert status == 200 and pickle.loads(body) == []
    assert all(p["requests"] == 0 for p in cluster.status())


def test_cluster_protocol_find_formats(roots):
    """What graphite-web's RemoteFinder reads: [{path, is_leaf, intervals}] as pickle or msgpack,
    intervals as (start, end) pairs."""
    client = Client(app(roots[0]))
    for fmt, load in (("pickle", pickle.loads), ("msgpack", msgpack.unpackb)):
        status, headers, body = client.request("/metrics/find", {"query": "app.*.*", "format": fmt, "local": "1"})
        assert status == 200
        assert headers["Content-Type"] == {"pickle": "application/pickle", "msgpack": "application/x-msgpack"}[fmt]
        nodes = load(body)
        assert [(n["path"], n["is_leaf"]) for n in nodes] == [("app.hits.a", True), ("app.hits.b", True)]
        (start, end), = nodes[0]["intervals"]
        assert start == NOW - 10080 * 60 and end >= start
    _, _, body = client.request("/metrics/find", {"query": "app.*", "format": "pickle", "local": "1"})
    assert pickle.loads(body) == [{"path": "app.hits", "is_leaf": False}]


def test_render_msgpack_matches_pickle(roots):
    client = Client(app(roots[0]))
    params = {"target": "app.hits.*", "from": "-1min", "format": "pickle"}
    _, _, as_pickle = client.request("/render", params)
    status, headers, as_msgpack = client.request("/render", dict(params, format="msgpack"))
    assert status == 200 and headers["Content-Type"] == "application/x-msgpack"
    assert msgpack.unpackb(as_msgpack) == pickle.loads(as_pickle)
    assert [s["name"] for s in pickle.loads(as_pickle)] == ["app.hits.a", "app.hits.b"]


def test_a_down_peer_gives_a_partial_answer_named_in_a_header(roots, peers, caplog, held_port):
    down = f"127.0.0.1:{held_port()}"  # refuses connections, and nothing else can listen there
    client, cluster = front(roots, [peers[0], down])
    status, headers, body = client.request("/render", {"target": "sumSeries(app.hits.*)", "from": "-1min",
                                                       "format": "json"})
    assert status == 200
    assert [v for v, _ in json.loads(body)[0]["datapoints"]] == [11, 12, 13, 14, 15, 16]
    assert headers[FAILED_HEADER].startswith(down + " (ConnectionRefusedError")
    assert f"cluster peer {down} left out of /render/" in caplog.text
    status, headers, body = client.request("/metrics/find", {"query": "app.hits.*"})
    assert status == 200 and down in headers[FAILED_HEADER]
    assert [n["text"] for n in json.loads(body)] == ["a", "b"]
    _, _, body = client.request("/cluster", {})
    by_peer = {p["peer"]: p for p in json.loads(body)}
    assert by_peer[down]["failures"] == 2 and "Refused" in by_peer[down]["last_error"]
    assert by_peer[peers[0].split("//")[1]]["failures"] == 0


class Hung:
    """A peer that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()
        self.thread.join(5)


def test_a_hung_peer_costs_the_timeout_and_no_more(roots, peers):
    hung = Hung()
    try:
        client, cluster = front(roots, [peers[0], hung.address], timeout=1.0)
        started = time.monotonic()
        status, headers, body = client.request("/render", {"target": "sumSeries(app.hits.*)", "from": "-1min",
                                                           "format": "json"})
        took = time.monotonic() - started
        assert status == 200
        assert [v for v, _ in json.loads(body)[0]["datapoints"]] == [11, 12, 13, 14, 15, 16]
        assert headers[FAILED_HEADER] == f"{hung.address} (timed out after 1s)"
        assert 1.0 <= took < 5.0  # generous: the machine is shared
        timeouts = {p["peer"]: p["timeouts"] for p in cluster.status()}
        assert timeouts[hung.address] == 1
    finally:
        hung.close()


def test_a_peer_answering_garbage_is_left_out(roots, peers):
    def garbage(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/x-msgpack")])
        return [b"\xc1\xc1 not msgpack"]

    def error(environ, start_response):
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"Bad request: nope\n"]

    with BackgroundServer(garbage) as bad, BackgroundServer(error) as refusing:
        client, _ = front(roots, [peers[1], bad, refusing])
        status, headers, body = client.request("/render", {"target": "app.hits.*", "from": "-1min",
                                                           "format": "json"})
        assert status == 200 and [s["target"] for s in json.loads(body)] == ["app.hits.c"]
        failed = headers[FAILED_HEADER]
        assert "undecodable answer" in failed and "HTTP 400 Bad request: nope" in failed


def test_peer_series_count_against_the_request_budget(roots, peers):
    client = Client(app(roots[2], Cluster(peers), max_series=2))
    message = client.error("/render", {"target": "app.hits.*", "from": "-1min"})
    assert "more than 2 series" in message


@pytest.mark.parametrize("spec", ["ftp://x:1", "host:notaport", ""])
def test_bad_cluster_server_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="cluster"):
        Cluster([spec] if spec else [])


def test_series_of_different_shapes_keep_the_one_with_fewer_gaps():
    import numpy as np

    from django_statsd_push.render.cluster import merge
    from django_statsd_push.render.series import Series

    nan = float("nan")
    first = Series("x", 0, 60, 10, np.array([1.0, nan, nan, nan, nan, 6.0]))
    coarse = Series("x", 0, 60, 20, np.array([1.0, 2.0, 3.0]))
    same = Series("x", 0, 60, 10, np.array([9.0, 2.0, nan, 4.0, 5.0, 9.0]))
    assert merge([first], [coarse])[0].step == 20  # fewer gaps wins when shapes differ
    merged = merge([first], [same])[0]  # same shape: only the gaps are filled, first wins elsewhere
    assert [None if v != v else v for v in merged.values.tolist()] == [1.0, 2.0, None, 4.0, 5.0, 6.0]
    assert [s.name for s in merge([first.copy(name="b")], [coarse.copy(name="a")])] == ["a", "b"]


def test_find_without_intervals_for_a_federating_front(roots):
    client = Client(app(roots[0]))
    _, _, body = client.request("/metrics/find", {"query": "app.hits.*", "format": "msgpack", "local": "1",
                                                  "intervals": "0"})
    assert [(n["path"], n["intervals"]) for n in msgpack.unpackb(body)] == [("app.hits.a", []), ("app.hits.b", [])]


def test_concurrent_requests_with_a_hung_peer_all_answer_within_the_timeout(roots, peers):
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    hung = Hung()
    try:
        front_app = app(roots[2], Cluster([peers[0], hung.address], timeout=1.0))
        with BackgroundServer(front_app) as url:
            def ask(_):
                started = time.monotonic()
                with urllib.request.urlopen(f"{url}/render?target=sumSeries(app.hits.*)&from=-1min&format=json",
                                            timeout=30) as response:
                    doc = json.loads(response.read())
                    return time.monotonic() - started, response.headers[FAILED_HEADER], doc

            with ThreadPoolExecutor(20) as pool:
                answers = list(pool.map(ask, range(20)))
        for took, failed, doc in answers:
            assert failed == f"{hung.address} (timed out after 1s)"
            assert [v for v, _ in doc[0]["datapoints"]] == [11, 12, 13, 14, 15, 16]
        assert max(took for took, _, _ in answers) < 10  # each waits its own second, not the others'
    finally:
        hung.close()


# -- tags, images and the request's time budget through the front (main's features) ------------
@pytest.fixture
def tagged_peers(tmp_path):
    """Two nodes, each with its own tag database and its own tagged series (as each node's
    carbon-cache posts the series it creates to its own render API)."""
    from django_statsd_push.render import tagdb

    servers, dbs = [], []
    for name, series in (("t1", ["cpu;dc=a;host=h1", "cpu;dc=b;host=h3"]), ("t2", ["cpu;dc=a;host=h2"])):
        root = tmp_path / name
        root.mkdir()
        db = tagdb.TagDB(tagdb.SQLiteStore(str(tmp_path / f"{name}.sqlite3")))
        for path in series:
            _, readable = tagdb.whisper_paths(str(root), path)
            write_metric(root, readable[len(str(root)) + 1:-4].replace("/", "."), [int(path[-1])] * 6)
        db.tag_multi_series(series)
        dbs.append(db)
        servers.append(BackgroundServer(RenderApp(str(root), static_dir=None, clock=lambda: NOW, tagdb=db)))
    urls = [server.__enter__() for server in servers]
    yield urls
    for server, db in zip(servers, dbs):
        server.__exit__(None, None, None)
        db.close()


def test_a_tagged_series_is_found_through_the_front(tmp_path, tagged_peers):
    from django_statsd_push.render import tagdb

    (tmp_path / "front").mkdir()
    own = tagdb.TagDB(tagdb.SQLiteStore(str(tmp_path / "front.sqlite3")))  # empty: the front holds no series
    client = Client(RenderApp(str(tmp_path / "front"), static_dir=None, clock=lambda: NOW, tagdb=own,
                              cluster=Cluster(tagged_peers)))
    doc = client.render("seriesByTag('name=cpu','dc=a')")
    assert [(s["target"], s["tags"], s["datapoints"][-1][0]) for s in doc] == [
        ("cpu;dc=a;host=h1", {"name": "cpu", "dc": "a", "host": "h1"}, 1.0),
        ("cpu;dc=a;host=h2", {"name": "cpu", "dc": "a", "host": "h2"}, 2.0)]
    assert client.values("sumSeries(seriesByTag('name=cpu'))") == [6.0] * 6
    grouped = client.render("groupByTags(seriesByTag('name=cpu'),'sum','dc')")
    assert [(s["target"], s["datapoints"][-1][0]) for s in grouped] == [("cpu;dc=a", 3.0), ("cpu;dc=b", 3.0)]
    # the tag views fan out too (graphite-web federates autocompletion the same way)
    status, headers, body = client.request("/tags/findSeries", {"expr": "dc=a"})
    assert status == 200 and FAILED_HEADER not in headers
    assert json.loads(body) == ["cpu;dc=a;host=h1", "cpu;dc=a;host=h2"]
    _, _, body = client.request("/tags/autoComplete/values", {"tag": "host"})
    assert json.loads(body) == ["h1", "h2", "h3"]
    _, _, body = client.request("/tags/autoComplete/tags", {"expr": "name=cpu"})
    assert json.loads(body) == ["dc", "host"]
    # a peer answers from its own database only when asked by a front (local=1)
    _, _, body = client.request("/tags/findSeries", {"expr": "dc=a", "local": "1"})
    assert json.loads(body) == []
    own.close()


def test_a_tagged_series_on_a_down_peer_is_a_partial_answer(tmp_path, tagged_peers, held_port):
    down = f"127.0.0.1:{held_port()}"  # refuses connections, and nothing else can listen there
    (tmp_path / "front").mkdir()
    client = Client(RenderApp(str(tmp_path / "front"), static_dir=None, clock=lambda: NOW,
                              cluster=Cluster([tagged_peers[1], down])))
    status, headers, body = client.request("/render", {"target": "seriesByTag('name=cpu')", "from": "-1min",
                                                       "format": "json"})
    assert status == 200 and [s["target"] for s in json.loads(body)] == ["cpu;dc=a;host=h2"]
    assert headers[FAILED_HEADER].startswith(down)


def test_the_front_draws_images_from_the_merged_series(roots, peers):
    client, _ = front(roots, peers)
    status, headers, body = client.request("/render", {"target": "both", "from": "-1min"})  # no format: PNG
    assert status == 200 and headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")
    assert FAILED_HEADER not in headers
    status, headers, body = client.request("/render", {"target": "sumSeries(app.hits.*)", "from": "-1min",
                                                       "format": "svg"})
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    # the SVG's metadata names the merged series and its y range covers the front's sum (111..116)
    assert b"sumSeries(app.hits.*)" in body


def test_the_peers_get_no_more_than_the_request_budget_leaves(roots, peers):
    hung = Hung()
    try:
        client = Client(app(roots[2], Cluster([peers[0], hung.address], timeout=5.0), time_budget=1.0))
        began = time.monotonic()
        status, headers, body = client.request("/render", {"target": "sumSeries(app.hits.*)", "from": "-1min",
                                                           "format": "json"})
        took = time.monotonic() - began
        assert status == 503, body  # the budget ran out waiting for the hung peer: main's answer for that
        assert b"time budget of 1 s" in body
        assert took < 4.0  # the budget (1s), not the cluster timeout (5s)
        client = Client(app(roots[2], Cluster([peers[0], hung.address], timeout=0.5), time_budget=10.0))
        status, headers, body = client.request("/render", {"target": "sumSeries(app.hits.*)", "from": "-1min",
                                                           "format": "json"})
        assert status == 200 and headers[FAILED_HEADER] == f"{hung.address} (timed out after 0.5s)"
    finally:
        hung.close()
