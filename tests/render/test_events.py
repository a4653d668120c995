"""Graphite's events API and the events() render function, over the SQLite event store."""

from __future__ import annotations

import json

import pytest

from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.evaluator import Limits
from django_statsd_push.render.events import MAX_BODY, MAX_DATA, EventStore

from .conftest import NOW, Client


@pytest.fixture
def store(tmp_path):
    s = EventStore(str(tmp_path / "events.sqlite3"), clock=lambda: NOW)
    yield s
    s.close()


@pytest.fixture
def events(root, store):
    return Client(RenderApp(str(root), Limits(max_series=50, max_points=1_000_000), static_dir=None,
                            clock=lambda: NOW, events=store))


def post(client, doc) -> tuple[int, bytes]:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    status, _, payload = client.request("/events/", method="POST", body=raw, content_type="application/json")
    return status, payload


def get(client, path="/events/get_data", **params):
    status, _, payload = client.request(path, params)
    assert status == 200, payload
    return json.loads(payload)


def test_round_trip(events):
    status, payload = post(events, {"what": "deploy v1.4", "tags": ["deploy", "web"], "data": "by ci",
                                    "when": NOW - 60})
    assert status == 200
    event_id = json.loads(payload)["id"]
    assert post(events, {"what": "restart", "tags": "ops web", "when": NOW - 30})[0] == 200
    assert post(events, {"what": "no tags"})[0] == 200  # "when" defaults to now
    assert get(events, f"/events/{event_id}") == {"id": event_id, "when": NOW - 60, "what": "deploy v1.4",
                                                  "data": "by ci", "tags": ["deploy", "web"]}
    assert [e["what"] for e in get(events)] == ["deploy v1.4", "restart", "no tags"]
    assert [e["what"] for e in get(events, tags="web")] == ["deploy v1.4", "restart"]
    assert [e["what"] for e in get(events, tags="web deploy")] == ["deploy v1.4"]
    assert [e["what"] for e in get(events, tags="deploy ops", set="union")] == ["deploy v1.4", "restart"]
    assert [e["what"] for e in get(events, tags="deploy ops", set="intersection")] == []
    assert [e["what"] for e in get(events, **{"from": "-45s", "until": "-10s"})] == ["restart"]
    assert [e["what"] for e in get(events, **{"from": str(NOW - 100), "until": str(NOW - 50)})] == ["deploy v1.4"]
    assert get(events, "/events/", tags="ops")[0]["what"] == "restart"
    status, _, payload = events.request("/events/get_data", {"tags": "web", "jsonp": "cb"})
    assert status == 200 and payload.startswith(b"cb([")
    assert events.request(f"/events/{event_id}", method="DELETE")[0] == 200
    assert events.request(f"/events/{event_id}", {})[0] == 404
    assert events.request(f"/events/{event_id}", method="DELETE")[0] == 404
    assert [e["what"] for e in get(events, tags="web")] == ["restart"]


@pytest.mark.parametrize("raw, needle", [
    (b"not json", b"not valid JSON"),
    (b"[1, 2]", b"must be a JSON object"),
    (b'{"tags": ["x"]}', b'needs "what"'),
    (b'{"what": ""}', b'needs "what"'),
    (b'{"what": 5}', b'needs "what"'),
    (json.dumps({"what": "x" * 300}).encode(), b"longer than 255"),
    (json.dumps({"what": "x", "tags": {"a": 1}}).encode(), b'"tags" must be'),
    (json.dumps({"what": "x", "tags": [1, 2]}).encode(), b'"tags" must be'),
    (json.dumps({"what": "x", "tags": [f"t{i}" for i in range(40)]}).encode(), b"more than 32 tags"),
    (json.dumps({"what": "x", "when": "soon"}).encode(), b'"when" must be epoch seconds'),
    (json.dumps({"what": "x", "when": -5}).encode(), b'"when" must be epoch seconds'),
    (json.dumps({"what": "x", "when": 1e300}).encode(), b'"when" must be epoch seconds'),
    (json.dumps({"what": "x\u0000y"}).encode(), b"NUL"),
    (json.dumps({"what": "x", "data": "d" * (MAX_DATA + 1)}).encode(), b"longer than"),
    (b"\xff\xfe", b"not valid JSON"),
])
def test_bad_event_bodies_are_400s_and_store_nothing(events, raw, needle):
    status, payload = post(events, raw)
    assert status == 400, payload
    assert needle in payload and b"Traceback" not in payload
    assert get(events) == []


