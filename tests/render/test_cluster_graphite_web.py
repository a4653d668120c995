"""Real graphite-web 1.1.8, served over HTTP by its own Django (runserver) with
CLUSTER_SERVERS naming two render API servers: it must find and read every series through
our cluster protocol (``local=1``, ``format=pickle`` on /metrics/find and /render), and
answer what our own federating front answers."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from django_statsd_push.render.cluster import Cluster
from django_statsd_push.render.httpserver import BackgroundServer
from tests.conftest import require

from . import graphite_oracle
from .conftest import NOW, Client, write_metric
from .test_cluster import app, tagged_peers  # noqa: F401  (a fixture)

# Its own settings module (GRAPHITE_SETTINGS_MODULE), so the shared venv's local_settings.py,
# which the oracle tests rewrite, is never involved.
CLUSTER_SETTINGS = graphite_oracle.LOCAL_SETTINGS + '''
CLUSTER_SERVERS = os.environ["CLUSTER_SERVERS"].split(",")
FIND_CACHE_DURATION = 0
'''


def get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def graphite_web(tmp_path, held_port):
    """Start graphite-web in front of the given servers; yields a function returning its URL."""
    try:
        python = graphite_oracle.graphite_python()
    except graphite_oracle.OracleUnavailable as exc:
        require(False, str(exc))
    procs: list[subprocess.Popen] = []

    def start(servers: list[str]) -> str:
        storage = tmp_path / "graphite-web"
        (storage / "whisper").mkdir(parents=True)
        (storage / "log").mkdir()
        (tmp_path / "cluster_test_settings.py").write_text(CLUSTER_SETTINGS)
        env = dict(graphite_oracle.environ(storage), PYTHONPATH=str(tmp_path),
                   GRAPHITE_SETTINGS_MODULE="cluster_test_settings",
                   CLUSTER_SERVERS=",".join(s.replace("http://", "") for s in servers))
        admin = [str(python), "-m", "django"]
        subprocess.run([*admin, "migrate", "--noinput", "-v", "0"], env=env, check=True, capture_output=True,
                       timeout=300)
        port = held_port()  # runserver binds with SO_REUSEADDR; it cannot say which port 0 gave it
        log = tmp_path / "runserver.log"
        with log.open("wb") as out:
            procs.append(subprocess.Popen([*admin, "runserver", "--noreload", f"127.0.0.1:{port}"], env=env,
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(url + "/version/", timeout=5)[0] == 200:
                    return url
            except OSError:
                pass
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                raise AssertionError("graphite-web did not start:\n"
                                     + log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def nodes(tmp_path):
    one, two, front = (tmp_path / name for name in ("one", "two", "front"))
    for d in (one, two, front):
        d.mkdir()
    for i in range(10):  # each series on exactly one node, as carbon-relay places them
        write_metric(one if i % 2 else two, f"app.hits.h{i}", [i, i, i, i, i, i])
    write_metric(one, "app.gauge", [1, 2, 3, 4, 5, 6])
    write_metric(one, "both", [1, None, 3, None, 5, None])
    write_metric(two, "both", [None, 20, None, 40, None, 60])
    with BackgroundServer(app(one)) as url_one, BackgroundServer(app(two)) as url_two:
        yield (url_one, url_two), front


def graphite_render(url: str, target: str) -> list:
    status, body = get(f"{url}/render/?target={target}&from=-1min&now={NOW}&format=json")
    assert status == 200, body[-2000:]
    return json.loads(body)


def test_graphite_web_in_front_of_two_render_servers(graphite_web, nodes):
    (url_one, url_two), front_root = nodes
    url = graphite_web([url_one, url_two])
    ours = Client(app(front_root, Cluster([url_one, url_two])))

    total = graphite_render(url, "sumSeries(app.hits.*)")
    assert [v for v, _ in total[0]["datapoints"]] == [45.0] * 6  # 0+1+...+9, every node counted once
    assert total == ours.render("sumSeries(app.hits.*)", now=str(NOW))

    listed = graphite_render(url, "app.hits.*")
    assert sorted(s["target"] for s in listed) == [f"app.hits.h{i}" for i in range(10)]

    both = graphite_render(url, "both")  # one name on two nodes: graphite-web merges gap by gap
    assert [v for v, _ in both[0]["datapoints"]] == [1, 20, 3, 40, 5, 60]
    assert both == ours.render("both", now=str(NOW))

    status, body = get(f"{url}/metrics/find/?query=app.*")
    assert status == 200
    found = sorted((n["text"], n["leaf"]) for n in json.loads(body))
    assert found == [("gauge", 1), ("hits", 0)]
    _, _, mine = ours.request("/metrics/find", {"query": "app.*"})
    assert found == sorted((n["text"], n["leaf"]) for n in json.loads(mine))

    status, body = get(f"{url}/metrics/expand/?query=app.hits.*")
    assert status == 200 and sorted(json.loads(body)["results"]) == [f"app.hits.h{i}" for i in range(10)]


def test_graphite_web_with_one_render_server_down(graphite_web, nodes, held_port):
    (url_one, _), _ = nodes
    down = f"127.0.0.1:{held_port()}"  # refuses connections, and nothing else can listen there
    url = graphite_web([url_one, down])
    total = graphite_render(url, "sumSeries(app.hits.*)")
    assert [v for v, _ in total[0]["datapoints"]] == [25.0] * 6  # 1+3+5+7+9: the live node's share



def test_graphite_web_finds_and_renders_tagged_series_on_two_render_servers(graphite_web, tagged_peers):
    """graphite-web sends seriesByTag(...) to its backends as a render target, and a tagged
    path to /metrics/find as it is: the backend holding the file answers the leaf."""
    url = graphite_web(tagged_peers)
    # a seriesByTag(...) query is no glob: graphite-web's own backend finds nothing for it,
    # and answers 200 (an error would make graphite-web skip that backend for a while)
    status, body = get(f"{url}/metrics/find/?query=" + quote("seriesByTag('name=cpu')"))
    assert (status, json.loads(body)) == (200, [])

    doc = graphite_render(url, quote("seriesByTag('name=cpu','dc=a')"))
    assert [(s["target"], s["tags"], s["datapoints"][-1][0]) for s in doc] == [
        ("cpu;dc=a;host=h1", {"name": "cpu", "dc": "a", "host": "h1"}, 1.0),
        ("cpu;dc=a;host=h2", {"name": "cpu", "dc": "a", "host": "h2"}, 2.0)]
    grouped = graphite_render(url, quote("groupByTags(seriesByTag('name=cpu'),'sum','dc')"))
    assert [(s["target"], s["datapoints"][-1][0]) for s in grouped] == [("cpu;dc=a", 3.0), ("cpu;dc=b", 3.0)]

    for path, value in (("cpu;dc=a;host=h2", 2.0), ("cpu;dc=b;host=h3", 3.0)):  # one on each server
        status, body = get(f"{url}/metrics/find/?query={quote(path)}")
        assert status == 200 and [(n["id"], n["leaf"]) for n in json.loads(body)] == [(path, 1)], body
        status, body = get(f"{url}/metrics/find/?query={quote(path)}&format=json")
        assert [(n["path"], n["is_leaf"]) for n in json.loads(body)] == [(path, True)], body
        assert [v for v, _ in graphite_render(url, quote(path))[0]["datapoints"]] == [value] * 6
