"""Tags and events against the real graphite-web 1.1.8 (its LocalDatabaseTagDB and events app),
fed the same series and events: the same requests must give the same answers."""

from __future__ import annotations

import json
import random

import pytest

from django_statsd_push.render import tagdb
from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.evaluator import Limits
from django_statsd_push.render.events import EventStore

from . import graphite_oracle
from .conftest import NOW, Client, write_metric
from .test_graphite_oracle import differences

pytestmark = pytest.mark.slow

# written with their tags in a non-canonical order: both TagDBs must normalise them
SERIES = [f"{name};host=h{h};dc=dc{h % 3}" + (";role=db" if h % 4 == 0 else ";role=web" if h % 4 == 1 else "")
          for name in ("cpu.load", "mem.used") for h in range(8)] + ["disk.free;dc=dc1", "weird-name;x=a.b.c"]

FIND = [
    ["name=cpu.load"], ["name=cpu.load", "dc=dc1"], ["dc!=dc1", "name=mem.used"], ["host=~h[0-3]"],
    ["host=~h", "dc=dc0"], ["role!=db", "name=cpu.load"], ["role=", "name=mem.used"], ["role!=", "dc=dc2"],
    ["role=~d", "name=~cpu"], ["role!=~d", "name=~cpu"], ["role!=~", "dc=dc0"], ["name=~.*\\.used$"],
    ["host=~^h1"], ["x=a.b.c"], ["name=nothing"], ["dc=dc1", "dc=dc2"],
    # graphite-web answers 400 to these: no expression requires a non-empty value, or none parses
    ["role!=db"], ["role=~.*"], ["nonsense"],
]
TARGETS = [
    "seriesByTag('name=cpu.load','dc=dc1')", 'seriesByTag("host=~h[12]")',
    "sumSeries(seriesByTag('name=cpu.load'))", "seriesByTag('name=cpu.load')|groupByTags('sum','dc')",
    "groupByTags(seriesByTag('name=~cpu.load|mem.used'),'average','name')",
    "groupByTags(seriesByTag('name=~cpu.load|mem.used'),'max','dc','name')",
    "groupByTags(seriesByTag('dc=dc0'),'sumSeries','dc')",
    "aliasByTags(seriesByTag('name=mem.used','dc=dc2'),'host','dc')",
    "aliasByTags(seriesByTag('name=mem.used','dc=dc2'),1,'host')",
    "aliasByNode(seriesByTag('name=cpu.load','host=h3'),'dc',0)",
    "scale(seriesByTag('name=disk.free'),2)", "mem.used;dc=dc1;host=h7",
    "averageSeries(seriesByTag('name=cpu.load','role!=web'))",
    "seriesByTag('name=nothing')",
]
EVENTS = [
    {"what": "deploy v1", "tags": ["deploy", "web"], "data": "first", "when": NOW - 3000},
    {"what": "deploy v2", "tags": "deploy db", "data": "it's; DROP TABLE events; --", "when": NOW - 2000},
    {"what": "outage", "tags": ["incident"], "data": "", "when": NOW - 1000},
    {"what": "note", "when": NOW - 500},
]
EVENT_QUERIES = [
    {}, {"tags": "deploy"}, {"tags": "deploy web"}, {"tags": "deploy incident", "set": "union"},
    {"tags": "deploy web", "set": "intersection"}, {"from": str(NOW - 2500), "until": str(NOW - 900)},
    {"tags": "nothing"},
]


def _strip_ids(doc):
    if isinstance(doc, list):
        return [_strip_ids(d) for d in doc]
    if isinstance(doc, dict):
        return {k: _strip_ids(v) for k, v in doc.items() if k != "id"}
    return doc


