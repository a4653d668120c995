"""``statsd-push stack --nodes 2`` end to end: known traffic through etsy's real proxy.js,
two daemons, the real carbon-relay, two carbon-caches (127.0.0.2 and .3), each node's render
API and the federating front. Every count lands exactly once, each Whisper file on exactly
one node; with node 2's cache and render API stopped (SIGSTOP: a hung machine) the front
answers within its timeout with node 1's data and names the peer; once node 2 runs again
nothing sent meanwhile is missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require
from tests.server import etsy
from tests.stack.dashboard_page import panel_points, panels
from tests.stack.test_stack_e2e import HOST, get, render_sum, running_stack

NAMES = [f"cluster.e2e.n{i:03d}" for i in range(100)]
PER_NAME = 20  # 2,000 increments per phase
NODE_HOSTS = ("127.0.0.2", "127.0.0.3")


def install_proxy() -> Path | None:
    """etsy statsd's proxy.js with its optional ``hashring`` dependency (npm), or None."""
    stats_js = etsy.install()
    if stats_js is None:
        return None
    prefix = etsy.cache_dir()
    if not (prefix / "node_modules" / "hashring").exists():
        try:
            subprocess.run([shutil.which("npm") or "npm", "install", "--no-audit", "--no-fund", "--prefix",
                            str(prefix), "hashring@3.2.0"], check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError):
            return None
    return stats_js.parent / "proxy.js"


def send_increments(port: int, count: int) -> None:
    """``count`` increments of every name through the proxy, 20 lines a datagram, paced so
    loopback UDP buffers (proxy, then daemon) are never the limit being measured."""
    lines = [f"{name}:1|c" for _ in range(count) for name in NAMES]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(0, len(lines), 20):
            s.sendto("\n".join(lines[i:i + 20]).encode(), (HOST, port))
            if i % 400 == 0:
                time.sleep(0.01)


def render(port: int, target: str, timeout: float = 60) -> tuple[dict, list]:
    query = urllib.parse.urlencode({"target": target, "from": "-15min", "format": "json"})
    with urllib.request.urlopen(f"http://{HOST}:{port}/render?{query}", timeout=timeout) as response:
        return dict(response.headers), json.loads(response.read())


def counts_by_name(port: int) -> dict[str, float]:
    _, doc = render(port, "stats_counts.cluster.e2e.*")
    return {s["target"]: sum(v for v, _ in s["datapoints"] if v is not None) for s in doc}


def wait_for(check, what: str, deadline: float, stack) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert stack.proc.poll() is None, "launcher died:\n" + "\n".join(stack.output)
        assert time.monotonic() < end, f"{what} not seen within {deadline}s"
        time.sleep(0.5)


