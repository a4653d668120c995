"""Highest loss-free UDP ingest rate: our daemon vs etsy statsd 0.9 (node), in one run.

    python bench/daemon_ingest.py [--quick]

For each daemon and each packing (1 and 20 metrics per datagram) the sender offers a
rate for a short burst, then asks the daemon itself how many metrics it received
(ours: management ``stats`` -> ``messages.metrics_received``; etsy: management
``counters`` -> ``statsd.metrics_received``; flushes are an hour apart so nothing
resets). Loss-free means received == sent. The rate grows until a loss, then is
bisected. Each daemon runs with its defaults (ours asks for an 8 MiB receive buffer,
etsy keeps the kernel default). Both share this machine's cores with the sender, so
"sender-bound" is printed when the sender could not reach the offered rate.

Then 100,000 distinct metrics are sent across flush boundaries to our daemon (flush
every second, output to a Carbon stand-in): every metric must arrive and be flushed
exactly once, with no kernel drop.

etsy statsd comes from npm into a cache dir (see tests/server/etsy.py).
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.etsy import CarbonCapture, EtsyStatsd, free_port, install  # noqa: E402
from tests.server.helpers import mgmt  # noqa: E402

BURST_SECONDS = 1.0
DISTINCT = 1000  # names cycled through in the rate trials


def packets(per_packet: int, count: int, distinct: int = DISTINCT, prefix: str = "bench.m") -> list[bytes]:
    out, i = [], 0
    for _ in range(count):
        lines = []
        for _ in range(per_packet):
            lines.append(f"{prefix}{i % distinct}:1|c")
            i += 1
        out.append("\n".join(lines).encode())
    return out


class Ours:
    name = "statsd-push"

    def __init__(self, extra: list[str] | None = None) -> None:
        self.port, self.mgmt_port = free_port(socket.SOCK_DGRAM), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django_statsd_push.server.cli", "--port", str(self.port),
             "--mgmt-port", str(self.mgmt_port), "--log-level", "WARNING",
             *(extra or ["--no-graphite", "--flush-interval", "3600000"])],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                mgmt(self.mgmt_port, "stats")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("our daemon did not start")
                time.sleep(0.05)

    def received(self) -> int:
        return int(float(re.search(r"messages\.metrics_received: (\S+)", mgmt(self.mgmt_port, "stats")).group(1)))

    def stats(self) -> str:
        return mgmt(self.mgmt_port, "stats")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Etsy:
    name = "etsy statsd 0.9"

    def __init__(self, stats_js: Path) -> None:
        self.daemon = EtsyStatsd(stats_js, {"flushInterval": 3600000})
        self.port, self.mgmt_port = self.daemon.udp_port, self.daemon.mgmt_port

    def received(self) -> int:
        return int(re.search(r"'statsd\.metrics_received': (\d+)", self.daemon.mgmt("counters")).group(1))

    def close(self) -> None:
        self.daemon.close()


def offer(port: int, payload: list[bytes], rate_pps: float, seconds: float) -> tuple[int, float]:
    """Send at ``rate_pps`` datagrams/s for ``seconds``; returns (datagrams sent, achieved pps)."""
    total = int(rate_pps * seconds)
    chunk = max(1, int(rate_pps / 1000))  # pace every ~1 ms
    n = len(payload)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        send = s.send
        start = time.perf_counter()
        sent = 0
        while sent < total:
            for i in range(sent, min(sent + chunk, total)):
                send(payload[i % n])
            sent = min(sent + chunk, total)
            ahead = start + sent / rate_pps - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        elapsed = time.perf_counter() - start
    return sent, sent / elapsed


def settle(daemon, expected: int, timeout: float = 10.0) -> int:
    """The daemon's received count once it stops moving (or reaches ``expected``)."""
    last, stable = -1, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = daemon.received()
        if now >= expected:
            return now
        stable = stable + 1 if now == last else 0
        if stable >= 3:
            return now
        last = now
        time.sleep(0.1)
    return daemon.received()