def test_tags_and_events_match_graphite_web(tmp_path, root):
    from ..conftest import require

    rng = random.Random(11)
    for path in SERIES:
        canonical = tagdb.canonical(path)
        hashed, readable = tagdb.whisper_paths(str(root), canonical)
        rel = readable[len(str(root)) + 1:-len(".wsp")]
        write_metric(root, rel.replace("/", "."), [rng.choice([None, rng.uniform(0, 100)]) for _ in range(30)])
    assert all(tagdb.tagged_nodes(str(root), [tagdb.canonical(p)]) for p in SERIES)

    reqs: list[dict] = [{"_path": "/tags/tagMultiSeries", "_method": "POST", "path": SERIES}]
    reqs += [{"_path": "/events/", "_json": json.dumps(e)} for e in EVENTS]
    reqs += [{"_path": "/tags/findSeries", "expr": e} for e in FIND]
    reqs += [{"target": t, "from": "-5min"} for t in TARGETS]
    reqs += [{"_path": "/tags"}, {"_path": "/tags", "filter": "^(d|h)"}, {"_path": "/tags/dc"},
             {"_path": "/tags/host", "filter": "h[1-3]", "limit": "2"},
             {"_path": "/tags/autoComplete/tags"}, {"_path": "/tags/autoComplete/tags", "tagPrefix": "r"},
             {"_path": "/tags/autoComplete/tags", "expr": ["name=cpu.load"]},
             {"_path": "/tags/autoComplete/values", "tag": "host", "valuePrefix": "h1"},
             {"_path": "/tags/autoComplete/values", "tag": "role", "expr": ["name=mem.used"]},
             {"_path": "/tags/autoComplete/values", "tag": "host", "expr": ["dc=dc0"], "limit": "2"}]
    reqs += [{"_path": "/events/get_data", **q} for q in EVENT_QUERIES]
    # /metrics/find: a tagged path is looked up by its file, a seriesByTag(...) query is no glob
    reqs += [{"_path": "/metrics/find/", "query": q, "local": "1"}
             for q in (tagdb.canonical(SERIES[3]), tagdb.canonical(SERIES[-1]), "disk.free;dc=dc2",
                       "seriesByTag('name=cpu.load')", "_tagged.*.*.disk*")]
    try:
        answers = graphite_oracle.render(tmp_path, [dict(r) for r in reqs], NOW, tagdb=True)
    except graphite_oracle.OracleUnavailable as exc:
        require(False, str(exc))

    store = tagdb.TagDB(tagdb.SQLiteStore(str(tmp_path / "ours.sqlite3")))
    events = EventStore(str(tmp_path / "events.sqlite3"), clock=lambda: NOW)
    client = Client(RenderApp(str(root), Limits(max_series=1000, max_points=1_000_000), static_dir=None,
                              clock=lambda: NOW, tagdb=store, events=events))
    failures = []
    try:
        for req, answer in zip(reqs, answers):
            params = dict(req)
            path = params.pop("_path", "/render")
            if "_json" in params:
                status, _, body = client.request(path, method="POST", body=params.pop("_json").encode(),
                                                 content_type="application/json")
            else:
                method = params.pop("_method", "GET")
                status, _, body = client.request(path, dict(params, format="json") if path == "/render" else params,
                                                 method=method)
            if answer["status"] != 200 or status != 200:
                if answer["status"] != status:
                    failures.append(f"{req}: graphite-web {answer['status']} {answer['body'][:200]}, "
                                    f"ours {status} {body[:200]!r}")
                continue
            if path.rstrip("/") == "/events":
                continue  # graphite-web answers an empty body, we the new id
            ours, theirs = json.loads(body), json.loads(answer["body"])
            if path == "/render":
                problem = differences(ours, theirs)
            else:
                problem = None if _strip_ids(ours) == _strip_ids(theirs) else f"ours {ours} graphite-web {theirs}"
            if problem:
                failures.append(f"{req}: {problem}")
        # deliberate difference: a tagged path with its tags out of order names the same series
        # (graphite-web hashes the path as written and finds no file)
        doc = client.render("cpu.load;role=web;host=h5;dc=dc2", **{"from": "-5min"})
        assert [s["target"] for s in doc] == ["cpu.load;dc=dc2;host=h5;role=web"]
    finally:
        store.close()
        events.close()
    assert not failures, "\n".join(failures)
