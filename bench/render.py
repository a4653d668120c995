"""Render API latency: sumSeries over a 1000-series glob, /metrics/find returning 1000 nodes,
a PNG graph of 20 series x 720 points, and seriesByTag over 10000 tagged series.

Creates 1000 Whisper files (10 s resolution, 2 h of data each) with the ``whisper``
library, starts ``statsd-push render`` as a separate process (so the client does not
share its interpreter), and prints the median latency over HTTP of each query, the CPU
time per request, and the ratio against graphite-web 1.1.8 measured on this kind of
machine (448 ms / 32 ms / 100 ms).

Unless ``--no-peer``, it also runs the real graphite-web 1.1.8 (in its own venv, see
tests/render/graphite_oracle.py; gunicorn, one sync worker) over the same files in the
same run, checks it answers the same, and prints that ratio too. The two servers take
turns request by request, so load from elsewhere falls on both alike.

Tags: ``--tagged`` tagged series (default 10000, 1 h of data each) are written where carbon
puts them (``_tagged/``); our server indexes them at start, graphite-web's LocalDatabaseTagDB
is fed them (in one transaction, through its own Python API) before timing. Timed:
``/tags/findSeries`` and ``sumSeries(seriesByTag(...))`` selecting 400 of them with an
exact match and a regex.

    python bench/render.py [--series 1000] [--tagged 10000] [--runs 30] [--no-peer]

With ``--hostile`` it measures instead the latency of ``/version`` (fresh connection
each) while a hostile request runs: against ours a regular expression that needs
backtracking (it runs until ``--regex-budget``), against graphite-web the issue's
``aliasSub(x, '^(\\w+\\.?)+X$', 'x')``. Target: under 100 ms.

    python bench/render.py --hostile [--runs 30] [--no-peer]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import whisper

REFERENCE_MS = {"sumSeries": 448.0, "find": 32.0, "png": 100.0}  # graphite-web 1.1.8 (Debian), same data
TARGET_RATIO = {"sumSeries": 5, "find": 5, "png": 3, "findSeries": 5, "seriesByTag": 5}
STEP = 10
POINTS = 720  # 2 h of 10 s data
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_tree(root: str, count: int, now: int) -> None:
    directory = os.path.join(root, "bench")
    os.makedirs(directory, exist_ok=True)
    for i in range(count):
        path = os.path.join(directory, f"m{i:04d}.wsp")
        whisper.create(path, [(STEP, 6 * 360), (60, 7 * 1440)])
        whisper.update_many(path, [(now - STEP * k, float((i + k) % 97)) for k in range(POINTS)], now=now)


def tagged_paths(count: int) -> list[str]:
    return [f"bench.tagged;dc=dc{i % 10};host=h{i:05d};shard=s{i % 100}" for i in range(count)]


def make_tagged(root: str, count: int, now: int) -> None:
    sys.path.insert(0, REPO)
    from django_statsd_push.render import tagdb

    for i, path in enumerate(tagged_paths(count)):
        fs_path = tagdb.whisper_paths(root, tagdb.canonical(path))[1]
        os.makedirs(os.path.dirname(fs_path), exist_ok=True)
        whisper.create(fs_path, [(STEP, 360)])
        whisper.update_many(fs_path, [(now - STEP * k, float((i + k) % 89)) for k in range(0, 360, 6)], now=now)


FEED_GRAPHITE_TAGDB = """
import sys, django
django.setup()
from django.db import transaction
from graphite.storage import STORE
with transaction.atomic():  # one transaction: over HTTP, 10000 series take minutes
    STORE.tagdb.tag_multi_series(sys.stdin.read().split())
"""


_HOLDS = contextlib.ExitStack()


def held_port() -> int:
    """A port for a server this bench starts and tells the number (ours and gunicorn bind
    with SO_REUSEADDR), held until the bench exits (``PortHold``): a port picked and let
    go could be taken by other work on the machine before the server binds it."""
    sys.path.insert(0, REPO)
    from django_statsd_push.stack.health import PortHold

    return _HOLDS.enter_context(PortHold()).port


def wait_ready(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"render server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/version", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("render server did not become ready")


def get(port: int, path: str) -> bytes:
    """One request on a fresh connection, as curl or ab would make it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status}: {body[:200]!r}")
        return body
    finally:
        conn.close()


