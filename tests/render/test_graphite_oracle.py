"""The real graphite-web 1.1.8 as an oracle: the same requests over the same Whisper files
must give the same series names, timestamps, values and tags."""

from __future__ import annotations

import json
import math
import os
import pickle
import random

import pytest

from . import graphite_oracle
from .conftest import NOW, write_metric

pytestmark = pytest.mark.slow
TARGETS = os.path.join(os.path.dirname(__file__), "oracle_targets.txt")


def requests() -> list[dict]:
    out = []
    with open(TARGETS) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            target, *extra = line.split(" && ")
            out.append({"target": target, "from": "-1min", **dict(e.split("=", 1) for e in extra)})
    return out


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def differences(ours: list, theirs: list, values: bool = True) -> str | None:
    if [s["target"] for s in ours] != [s["target"] for s in theirs]:
        return f"names {[s['target'] for s in ours]} != {[s['target'] for s in theirs]}"
    for mine, ref in zip(ours, theirs):
        if [t for _, t in mine["datapoints"]] != [t for _, t in ref["datapoints"]]:
            return f"{mine['target']}: timestamps differ"
        for (v, t), (w, _) in zip(mine["datapoints"], ref["datapoints"]):
            if values and not _same(v, w):
                return f"{mine['target']}: at {t} ours {v} graphite-web {w}"
        if mine["tags"] != ref["tags"]:
            return f"{mine['target']}: tags {mine['tags']} != {ref['tags']}"
    return None


def path_differences(ours: list, theirs: list) -> str | None:
    mine = [(s["name"], s["pathExpression"]) for s in ours]
    ref = [(s["name"], s["pathExpression"]) for s in theirs]
    return None if mine == ref else f"pathExpressions {mine} != {ref}"


def test_render_matches_graphite_web(tmp_path, root, data, client):
    from ..conftest import require

    rng = random.Random(5)
    write_metric(root, "noisy", [rng.choice([None, rng.uniform(-50, 50)]) for _ in range(2000)])
    for i in range(5):
        write_metric(root, f"n.s{i}", [rng.choice([None, rng.uniform(-10, 100)]) if rng.random() < 0.8 else None
                                       for _ in range(800)])
    write_metric(root, "coarse", [100, 200, None, 400], step=30, retentions=((30, 1000),))
    reqs = requests()
    try:
        # the pickle format carries what JSON does not: each series' pathExpression
        answers = graphite_oracle.render(tmp_path, reqs + [dict(r, format="pickle") for r in reqs], NOW)
    except graphite_oracle.OracleUnavailable as exc:
        require(False, str(exc))
    answers, pickled = answers[: len(reqs)], answers[len(reqs):]
    client.app.limits = type(client.app.limits)(max_series=1000, max_points=10_000_000)
    failures = []
    for req, answer, pickle_answer in zip(reqs, answers, pickled):
        shape_only = req.pop("_shape", None)  # random values (randomWalk): names, times, tags only
        status, _, body = client.request("/render", dict(req, format="json"))
        if answer["status"] != 200:
            # graphite-web's 400s must be ours too; its 500s are its crashes (e.g. 1.1.8's
            # nonNegativeDerivative(maxValue) on a null), where we answer instead
            if answer["status"] == 400 and status != 400 or status == 500:
                failures.append(f"{req}: graphite-web {answer['status']}, ours {status}")
            continue
        assert status == 200, (req, body)
        problem = differences(json.loads(body), json.loads(answer["body"]), values=shape_only != "1")
        if not problem and pickle_answer["status"] == 200:
            _, _, mine = client.request("/render", dict(req, format="pickle"))
            problem = path_differences(pickle.loads(mine), pickle.loads(bytes.fromhex(pickle_answer["body"])))
        if problem:
            failures.append(f"{req['target']} {req}: {problem}")
    assert not failures, "\n".join(failures)
    assert len(reqs) > 180
    assert sum(a["status"] != 200 for a in answers) <= len(reqs) // 8  # the comparison really ran


FINDS = ["*", "a.*", "a.b*.c", "srv.{h1,h2}.cpu.*", "a.b[12]", "nothing.*", "srv.h1.cpu.u*", "n.s?", "*.*",
         "a.b[!1]", "srv.{h1,h*}.cpu.{us*,sys}", "*.h?.*.*r", "a.[a-b][0-9]", "srv.*.cpu.*s*e*"]


