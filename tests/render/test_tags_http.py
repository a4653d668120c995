"""The /tags HTTP API and tag functions through the WSGI app: what carbon sends (multipart
form), graphite's parameter forms, and bad input as 400/405/404 naming the problem."""

from __future__ import annotations

import json

import pytest
import urllib3

from django_statsd_push.render import tagdb
from django_statsd_push.render.app import MAX_BODY, RenderApp
from django_statsd_push.render.evaluator import Limits

from .conftest import NOW, Client, write_metric


@pytest.fixture
def tags(tmp_path, root):
    db = tagdb.TagDB(tagdb.SQLiteStore(str(tmp_path / "tags.sqlite3")))
    for i, path in enumerate(["cpu;dc=a;host=h1", "cpu;dc=a;host=h2", "cpu;dc=b;host=h3"]):
        _, readable = tagdb.whisper_paths(str(root), path)
        write_metric(root, readable[len(str(root)) + 1:-4].replace("/", "."), [i + 1] * 6)
    db.tag_multi_series(["cpu;dc=a;host=h1", "cpu;host=h2;dc=a", "cpu;dc=b;host=h3"])
    yield Client(RenderApp(str(root), Limits(max_series=50, max_points=100_000), static_dir=None,
                           clock=lambda: NOW, tagdb=db))
    db.close()


def body(result) -> object:
    status, _, payload = result
    assert status == 200, payload
    return json.loads(payload)


def test_tag_series_as_carbon_sends_it(tags):
    payload, ctype = urllib3.encode_multipart_formdata([("path", "mem;host=h9;dc=c"), ("path", "mem;dc=d")])
    assert body(tags.request("/tags/tagMultiSeries", method="POST", body=payload,
                             content_type=ctype)) == ["mem;dc=c;host=h9", "mem;dc=d"]
    assert body(tags.request("/tags/findSeries", {"expr": "name=mem"})) == ["mem;dc=c;host=h9", "mem;dc=d"]
    assert body(tags.request("/tags/tagSeries", {"path": "one;a=1"}, method="POST")) == "one;a=1"
    assert body(tags.request("/tags/delSeries", {"path[]": ["one;a=1"]}, method="POST")) is True
    assert body(tags.request("/tags/findSeries", {"expr[]": ["name=one"]})) == []


def test_lists_and_autocomplete(tags):
    assert body(tags.request("/tags", {})) == [{"tag": "dc"}, {"tag": "host"}, {"tag": "name"}]
    assert body(tags.request("/tags/", {"filter": "d", "limit": "5"})) == [{"tag": "dc"}]
    assert body(tags.request("/tags/dc", {})) == {"tag": "dc", "values": [{"value": "a", "count": 2},
                                                                          {"value": "b", "count": 1}]}
    assert body(tags.request("/tags/autoComplete/tags", {"expr": "dc=a"})) == ["host", "name"]
    assert body(tags.request("/tags/autoComplete/values", {"tag": "host", "expr": "dc=a", "limit": "1"})) == ["h1"]
    assert body(tags.request("/tags/autoComplete/values", {"tag": "host", "valuePrefix": "h3"})) == ["h3"]


def test_render_with_tags(tags):
    doc = tags.render("seriesByTag('dc=a')")
    assert [(s["target"], s["tags"]) for s in doc] == [
        ("cpu;dc=a;host=h1", {"name": "cpu", "dc": "a", "host": "h1"}),
        ("cpu;dc=a;host=h2", {"name": "cpu", "dc": "a", "host": "h2"})]
    doc = tags.render("seriesByTag('name=cpu')|groupByTags('sum','dc')|aliasByTags('dc')")
    assert [(s["target"], s["datapoints"][-1][0]) for s in doc] == [("a", 3.0), ("b", 3.0)]
    doc = tags.render("sumSeries(seriesByTag(\"name=cpu\"))")
    assert doc[0]["target"] == 'sumSeries(seriesByTag("name=cpu"))'
    assert doc[0]["tags"] == {"name": "cpu", "aggregatedBy": "sum"}


@pytest.mark.parametrize("path, params, needle", [
    ("/tags/findSeries", {}, "no tag expressions"),
    ("/tags/findSeries", {"expr": "dc!=a"}, "at least one tag expression"),
    ("/tags/findSeries", {"expr": "dc=~("}, "invalid regular expression"),
    ("/tags/findSeries", {"expr": ["dc=a"] * 40}, "more than 32"),
    ("/tags/autoComplete/values", {}, "no tag specified"),
    ("/tags/autoComplete/tags", {"limit": "x"}, "'limit' must be an integer"),
    ("/tags", {"limit": "-1"}, "must not be negative"),
    ("/tags", {"filter": "(("}, "invalid regular expression"),
    ("/render", {"target": "seriesByTag()"}, "no tag expressions given"),
    ("/render", {"target": "seriesByTag('dc')"}, "invalid tag expression"),
    ("/render", {"target": "seriesByTag('dc=a')|groupByTags('sum')"}, "groupByTags(): no tags specified"),
    ("/render", {"target": "groupByTags(seriesByTag('name=cpu'),'sum','nope')"}, "lacks one of the tags"),
    ("/render", {"target": "groupByTags(seriesByTag('name=cpu'),'nofunc','dc')"}, "callback"),
    ("/render", {"target": "cpu;dc="}, "empty value"),
])
def test_bad_queries_are_400s_naming_the_problem(tags, path, params, needle):
    assert needle in tags.error(path, params)


def test_bad_writes_store_nothing(tags):
    for params in ({"path": "bad;dc="}, {"path": ["ok;x=1", "bad;=1"]}, {"path": "a/../b;x=1"}, {}):
        status, _, payload = tags.request("/tags/tagMultiSeries", params, method="POST")
        assert status == 400 and b"Traceback" not in payload, payload
    assert body(tags.request("/tags/findSeries", {"expr": "name=~ok|bad|a"})) == []
    status, _, _ = tags.request("/tags/tagMultiSeries", {"path": [f"x;i={i}" for i in range(10_001)]},
                                method="POST")
    assert status == 400
    status, _, payload = tags.request("/tags/tagSeries", method="POST", body=b"x" * (MAX_BODY + 1))
    assert status == 400 and b"larger than" in payload
    status, _, payload = tags.request("/tags/tagSeries", method="POST", body=b"--zz\r\nbroken",
                                      content_type="multipart/form-data; boundary=zz")
    assert status == 400, payload


def test_wrong_method_and_unknown_tag(tags):
    assert tags.request("/tags/tagSeries", {"path": "a;b=c"})[0] == 405
    assert tags.request("/tags/delSeries", {"path": "a;b=c"})[0] == 405
    assert tags.request("/tags/nope", {})[0] == 404
    assert tags.request("/tags/dc", method="DELETE")[0] == 405


def test_without_a_tag_database_lists_are_empty(client):
    assert body(client.request("/tags", {})) == []
    assert body(client.request("/tags/autoComplete/tags", {})) == []
    assert body(client.request("/render", {"target": "seriesByTag('a=b')", "format": "json"})) == []