def max_loss_free(daemon, per_packet: int, start_rate: float, trials: int) -> tuple[float, bool]:
    """Highest loss-free rate in metrics/s, and whether the sender was the limit."""
    payload = packets(per_packet, 20000)
    good, bad = 0.0, None
    rate = start_rate
    sender_bound = False
    for _ in range(trials):
        before = daemon.received()
        pps = rate / per_packet
        sent, achieved = offer(daemon.port, payload, pps, BURST_SECONDS)
        got = settle(daemon, before + sent * per_packet) - before
        lossless = got == sent * per_packet
        achieved_rate = achieved * per_packet
        if achieved_rate < 0.9 * rate:
            sender_bound = True
        print(f"    {daemon.name:<16} {per_packet:>2}/pkt offered {rate:>12,.0f}/s achieved "
              f"{achieved_rate:>12,.0f}/s received {got}/{sent * per_packet}"
              f"{'' if lossless else '  LOSS'}", flush=True)
        if lossless:
            good = max(good, achieved_rate)
            if sender_bound:
                break
            rate = rate * 2 if bad is None else (rate + bad) / 2
        else:
            bad = rate
            rate = (good + bad) / 2 if good else rate / 2
        if bad is not None and good and bad / good < 1.1:
            break
    return good, sender_bound


def distinct_at_flush(total: int = 100_000, per_packet: int = 20) -> tuple[bool, str]:
    """100k distinct counters across flushes: each flushed exactly once with value 1."""
    with CarbonCapture() as carbon:
        ours = Ours(["--graphite-port", str(carbon.port), "--flush-interval", "1000"])
        try:
            payload = packets(per_packet, total // per_packet, distinct=total, prefix="bench.d")
            offer(ours.port, payload, 20000 / per_packet * 5, len(payload) / (20000 / per_packet * 5))
            received = settle(ours, total)
            time.sleep(2.5)  # two more flushes carry the last packets out
            stats = ours.stats()
        finally:
            ours.close()
    seen: dict[str, float] = {}
    while not carbon.received.empty():
        name, value, _ = carbon.received.get().split(" ")
        if name.startswith("stats_counts.bench.d"):
            seen[name] = seen.get(name, 0) + float(value)
    flushed_once = len(seen) == total and all(v == 1 for v in seen.values())
    drops = int(re.search(r"udp\.kernel_drops: (\d+)", stats).group(1))
    ok = received == total and flushed_once and drops == 0
    return ok, f"received {received}/{total}, flushed {len(seen)} distinct (each once: {flushed_once}), kernel drops {drops}"


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    opts = args.parse_args(argv)
    trials = 4 if opts.quick else 9
    stats_js = install()
    if stats_js is None:
        print("node/npm missing: cannot run etsy statsd", file=sys.stderr)
        return 2
    results: dict[tuple[str, int], tuple[float, bool]] = {}
    for factory in (lambda: Ours(), lambda: Etsy(stats_js)):
        daemon = factory()
        try:
            for per_packet, start in ((1, 50_000), (20, 200_000)):
                results[(daemon.name, per_packet)] = max_loss_free(daemon, per_packet, start, trials)
        finally:
            daemon.close()
    print()
    print(f"{'metrics/s, loss-free':<24}{'statsd-push':>14}{'etsy 0.9':>14}{'ratio':>8}")
    for per_packet in (1, 20):
        ours, ours_bound = results[("statsd-push", per_packet)]
        theirs, _ = results[("etsy statsd 0.9", per_packet)]
        note = "  (sender-bound: ours is at least this)" if ours_bound else ""
        print(f"{f'{per_packet} metric(s)/packet':<24}{ours:>14,.0f}{theirs:>14,.0f}"
              f"{ours / theirs if theirs else float('inf'):>8.2f}x{note}")
    ok, detail = distinct_at_flush()
    print(f"100,000 distinct metrics across flushes: {'OK' if ok else 'FAILED'} ({detail})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