RENDER = "/render?" + urllib.parse.urlencode(
    {"target": "sumSeries(bench.*)", "from": "-2h", "until": "now", "format": "json"})
FIND = "/metrics/find?" + urllib.parse.urlencode({"query": "bench.*"})
PNG_SERIES = 20
PNG = "/render?" + urllib.parse.urlencode(  # bench.m0000 ... bench.m0019, drawn at 800x600
    {"target": "bench.m00[01]?", "from": "-2h", "until": "now", "format": "png", "width": 800, "height": 600})
TAG_EXPRS = ["name=bench.tagged", "dc=dc3", "shard=~s[0-4]3"]  # 400 of 10000: s13, s23, s33, s43
FIND_SERIES = "/tags/findSeries?" + urllib.parse.urlencode([("expr", e) for e in TAG_EXPRS])
BY_TAG = "sumSeries(seriesByTag(" + ",".join(f"'{e}'" for e in TAG_EXPRS) + "))"
RENDER_BY_TAG = "/render?" + urllib.parse.urlencode({"target": BY_TAG, "from": "-1h", "until": "now", "format": "json"})


def cpu_ms(pid: int) -> float:
    """CPU time used so far by a process and its children (gunicorn's worker), from
    /proc: on a machine shared with other work it varies far less than wall time."""
    pids = {pid}
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            pids.update(int(child) for child in fh.read().split())
    ticks = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def measure(servers: dict[str, tuple[int, int]], runs: int, series: int,
            tagged: int = 0) -> dict[str, dict[str, tuple]]:
    """(median wall ms, CPU ms per request) per server and query; ``servers`` maps a name
    to (port, pid). The servers take turns request by request, so load from elsewhere on
    the shared machine falls on both alike (measured one after the other, a burst of
    load decided the ratio). Each answer is checked once."""
    def check_render(body: bytes) -> None:
        doc = json.loads(body)
        assert doc[0]["target"] == "sumSeries(bench.*)", doc[0]["target"]
        assert sum(v is not None for v, _ in doc[0]["datapoints"]) >= POINTS - 2

    def check_find(body: bytes) -> None:
        assert len(json.loads(body)) == series

    def check_png(body: bytes) -> None:
        assert body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR", body[:100]
        assert struct.unpack(">II", body[16:24]) == (800, 600)

    queries = {"sumSeries": (RENDER, check_render), "find": (FIND, check_find), "png": (PNG, check_png)}
    if tagged:
        expected = sorted(p for p in (";".join([p.split(";")[0], *sorted(p.split(";")[1:])])
                                      for p in tagged_paths(tagged))
                          if ";dc=dc3;" in p and p.rsplit("shard=s", 1)[1] in ("13", "23", "33", "43"))

        def check_find_series(body: bytes) -> None:
            assert json.loads(body) == expected, "findSeries answers differ from the expected series"

        def check_by_tag(body: bytes) -> None:
            doc = json.loads(body)
            assert doc[0]["target"] == BY_TAG, doc[0]["target"]
            assert sum(v is not None for v, _ in doc[0]["datapoints"]) >= 50

        queries["findSeries"] = (FIND_SERIES, check_find_series)
        queries["seriesByTag"] = (RENDER_BY_TAG, check_by_tag)
    results: dict[str, dict[str, tuple]] = {name: {} for name in servers}
    for query, (path, check) in queries.items():
        times: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, float] = {}
        for i in range(runs + 2):
            for name, (port, pid) in servers.items():
                if i == 2:  # after two warm-up requests
                    cpu[name] = cpu_ms(pid)
                t0 = time.perf_counter()
                body = get(port, path)
                elapsed = (time.perf_counter() - t0) * 1000
                if i == 0:
                    check(body)
                if i >= 2:
                    times[name].append(elapsed)
        for name, (_, pid) in servers.items():
            results[name][query] = (statistics.median(times[name]), (cpu_ms(pid) - cpu[name]) / runs)
    return results


def serve_ours(whisper_root: str, port: int, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", whisper_root,
                             "--port", str(port), "--log-level", "WARNING", *flags], cwd=REPO)