def test_oversized_body(events):
    status, payload = post(events, json.dumps({"what": "x", "data": "d" * (MAX_BODY + 10)}).encode())
    assert status == 400 and b"larger than" in payload


def test_sql_metacharacters_in_text_and_tags_are_kept_verbatim(events):
    evil = {"what": "x'); DROP TABLE events; --", "tags": ["a'b", "%", "_"], "data": '"; DELETE FROM event_tags'}
    assert post(events, dict(evil, when=NOW))[0] == 200
    assert post(events, {"what": "other", "tags": ["ab", "x"], "when": NOW})[0] == 200
    (found,) = get(events, tags="a'b")
    assert (found["what"], found["tags"], found["data"]) == (evil["what"], evil["tags"], evil["data"])
    assert [e["what"] for e in get(events, tags="%")] == [evil["what"]]  # not a LIKE wildcard
    assert [e["what"] for e in get(events, tags="_ %")] == [evil["what"]]
    assert len(get(events)) == 2


def test_bad_queries(events):
    assert b"set" in events.error("/events/get_data", {"set": "xor"}).encode()
    assert events.request("/events/abc", {})[0] == 404
    assert events.request("/events/99999999999999999999999", {})[0] == 404
    assert events.request("/events/get_data", {"from": "garbage"})[0] == 400


def test_retention_and_count_limit(tmp_path):
    now = [NOW]
    store = EventStore(str(tmp_path / "e.sqlite3"), retention_seconds=3600, max_events=3, clock=lambda: now[0])
    try:
        for i in range(5):
            store.add({"when": NOW - 100 + i, "what": f"e{i}", "data": "", "tags": ["t"]})
        assert [e["what"] for e in store.find(0, NOW)] == ["e2", "e3", "e4"]  # the newest 3 kept
        now[0] = NOW + 3600 - 97  # e2 is now past retention
        store.add({"when": now[0], "what": "late", "data": "", "tags": []})
        assert [e["what"] for e in store.find(0, now[0])] == ["e3", "e4", "late"]
        assert [e["what"] for e in store.find(0, now[0], tags=["t"])] == ["e3", "e4"]
    finally:
        store.close()


def test_events_function_counts_per_second(events):
    for when, tags in ((NOW - 30, ["deploy"]), (NOW - 30, ["deploy", "web"]), (NOW - 10, ["web"]),
                       (NOW - 500, ["deploy"])):
        assert post(events, {"what": "e", "tags": tags, "when": when})[0] == 200
    doc = events.render('events("deploy")', **{"from": "-1min"})
    assert doc[0]["target"] == 'events("deploy")'
    points = {t: v for v, t in doc[0]["datapoints"] if v is not None}
    assert points == {NOW - 30: 2}
    doc = events.render('events("*")', **{"from": "-1min"})
    assert {t: v for v, t in doc[0]["datapoints"] if v is not None} == {NOW - 30: 2, NOW - 10: 1}
    doc = events.render("events('deploy','web')", **{"from": "-1min"})
    assert {t: v for v, t in doc[0]["datapoints"] if v is not None} == {NOW - 30: 1}
    doc = events.render("alias(events('web'),'deploys')", **{"from": "-1min"})  # (drawAsInfinite is rfuncs')
    assert doc[0]["target"] == "deploys" and doc[0]["datapoints"][-10] == [1, NOW - 10]
    status, _, payload = events.request("/render", {"target": "events('*')", "from": "-400d", "format": "json"})
    assert status == 400 and b"points" in payload  # one point per second: bounded by --max-points


def test_a_json_event_sent_as_a_form_is_read_too(events):
    """``curl -d '{...}' URL`` sends JSON with the form content type; graphite-web reads the body."""
    body = json.dumps({"what": "curl deploy", "tags": "deploy"}).encode()
    status, _, payload = events.request("/events/", method="POST", body=body,
                                        content_type="application/x-www-form-urlencoded")
    assert status == 200, payload
    assert [e["what"] for e in get(events, tags="deploy")] == ["curl deploy"]
