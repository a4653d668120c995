"""Render API latency: sumSeries over a 1000-series glob, /metrics/find returning 1000 nodes,
and a PNG graph of 20 series x 720 points.

Creates 1000 Whisper files (10 s resolution, 2 h of data each) with the ``whisper``
library, starts ``statsd-push render`` as a separate process (so the client does not
share its interpreter), and prints the median latency over HTTP of each query and the
ratio against graphite-web 1.1.8 measured on this kind of machine (448 ms / 32 ms / 100 ms).

Unless ``--no-peer``, it also runs the real graphite-web 1.1.8 (in its own venv, see
tests/render/graphite_oracle.py; gunicorn, one sync worker) over the same files in the
same run, the two servers taking turns request by request, checks its answers, and
prints that ratio too, and the CPU time each server spent per request (from /proc).

    python bench/render.py [--series 1000] [--runs 30] [--no-peer]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import whisper

REFERENCE_MS = {"sumSeries": 448.0, "find": 32.0, "png": 100.0}  # graphite-web 1.1.8 (Debian), same data
TARGET_RATIO = {"sumSeries": 5, "find": 5, "png": 3}
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def measure(servers: dict[str, tuple[int, int]], runs: int, series: int) -> dict[str, dict[str, tuple]]:
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


def serve_ours(whisper_root: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", whisper_root,
                             "--port", str(port), "--log-level", "WARNING"], cwd=REPO)


def serve_graphite_web(storage_dir: Path, port: int) -> subprocess.Popen:
    """graphite-web 1.1.8 under gunicorn (one sync worker) in its own venv."""
    sys.path.insert(0, REPO)
    from tests.render import graphite_oracle

    python = graphite_oracle.prepare(storage_dir)
    env = graphite_oracle.environ(storage_dir)
    if subprocess.run([str(python), "-c", "import gunicorn"], env=env, capture_output=True).returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "gunicorn"], env=env, check=True,
                       capture_output=True, timeout=300)
    subprocess.run([str(python), "-c", "import django; django.setup(); "
                    "from django.core.management import call_command; call_command('migrate', verbosity=0)"],
                   env=env, check=True, capture_output=True, timeout=120)
    return subprocess.Popen([str(python), "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
                             "--log-level", "warning", "graphite.wsgi:application"], env=env)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--no-peer", action="store_true", help="do not run graphite-web itself")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as storage:
        whisper_root = os.path.join(storage, "whisper")
        now = int(time.time())
        t0 = time.perf_counter()
        make_tree(whisper_root, args.series, now)
        print(f"created {args.series} whisper files in {time.perf_counter() - t0:.1f}s")
        servers: dict[str, tuple[subprocess.Popen, int]] = {}
        try:
            port = free_port()
            servers["ours"] = (serve_ours(whisper_root, port), port)
            wait_ready(f"http://127.0.0.1:{port}", servers["ours"][0], time.monotonic() + 60)
            if not args.no_peer:
                try:
                    port = free_port()
                    servers["graphite-web"] = (serve_graphite_web(Path(storage), port), port)
                    wait_ready(f"http://127.0.0.1:{port}", servers["graphite-web"][0], time.monotonic() + 60)
                except (Exception, SystemExit) as exc:  # the peer is optional: say why it is missing
                    print(f"graphite-web not measured in this run: {exc}")
                    failed = servers.pop("graphite-web", None)
                    if failed:
                        failed[0].terminate()
                        failed[0].wait(10)
            results = measure({name: (port, proc.pid) for name, (proc, port) in servers.items()}, args.runs,
                              args.series)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
    ours, peer = results["ours"], results.get("graphite-web", {})
    for name, (ms, cpu) in ours.items():
        ref = REFERENCE_MS[name]
        goal = TARGET_RATIO[name]
        line = (f"{name:10s} ours {ms:7.2f} ms ({cpu:6.1f} ms CPU) | graphite-web 1.1.8 reference {ref:6.1f} ms, "
                f"ratio {ref / ms:5.1f}x (target >= {goal}x: {'ok' if ref / ms >= goal else 'MISSED'})")
        if name in peer:
            peer_ms, peer_cpu = peer[name]
            line += (f" | graphite-web 1.1.8 this run {peer_ms:7.2f} ms ({peer_cpu:6.1f} ms CPU), ratio "
                     f"{peer_ms / ms:5.1f}x (CPU {peer_cpu / max(cpu, 1e-9):4.1f}x)")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