def serve_graphite_web(storage_dir: Path, port: int, tagged: int = 0) -> subprocess.Popen:
    """graphite-web 1.1.8 under gunicorn (one sync worker) in its own venv, with its local TagDB."""
    sys.path.insert(0, REPO)
    from tests.render import graphite_oracle

    python = graphite_oracle.prepare(storage_dir)
    env = graphite_oracle.environ(storage_dir, tagdb=True)
    if subprocess.run([str(python), "-c", "import gunicorn"], env=env, capture_output=True).returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "gunicorn"], env=env, check=True,
                       capture_output=True, timeout=300)
    subprocess.run([str(python), "-c", "import django; django.setup(); "
                    "from django.core.management import call_command; call_command('migrate', verbosity=0)"],
                   env=env, check=True, capture_output=True, timeout=120)
    if tagged:
        t0 = time.perf_counter()
        subprocess.run([str(python), "-c", FEED_GRAPHITE_TAGDB], input="\n".join(tagged_paths(tagged)), text=True,
                       env=env, check=True, capture_output=True, timeout=1200)
        print(f"fed {tagged} series to graphite-web's LocalDatabaseTagDB in {time.perf_counter() - t0:.1f}s")
    return subprocess.Popen([str(python), "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
                             "--log-level", "warning", "graphite.wsgi:application"], env=env,
                            start_new_session=True)  # its own process group: stop() can end the worker too


HOSTILE_OURS = "/render?" + urllib.parse.urlencode(
    {"target": "grep(" + "a" * 60 + ".*, '^(?=a)(a|aa)+$')", "from": "-1min", "format": "json"})
HOSTILE_ISSUE = "/render?" + urllib.parse.urlencode(
    {"target": "aliasSub(x.*.*.*.*.*.*.*.*.*, '^(\\w+\\.?)+X$', 'x')", "from": "-1min", "format": "json"})
HOSTILE_SECONDS = 30  # how long ours lets the hostile expression run (--regex-budget)


def make_hostile_tree(root: str, now: int) -> None:
    for path in ("a" * 60 + ".b", "x." + ".".join(["abcdefgh"] * 8) + ".end"):
        fs_path = os.path.join(root, *path.split(".")) + ".wsp"
        os.makedirs(os.path.dirname(fs_path), exist_ok=True)
        whisper.create(fs_path, [(STEP, 360)])
        whisper.update_many(fs_path, [(now - STEP * k, 1.0) for k in range(6)], now=now)


def version_latencies(server: subprocess.Popen, port: int, hostile: str, runs: int) -> list[float | None]:
    """/version latencies in ms (None: no answer within 5 s) while ``hostile`` is in flight."""
    wait_ready(f"http://127.0.0.1:{port}", server, time.monotonic() + 60)

    def send_hostile():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HOSTILE_SECONDS * 2)
        try:
            conn.request("GET", hostile)
            conn.getresponse().read()
        except OSError:
            pass  # the server is stopped under it
        finally:
            conn.close()

    threading.Thread(target=send_hostile, daemon=True).start()
    time.sleep(0.5)  # let the hostile request reach its expression (a benchmark, not a test)
    out: list[float | None] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/version")
            conn.getresponse().read()
            out.append((time.perf_counter() - t0) * 1000)
        except OSError:
            out.append(None)
            break  # a frozen server: one timeout says it
        finally:
            conn.close()
    return out


def stop(server: subprocess.Popen) -> float:
    """SIGTERM; seconds until exit (SIGKILL after 10 s, as the issue had to, to the
    process group when it has its own: gunicorn's frozen worker outlives its master)."""
    t0 = time.perf_counter()
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        if os.getpgid(server.pid) == server.pid:
            os.killpg(server.pid, signal.SIGKILL)
        else:
            server.kill()
        server.wait()
    return time.perf_counter() - t0


def describe(latencies: list[float | None]) -> str:
    answered = sorted(v for v in latencies if v is not None)
    if len(answered) < len(latencies):
        return f"no answer within 5 s ({len(answered)} of {len(latencies)} answered)"
    return (f"median {statistics.median(answered):6.2f} ms, max {answered[-1]:6.2f} ms over {len(answered)} "
            f"(target < 100 ms: {'ok' if answered[-1] < 100 else 'MISSED'})")