def node_pids(marker: str, node: str) -> list[int]:
    """Node 2's carbon-cache and render API (their command lines name its directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv).decode(errors="replace")
        if f"/{node}/carbon" in text and ("carbon-cache" in text or " render " in text):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_two_node_cluster_through_proxy_relay_and_front(tmp_path):
    require(shutil.which("node") is not None, "node (Node.js) is not installed")
    proxy = install_proxy()
    require(proxy is not None and proxy.exists(), "etsy statsd's proxy.js could not be installed (npm)")
    with running_stack(tmp_path, "--nodes", "2", "--statsd-proxy", str(proxy), "--cluster-timeout", "2",
                       "--demo-traffic", "--traffic-rate", "20") as stack:
        ports = stack.ports
        front = ports["render_port"]

        send_increments(ports["statsd_port"], PER_NAME)
        expected = {f"stats_counts.{name}": float(PER_NAME) for name in NAMES}
        wait_for(lambda: counts_by_name(front) == expected, "every count once through the front", 120, stack)
        _, total = render(front, "sumSeries(stats_counts.cluster.e2e.*)")
        assert sum(v for v, _ in total[0]["datapoints"] if v is not None) == PER_NAME * len(NAMES)

        # each Whisper file on exactly one node, the two nodes holding all of them
        stack_dir = stack.dir
        held = [{p.stem for p in (stack_dir / f"node{i}" / "carbon" / "whisper" / "stats_counts" / "cluster"
                                  / "e2e").glob("*.wsp")} for i in (1, 2)]
        assert held[0].isdisjoint(held[1])
        assert held[0] | held[1] == {n.rsplit(".", 1)[1] for n in NAMES}
        assert held[0] and held[1]

        # the dashboard, pointed at the front, draws the demo traffic of both nodes
        for panel in panels():
            for target in panel["targets"]:
                wait_for(lambda: render_sum(front, target) > 0, f"{panel['id']}: {target}", 60, stack)
        points = panel_points(HOST, front, tmp_path / "profile")
        assert list(points) == [p["id"] for p in panels()] and all(n > 0 for n in points.values()), points

        # a tagged series is found through the front: the demo traffic's tagged counter lives
        # on the nodes (each node's carbon-cache tags what it creates in its own render API),
        # the front holds none, yet seriesByTag and the tag views through it find it
        tagged = "stats.demo_traffic.responses;status=2xx"
        wait_for(lambda: render_sum(front, "seriesByTag('name=stats.demo_traffic.responses','status=2xx')") > 0,
                 "a tagged series through the front", 90, stack)
        _, doc = render(front, "seriesByTag('name=stats.demo_traffic.responses','status=2xx')")
        assert [(s["target"], s["tags"]["status"]) for s in doc] == [(tagged, "2xx")]
        _, body = get(f"http://{HOST}:{front}/tags/findSeries?expr=name%3Dstats.demo_traffic.responses")
        assert tagged in json.loads(body)
        on_nodes = [list((stack_dir / f"node{i}" / "carbon" / "whisper" / "_tagged").rglob("*.wsp")) for i in (1, 2)]
        assert any(on_nodes) and not list((stack_dir / "front").rglob("*.wsp"))
        _, grouped = render(front, "groupByTags(seriesByTag('name=stats.demo_traffic.responses'),'sum','name')")
        assert [s["target"] for s in grouped] == ["stats.demo_traffic.responses"]

        on_node1 = {f"stats_counts.cluster.e2e.{n}" for n in held[0]}

        # node 2's cache and render API hang: the front answers in time with node 1's share
        pids = node_pids(stack.marker, "node2")
        assert len(pids) >= 2, pids
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            send_increments(ports["statsd_port"], PER_NAME)  # both nodes' names, during the outage
            began = time.monotonic()
            headers, doc = render(front, "stats_counts.cluster.e2e.*")
            took = time.monotonic() - began
            assert took < 15, took  # 2s per-peer timeout, generous for a loaded machine
            assert f"127.0.0.3:{front} (timed out after 2s)" in headers["X-Cluster-Failed-Peers"]
            assert {s["target"] for s in doc} == on_node1
            wait_for(lambda: all(v == 2 * PER_NAME for k, v in counts_by_name(front).items() if k in on_node1),
                     "node 1's counts during the outage", 120, stack)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

        # node 2 back: nothing sent while it hung is missing, nothing counted twice
        expected = {f"stats_counts.{name}": float(2 * PER_NAME) for name in NAMES}
        wait_for(lambda: counts_by_name(front) == expected, "every count of both phases", 120, stack)
        _, status = get(f"http://{HOST}:{front}/cluster")
        peers = {p["peer"]: p for p in json.loads(status)}
        assert peers[f"127.0.0.3:{front}"]["timeouts"] >= 1
        assert stack.stop() == 0, "\n".join(stack.output)


def test_missing_proxy_is_a_clear_error(tmp_path, capsys):
    from django_statsd_push.stack.cli import PORT_FLAGS, flag, main

    fake = tmp_path / "statsd" / "proxy.js"
    fake.parent.mkdir()
    fake.write_text("")
    argv = ["--dir", str(tmp_path / "s"), "--nodes", "2"] + [a for dest, *_ in PORT_FLAGS for a in (flag(dest), "0")]
    assert main([*argv, "--statsd-proxy", str(tmp_path / "nope.js")]) == 2
    assert "--nodes needs etsy statsd's proxy.js: `npm install statsd@0.9.0 hashring@3.2.0" in capsys.readouterr().err
    assert main([*argv, "--statsd-proxy", str(fake)]) == 2
    assert "proxy.js needs its optional dependency hashring" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
