"""What federation and the statsd proxy cost, measured against going direct, in one run.

Render: 1000 Whisper files (bench/render.py's shape) split between two render servers
(each file on one, as carbon-relay places them), a federating front (``--cluster-server``
both) and, over all 1000 files, one render server alone. Prints the median latency of
sumSeries(bench.*), of /metrics/find?query=bench.* (1000 nodes) and of a PNG through the front and
on the single server, and their ratio; the front's answers are checked equal to the
single server's first.

Ingest (unless --no-ingest; needs node and etsy statsd's proxy.js, see
tests/stack/test_cluster_e2e.py): the highest loss-free rate (bench/daemon_ingest.py's
method) through etsy's proxy.js in front of two ``statsd-push serve`` vs one daemon direct.

    python bench/cluster.py [--runs 20] [--quick] [--no-ingest] [--no-render]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import whisper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import daemon_ingest  # noqa: E402
from django_statsd_push.stack.health import PortHold  # noqa: E402
from render import FIND, POINTS, RENDER, STEP, get, held_port, measure, wait_ready  # noqa: E402

SERIES = 1000


def make_trees(single: str, nodes: list[str], now: int) -> None:
    for i in range(SERIES):
        values = [(now - STEP * k, float((i + k) % 97)) for k in range(POINTS)]
        for root in (single, nodes[i % 2]):
            path = os.path.join(root, "bench", f"m{i:04d}.wsp")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            whisper.create(path, [(STEP, 6 * 360), (60, 7 * 1440)])
            whisper.update_many(path, values, now=now)


def serve(root: str, port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", root,
                             "--port", str(port), "--log-level", "WARNING", *extra], cwd=ROOT)
    wait_ready(f"http://127.0.0.1:{port}", proc, time.monotonic() + 60)
    return proc


def bench_render(runs: int) -> dict[str, tuple[float, float]]:
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        single, node1, node2, front = (os.path.join(tmp, n) for n in ("single", "node1", "node2", "front"))
        for d in (single, node1, node2, front):
            os.makedirs(d)
        make_trees(single, [node1, node2], int(time.time()))
        try:
            ports = {name: held_port() for name in ("single", "node1", "node2", "front")}
            procs.append(serve(single, ports["single"]))
            procs.append(serve(node1, ports["node1"]))
            procs.append(serve(node2, ports["node2"]))
            procs.append(serve(front, ports["front"], "--cluster-server", f"127.0.0.1:{ports['node1']}",
                               "--cluster-server", f"127.0.0.1:{ports['node2']}"))
            same_now = f"{RENDER}&now={int(time.time())}"  # both answers over the same window
            for path in (same_now, FIND):
                assert json.loads(get(ports["front"], path)) == json.loads(get(ports["single"], path)), path
            # measure() alternates the two servers request by request (and checks each answer;
            # its png query has the front draw from the merged series)
            results = measure({"front": (ports["front"], procs[3].pid), "single": (ports["single"], procs[0].pid)},
                              runs, SERIES)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    return {key: (results["front"][key][0], results["single"][key][0]) for key in results["single"]}


class Proxied:
    """etsy's proxy.js in front of two of our daemons; ``received`` sums both."""

    name = "proxy.js + 2"

    def __init__(self, proxy_js: Path, tmp: str) -> None:
        self.daemons = [daemon_ingest.Ours(), daemon_ingest.Ours()]
        # The management port is held for proxy.js (libuv binds with SO_REUSEADDR); its UDP
        # port cannot be: when something takes it first, proxy.js dies with EADDRINUSE
        # before it listens for management (it binds UDP first), and starts again.
        for attempt in range(3):
            mgmt_port = held_port()
            with PortHold(udp=True) as pick:
                self.port = pick.port
            config = {"nodes": [{"host": "127.0.0.1", "port": d.port, "adminport": d.mgmt_port}
                                for d in self.daemons],
                      "server": "./servers/udp", "address": "127.0.0.1", "port": self.port,
                      "mgmt_address": "127.0.0.1", "mgmt_port": mgmt_port, "forkCount": 0, "checkInterval": 1000}
            path = Path(tmp) / "proxy-config.js"
            path.write_text(json.dumps(config))
            why = self._start(proxy_js, path, mgmt_port)
            if why is None:
                return
            if "EADDRINUSE" not in why or attempt == 2:
                raise RuntimeError(f"proxy.js exited: {why[-500:]}")

    def _start(self, proxy_js: Path, config: Path, mgmt_port: int) -> str | None:
        """None once proxy.js listens on its management port, else its stderr (it exited)."""
        with (config.parent / "proxy.err").open("w+") as err:
            self.proc = subprocess.Popen(["node", str(proxy_js), str(config)], cwd=proxy_js.parent,
                                         stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", mgmt_port), timeout=1):
                        return None
                except OSError:
                    if self.proc.poll() is not None:
                        err.seek(0)
                        return err.read()
                    if time.monotonic() > deadline:
                        raise RuntimeError("proxy.js did not start") from None
                    time.sleep(0.05)

    def received(self) -> int:
        return sum(d.received() for d in self.daemons)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        for d in self.daemons:
            d.close()


def bench_ingest(quick: bool) -> dict[int, tuple[float, float]] | None:
    from tests.stack.test_cluster_e2e import install_proxy

    proxy_js = install_proxy()
    if proxy_js is None:
        print("node/npm or proxy.js missing: ingest not measured", file=sys.stderr)
        return None
    trials = 6 if quick else 12
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        for per_packet in (1, 20):
            proxied = Proxied(proxy_js, tmp)
            try:
                through, _ = daemon_ingest.max_loss_free(proxied, per_packet, 5000, trials)
            finally:
                proxied.close()
            direct_daemon = daemon_ingest.Ours()
            try:
                direct, _ = daemon_ingest.max_loss_free(direct_daemon, per_packet, 5000, trials)
            finally:
                direct_daemon.close()
            out[per_packet] = (through, direct)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-ingest", action="store_true")
    p.add_argument("--no-render", action="store_true")
    args = p.parse_args(argv)
    if not args.no_render:
        render = bench_render(args.runs)
        print()
        print(f"{'median ms, 1000 series':<28}{'front, 2 nodes':>16}{'one node':>12}{'ratio':>8}")
        for key, (through, direct) in render.items():
            print(f"{key:<28}{through:>16.1f}{direct:>12.1f}{through / direct:>8.2f}")
    ingest = None if args.no_ingest else bench_ingest(args.quick)
    if ingest:
        print()
        print(f"{'metrics/s, loss-free':<28}{'proxy.js + 2':>16}{'direct':>12}{'ratio':>8}")
        for per_packet, (through, direct) in ingest.items():
            print(f"{f'{per_packet} metric(s)/packet':<28}{through:>16,.0f}{direct:>12,.0f}"
                  f"{through / direct if direct else 0:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