def test_find_matches_graphite_web(tmp_path, root, data, client):
    from ..conftest import require

    reqs = [{"_path": "/metrics/find", "query": q} for q in FINDS]
    reqs += [{"_path": "/metrics/find", "query": q, "format": "completer"} for q in ("a.b", "srv.h1.cpu.", "c")]
    reqs += [{"_path": "/metrics/expand", "query": q} for q in ("a.*.c", "srv.*")]
    reqs += [{"_path": "/metrics/find", "query": q, "wildcards": "1"} for q in ("a.*", "a.b1.*", "*")]
    reqs += [{"_path": "/metrics/find", "query": "a.*", "jsonp": "cb"}]
    reqs += [{"_path": "/metrics/find", "query": q, "format": "json"} for q in ("*", "a.*", "srv.*.cpu.*", "nothing")]
    reqs += [{"_path": "/metrics/find", "query": q, "format": "completer", "wildcards": "1"} for q in ("a.b", "c")]
    reqs += [{"_path": "/metrics/find", "query": "srv.*.cpu.*", "format": "nodelist", "position": p}
             for p in ("1", "-1", "0")]
    reqs += [{"_path": "/metrics/find", "query": "a.*", "format": "nodelist"}]
    try:
        answers = graphite_oracle.render(tmp_path, reqs, NOW)
    except graphite_oracle.OracleUnavailable as exc:
        require(False, str(exc))
    for req, answer in zip(reqs, answers):
        params = {k: v for k, v in req.items() if k != "_path"}
        status, _, body = client.request(req["_path"], params)
        assert status == answer["status"], req
        if "jsonp" in req:
            assert body.decode() == answer["body"], req
        elif req.get("format") == "json":
            # a leaf's interval starts at now minus its retention: graphite-web's now is the
            # wall clock, ours the test's; the shape, paths, leaf flags and ends must agree
            mine, theirs = json.loads(body), json.loads(answer["body"])
            for entry in mine:
                for interval in entry.get("intervals", []):
                    assert interval.pop("start") == NOW - 60 * 10080, req
            for entry in theirs:
                for interval in entry.get("intervals", []):
                    interval.pop("start")
            assert mine == theirs, req
        else:
            assert json.loads(body) == json.loads(answer["body"]), req


FORMAT_TARGETS = ["a.b*.c", "sumSeries(n.*)", "scale(noisy, 1e300)", "constantLine(1.5)"]


def test_csv_raw_and_pickle_match_graphite_web(tmp_path, root, data, client):
    from ..conftest import require

    rng = random.Random(7)
    for i in range(3):
        write_metric(root, f"n.s{i}", [rng.choice([None, rng.uniform(-1e6, 1e6)]) for _ in range(400)])
    write_metric(root, "noisy", [rng.choice([None, rng.uniform(-5, 5)]) for _ in range(400)])
    reqs = [{"target": t, "from": "-20min", "format": f} for t in FORMAT_TARGETS for f in ("csv", "raw", "pickle")]
    try:
        answers = graphite_oracle.render(tmp_path, reqs, NOW)
    except graphite_oracle.OracleUnavailable as exc:
        require(False, str(exc))
    for req, answer in zip(reqs, answers):
        status, _, body = client.request("/render", req)
        assert status == answer["status"] == 200, req
        if req["format"] == "pickle":
            theirs = pickle.loads(bytes.fromhex(answer["body"]))
            mine = pickle.loads(body)
            assert [{k: v for k, v in s.items() if k != "values"} for s in mine] == \
                [{k: v for k, v in s.items() if k != "values"} for s in theirs], req
            for m, t in zip(mine, theirs):
                assert all(_same(a, b) for a, b in zip(m["values"], t["values"])) and len(m["values"]) == len(
                    t["values"]), req
        else:
            assert body.decode() == answer["body"], req


#: graphite-web's Python signature (the "function" string) names a parameter differently
#: from its own parameter record; ours follow the record, which Grafana's editor uses
SIGNATURE_DIFFERS = {"aggregateWithWildcards", "legendValue", "powSeries", "stacked", "timeShift"}


def test_functions_endpoint_matches_graphite_web(tmp_path, root, client):
    """Grafana's function editor reads /functions: the same functions with the same names,
    signatures, groups and parameter records (names, types, defaults, options)."""
    from ..conftest import require

    reqs = [{"_path": "/functions"}, {"_path": "/functions", "grouped": "1"}, {"_path": "/functions/highest"},
            {"_path": "/functions/pct"}, {"_path": "/functions/nonesuch"}]
    try:
        answers = graphite_oracle.render(tmp_path, reqs, NOW)
    except graphite_oracle.OracleUnavailable as exc:
        require(False, str(exc))
    ours = [client.request(r["_path"], {k: v for k, v in r.items() if k != "_path"}) for r in reqs]
    assert [status for status, _, _ in ours] == [a["status"] for a in answers]
    theirs_all, mine_all = json.loads(answers[0]["body"]), json.loads(ours[0][2])
    assert set(mine_all) == set(theirs_all)
    for name, mine in mine_all.items():
        ref = theirs_all[name]
        assert (mine["name"], mine["module"], mine["group"]) == (ref["name"], ref["module"], ref["group"]), name
        if name not in SIGNATURE_DIFFERS:
            assert mine["function"] == ref["function"], name
        assert mine["description"].strip(), name
        assert mine["params"] == ref["params"], name
    grouped_theirs, grouped_mine = json.loads(answers[1]["body"]), json.loads(ours[1][2])
    assert {g: set(fs) for g, fs in grouped_theirs.items()} == \
        {g: set(fs) for g, fs in grouped_mine.items()}
    for (_, _, body), answer in zip(ours[2:4], answers[2:4]):
        mine, ref = json.loads(body), json.loads(answer["body"])
        assert {k: v for k, v in mine.items() if k != "description"} == \
            {k: v for k, v in ref.items() if k != "description"}