def hostile(args) -> int:
    with tempfile.TemporaryDirectory() as storage:
        whisper_root = os.path.join(storage, "whisper")
        make_hostile_tree(whisper_root, int(time.time()))
        port = held_port()
        server = serve_ours(whisper_root, port, "--regex-budget", str(HOSTILE_SECONDS), "--time-budget",
                            str(HOSTILE_SECONDS * 2))
        try:
            ours = version_latencies(server, port, HOSTILE_OURS, args.runs)
        finally:
            ours_stop = stop(server)
        print(f"/version during a hostile request: ours {describe(ours)}; SIGTERM -> exit {ours_stop:.2f} s")
        if not args.no_peer:
            try:
                port = held_port()
                server = serve_graphite_web(Path(storage), port)
                try:
                    peer = version_latencies(server, port, HOSTILE_ISSUE, args.runs)
                finally:
                    peer_stop = stop(server)
                print(f"/version during a hostile request: graphite-web 1.1.8 this run {describe(peer)}; "
                      f"SIGTERM -> exit {peer_stop:.2f} s")
            except Exception as exc:  # the peer is optional: say why it is missing
                print(f"graphite-web not measured in this run: {exc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--tagged", type=int, default=10000, help="tagged series for the seriesByTag timing (0: skip)")
    p.add_argument("--no-peer", action="store_true", help="do not run graphite-web itself")
    p.add_argument("--hostile", action="store_true", help="latency of /version during a hostile request")
    args = p.parse_args(argv)
    if args.hostile:
        return hostile(args)

    with tempfile.TemporaryDirectory() as storage:
        whisper_root = os.path.join(storage, "whisper")
        now = int(time.time())
        t0 = time.perf_counter()
        make_tree(whisper_root, args.series, now)
        print(f"created {args.series} whisper files in {time.perf_counter() - t0:.1f}s")
        if args.tagged:
            t0 = time.perf_counter()
            make_tagged(whisper_root, args.tagged, now)
            print(f"created {args.tagged} tagged whisper files in {time.perf_counter() - t0:.1f}s")
        servers: dict[str, tuple[subprocess.Popen, int]] = {}
        try:
            port = held_port()
            servers["ours"] = (serve_ours(whisper_root, port), port)
            wait_ready(f"http://127.0.0.1:{port}", servers["ours"][0], time.monotonic() + 60)
            if not args.no_peer:
                try:
                    port = held_port()
                    servers["graphite-web"] = (serve_graphite_web(Path(storage), port, args.tagged), port)
                    wait_ready(f"http://127.0.0.1:{port}", servers["graphite-web"][0], time.monotonic() + 60)
                except (Exception, SystemExit) as exc:  # the peer is optional: say why it is missing
                    print(f"graphite-web not measured in this run: {exc}")
                    failed = servers.pop("graphite-web", None)
                    if failed:
                        stop(failed[0])
            results = measure({name: (port, proc.pid) for name, (proc, port) in servers.items()}, args.runs,
                              args.series, args.tagged)
        finally:
            for proc, _ in servers.values():
                stop(proc)
    ours, peer = results["ours"], results.get("graphite-web", {})
    for name, (ms, cpu) in ours.items():
        goal = TARGET_RATIO[name]
        line = f"{name:11s} ours {ms:7.2f} ms ({cpu:6.1f} ms CPU)"
        ref = REFERENCE_MS.get(name)
        if ref is not None:
            line += (f" | graphite-web 1.1.8 reference {ref:6.1f} ms, ratio {ref / ms:5.1f}x"
                     f" (target >= {goal}x: {'ok' if ref / ms >= goal else 'MISSED'})")
        if name in peer:
            peer_ms, peer_cpu = peer[name]
            ratio = peer_ms / ms
            line += (f" | graphite-web 1.1.8 this run {peer_ms:7.2f} ms ({peer_cpu:6.1f} ms CPU), ratio "
                     f"{ratio:5.1f}x (CPU {peer_cpu / max(cpu, 1e-9):4.1f}x)")
            if ref is None:
                line += f" (target >= {goal}x: {'ok' if ratio >= goal else 'MISSED'})"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
