"""No request can stall the server: hostile requests against a real ``statsd-push render``
process. The latency figures are printed (``-s``); the 100 ms target for /version is
checked by ``bench/render.py --hostile``, the bounds here are generous for a loaded machine."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlencode

import pytest

from .conftest import RenderProcess, render_process, write_metric

A_RUN = "a" * 60
BACKTRACKING = r"^(?=a)(a|aa)+$"  # look-around: RE2 refuses it; exponential on A_RUN + ".b"
ISSUE_PATTERN = r"^(\w+\.?)+X$"  # the expression that froze the server in the issue
LONG_PATH = "x." + ".".join(["abcdefgh"] * 8) + ".end"


@pytest.fixture
def hostile_root(root):
    write_metric(root, A_RUN + ".b", [1, 2, 3])
    write_metric(root, LONG_PATH, [1, 2, 3])
    for i in range(8):
        write_metric(root, f"w.n{i}", [i])
    return root


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper")
    for i in range(8):
        write_metric(root, f"w.n{i}", [i])
    write_metric(root, "long", [1], retentions=((60, 200_000),))  # 139 days of minutes
    with render_process(root, "--max-series", "5", "--max-points", "100000") as server:
        yield server


def get(server: RenderProcess, path: str, params=(), timeout: float = 60) -> tuple[int, str, float]:
    """One GET on a fresh connection: (status, body, seconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path + ("?" + urlencode(params) if params else ""))
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace"), time.perf_counter() - started
    finally:
        conn.close()


def hostile_render(server: RenderProcess, results: list) -> threading.Thread:
    """Start the backtracking grep in a thread; its (status, body, seconds) or exception lands in results."""

    def run():
        try:
            results.append(get(server, "/render", {"target": f"grep({A_RUN}.*, '{BACKTRACKING}')",
                                                   "format": "json", "from": "-1min"}))
        except OSError as exc:
            results.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def await_busy(server: RenderProcess, cpu_seconds: float = 0.3, deadline: float = 60) -> None:
    """Return once the server has burnt ``cpu_seconds`` more CPU: it is inside the hostile match."""
    base = server.cpu_seconds()
    end = time.monotonic() + deadline
    while server.cpu_seconds() - base < cpu_seconds:
        assert time.monotonic() < end, "the hostile request never started running"
        time.sleep(0.02)


def test_version_answers_while_a_hostile_regex_runs(hostile_root):
    with render_process(hostile_root, "--regex-budget", "4") as server:
        results: list = []
        thread = hostile_render(server, results)
        await_busy(server)
        latencies = []
        while thread.is_alive() and len(latencies) < 20:
            status, body, seconds = get(server, "/version", timeout=10)
            assert (status, body.strip()) == (200, "1.1.8")
            latencies.append(seconds)
        thread.join(60)
        print(f"\n/version during a hostile regex: n={len(latencies)} max={max(latencies) * 1000:.1f} ms "
              f"median={sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
        assert len(latencies) >= 3  # measured while the hostile request was still running
        assert max(latencies) < 1.5, latencies  # target 100 ms (bench); generous for a shared machine
        status, body, seconds = results[0]
        assert status == 400, body
        assert f"regular expression '{BACKTRACKING}' in grep ran past its time budget of 4 s" in body
        assert seconds < 30


def test_issue_expression_answers_at_once(hostile_root):
    with render_process(hostile_root) as server:
        status, body, seconds = get(server, "/render", {"target": f"aliasSub(x.*.*.*.*.*.*.*.*.*, "
                                                                  f"'{ISSUE_PATTERN}', 'x')",
                                                        "format": "json", "from": "-1min"})
        print(f"\naliasSub with {ISSUE_PATTERN}: {seconds * 1000:.1f} ms")
        assert status == 200, body
        assert f'"target":"{LONG_PATH}"' in body  # no match: the name is unchanged
        assert seconds < 10


def test_sigterm_ends_the_server_during_a_hostile_request(hostile_root):
    with render_process(hostile_root, "--regex-budget", "120", "--time-budget", "300") as server:
        results: list = []
        hostile_render(server, results)
        await_busy(server)
        started = time.monotonic()
        code = server.stop(timeout=30)
        took = time.monotonic() - started
        print(f"\nSIGTERM to exit during a hostile request: {took:.2f} s")
        assert code == 0
        assert took < 5 + 2  # the contract is 5 s; 2 s slack for a loaded machine


def test_sigterm_lets_a_request_in_flight_finish(hostile_root):
    """Within the stop grace, a request already running still gets its answer (a grace
    longer than the default 3 s: on a loaded machine the answer may take longer to write)."""
    with render_process(hostile_root, "--regex-budget", "1.5", "--stop-grace", "20") as server:
        results: list = []
        thread = hostile_render(server, results)
        await_busy(server)
        assert server.stop(timeout=30) == 0
        thread.join(30)
        status, body, _ = results[0]
        assert status == 400 and "time budget of 1.5 s (--regex-budget)" in body, body


def test_request_over_its_time_budget_is_a_503_naming_it(hostile_root):
    with render_process(hostile_root, "--time-budget", "1", "--regex-budget", "120") as server:
        results: list = []
        hostile_render(server, results).join(60)
        status, body, seconds = results[0]
        assert status == 503, body
        assert "time budget of 1 s (--time-budget)" in body and BACKTRACKING in body
        assert seconds < 30


@pytest.mark.parametrize(("path", "params", "expected"), [
    ("/render", {"target": "long", "from": "-100y"}, "more than 100000 points (--max-points)"),
    ("/render", {"target": "summarize(w.n1, '1s')", "from": "-1y"}, "--max-points"),
    ("/render", {"target": "sumSeries(" * 300 + "w.n1" + ")" * 300}, "nested deeper than"),
    ("/render", {"target": "w.n1" + "x" * 20000}, "target longer than"),
    ("/render", {"target": "w.*"}, "more than 5"),
    ("/metrics/find", {"query": "w.*"}, "matches more than 5 nodes"),
    ("/metrics/find", {"query": "*." * 1000 + "*"}, "longer than 2000 characters"),
    ("/render", {"target": f"grep(w.n{{1,2}}, '{'a' * 3000}')"}, "longer than 2000 characters"),
    ("/render", {"target": "aliasSub(w.n1, '(', 'x')"}, "invalid regular expression '(' in aliasSub"),
    ("/render", {"target": r"aliasSub(w.n1, '(n)', '\3')"}, "invalid group reference 3"),
], ids=["huge-range", "huge-summarize", "deep-nesting", "huge-target", "too-many-series", "huge-find", "long-find",
        "long-regex", "bad-regex", "bad-template"])
def test_hostile_inputs_are_400s_naming_the_limit(limited_server, path, params, expected):
    status, body, seconds = get(limited_server, path, {"format": "json", **params})
    assert status == 400, body[:300]
    assert expected in body, body[:300]
    assert "Traceback" not in body
    assert seconds < 30
