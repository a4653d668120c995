"""Highest loss-free UDP ingest rate: our daemon (1 and N workers) vs etsy statsd 0.9.

    python bench/daemon_ingest.py [--runs 5] [--workers N] [--quick]

Each run measures, for each packing (1 and 20 metrics per datagram), etsy statsd 0.9
(node), ours with ``workers = 1`` and ours with ``workers = N`` (default: the number
of cores), one after the other, so each ratio compares figures taken minutes apart
on the same machine. The sender offers a rate for a short burst, then asks the daemon
itself how many metrics it received (ours: management ``stats`` ->
``messages.metrics_received``; etsy: management ``counters`` ->
``statsd.metrics_received``; flushes are an hour apart so nothing resets).
Loss-free means received == sent, and the figure is what the daemon ingested per second
until it had all of it (from the first datagram sent to the count reaching the total):
a burst a buffer absorbed (the kernel's, our reader's backlog) and that was parsed after
the sender stopped counts at the rate it was parsed. The offered rate grows until a
loss (or such a lag), then is bisected.
Each daemon runs with its defaults (ours asks for an 8 MiB receive buffer, etsy keeps
the kernel default). The sender sends from 64 sockets in turn, as 64 Django
processes would: the kernel gives each source port to one of our workers
(SO_REUSEPORT); etsy does not care. The daemons share the machine's cores with the
sender, so a figure the sender could not exceed is marked ``sender-bound`` (the
daemon took all of it: the true figure is higher).

The summary gives, per packing, the median and range over the runs of each ratio
(ours/etsy, for 1 and N workers) and of the scaling (N workers / 1 worker), the
resident memory of our daemon process and of each worker, and the load average
before each run (other work on the machine lowers every figure, unevenly).

Then 100,000 distinct metrics are sent across flush boundaries to our daemon with N
workers (flush every second, output to a Carbon stand-in): every metric must arrive
and be flushed exactly once, with no kernel drop.

etsy statsd comes from npm into a cache dir (see tests/server/etsy.py).
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.etsy import CarbonCapture, EtsyStatsd, install  # noqa: E402
from tests.server.helpers import Serve, mgmt  # noqa: E402

BURST_SECONDS = 1.0
DISTINCT = 1000  # names cycled through in the rate trials
SENDERS = 64  # source sockets the sender rotates through


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
    def __init__(self, extra: list[str] | None = None, workers: int = 1) -> None:
        self.name = f"ours, {workers} worker{'s' if workers > 1 else ''}"
        self.workers = workers
        # Ports picked by the daemon itself (port 0, read from its log): a port probed
        # free here can be taken by other work on the machine before the daemon binds it.
        self.serve = Serve("--workers", str(workers), *(extra or ["--no-graphite", "--flush-interval", "3600000"]),
                           timeout=60)
        self.proc, self.port, self.mgmt_port = self.serve.proc, self.serve.port, self.serve.mgmt_port

    def received(self) -> int:
        return int(float(re.search(r"messages\.metrics_received: (\S+)", mgmt(self.mgmt_port, "stats")).group(1)))

    def stats(self) -> str:
        return mgmt(self.mgmt_port, "stats")

    def rss_mib(self) -> tuple[float, list[float]]:
        """Resident memory of the daemon process and of each worker, MiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            main = next(int(row.split()[1]) for row in f if row.startswith("VmRSS:")) / 1024
        workers = [int(v) / 2**20 for v in re.findall(r"worker\.\d+\.rss_bytes: (\d+)", self.stats())]
        return main, workers

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.serve.close()


class Etsy:
    name = "etsy statsd 0.9"

    def __init__(self, stats_js: Path) -> None:
        self.daemon = EtsyStatsd(stats_js, {"flushInterval": 3600000})
        self.port, self.mgmt_port = self.daemon.udp_port, self.daemon.mgmt_port

    def received(self) -> int:
        return int(re.search(r"'statsd\.metrics_received': (\d+)", self.daemon.mgmt("counters")).group(1))

    def close(self) -> None:
        self.daemon.close()


def offer(port: int, payload: list[bytes], rate_pps: float, seconds: float) -> tuple[int, float, float]:
    """Send at ``rate_pps`` datagrams/s for ``seconds`` from ``SENDERS`` sockets in turn;
    returns (datagrams sent, achieved pps, ``perf_counter`` at the start)."""
    total = int(rate_pps * seconds)
    chunk = max(1, int(rate_pps / 1000))  # pace every ~1 ms
    n = len(payload)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SENDERS)]
    try:
        for s in socks:
            s.connect(("127.0.0.1", port))
        sends = [s.send for s in socks]
        start = time.perf_counter()
        sent = 0
        while sent < total:
            for i in range(sent, min(sent + chunk, total)):
                sends[i % SENDERS](payload[i % n])
            sent = min(sent + chunk, total)
            ahead = start + sent / rate_pps - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        elapsed = time.perf_counter() - start
    finally:
        for s in socks:
            s.close()
    return sent, sent / elapsed, start


def settle(daemon, expected: int, timeout: float = 10.0) -> tuple[int, float]:
    """The daemon's received count once it stops moving (or reaches ``expected``), and
    the ``perf_counter`` time it was read."""
    last, stable = -1, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now, at = daemon.received(), time.perf_counter()
        if now >= expected:
            return now, at
        stable = stable + 1 if now == last else 0
        if stable >= 15:
            return now, at
        last = now
        time.sleep(0.02)
    return daemon.received(), time.perf_counter()


def max_loss_free(daemon, per_packet: int, start_rate: float, trials: int) -> tuple[float, bool]:
    """Highest loss-free rate in metrics/s, and whether the sender was the limit."""
    payload = packets(per_packet, 20000)
    good, bad = 0.0, None
    rate = start_rate
    sender_bound = False  # of the trial that gave ``good``
    for _ in range(trials):
        before = daemon.received()
        pps = rate / per_packet
        sent, achieved, started = offer(daemon.port, payload, pps, BURST_SECONDS)
        got, done = settle(daemon, before + sent * per_packet)
        got -= before
        lossless = got == sent * per_packet
        sent_rate = achieved * per_packet
        starved = sent_rate < 0.9 * rate  # the sender could not send what was asked
        # What the daemon ingested per second until it had all of it: a burst that
        # waited in a buffer (the kernel's, our reader's backlog) and was parsed after
        # the sender stopped counts at the rate it was parsed, not the rate it was sent.
        ingested = sent * per_packet / max(done - started, 1e-9)
        lagged = lossless and ingested < 0.9 * sent_rate
        figure = min(sent_rate, ingested)
        print(f"    {daemon.name:<18} {per_packet:>2}/pkt offered {rate:>12,.0f}/s achieved "
              f"{figure:>12,.0f}/s received {got}/{sent * per_packet}"
              f"{'' if lossless else '  LOSS'}{'  (parsed after the burst)' if lagged else ''}", flush=True)
        if lossless and figure > good:
            good, sender_bound = figure, starved and not lagged
        if lossless and not lagged:
            if starved:
                break
            rate = rate * 2 if bad is None else (rate + bad) / 2
        else:  # lost, or kept up only by buffering: more than it can take
            bad = rate
            rate = (good + bad) / 2 if good else rate / 2
        if bad is not None and good and bad / good < 1.1:
            break
    return good, sender_bound


def distinct_at_flush(workers: int, total: int = 100_000, per_packet: int = 20) -> tuple[bool, str]:
    """100k distinct counters across flushes: each flushed exactly once with value 1."""
    seen: dict[str, float] = {}

    def take_lines(timeout: float) -> None:
        """What Carbon got, until every name is in or ``timeout`` passes (flushes run late
        on a loaded machine: waiting a fixed two intervals is not enough); with
        ``timeout`` 0, whatever has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = carbon.received.get(timeout=0.5) if timeout else carbon.received.get_nowait()
            except queue.Empty:
                if not timeout or len(seen) >= total or time.monotonic() > deadline:
                    return
                continue
            name, value, _ = line.split(" ")
            if name.startswith("stats_counts.bench.d") and value != "0":
                seen[name] = seen.get(name, 0) + float(value)
            if timeout and len(seen) >= total:
                return

    with CarbonCapture() as carbon:
        ours = Ours(["--graphite-port", str(carbon.port), "--flush-interval", "1000"], workers)
        try:
            payload = packets(per_packet, total // per_packet, distinct=total, prefix="bench.d")
            offer(ours.port, payload, 20000 / per_packet * 5, len(payload) / (20000 / per_packet * 5))
            received, _ = settle(ours, total)
            take_lines(60)
            time.sleep(2.5)  # two more flushes: a name flushed twice would show now
            take_lines(0)
            stats = ours.stats()
        finally:
            ours.close()
    flushed_once = len(seen) == total and all(v == 1 for v in seen.values())
    drops = int(re.search(r"udp\.kernel_drops: (\d+)", stats).group(1))
    ok = received == total and flushed_once and drops == 0
    return ok, f"received {received}/{total}, flushed {len(seen)} distinct (each once: {flushed_once}), kernel drops {drops}"


def spread(values: list[float]) -> str:
    """Median and range: ``3.10x (2.80-3.40)``."""
    if not values:
        return "--"
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--quick", action="store_true", help="one run, fewer trials (a smoke run)")
    args.add_argument("--runs", type=int, default=5, help="runs of every configuration (default 5)")
    args.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                      help="the N of 'N workers' (default: the number of cores)")
    opts = args.parse_args(argv)
    trials, runs = (4, 1) if opts.quick else (9, opts.runs)
    stats_js = install()
    if stats_js is None:
        print("node/npm missing: cannot run etsy statsd", file=sys.stderr)
        return 2
    n = opts.workers
    names = ("etsy", "ours 1", f"ours {n}")
    # results[run][(name, per_packet)] = (metrics/s, sender-bound)
    results: list[dict[tuple[str, int], tuple[float, bool]]] = []
    memory: dict[str, tuple[float, list[float]]] = {}
    loads = []
    for run in range(runs):
        loads.append(os.getloadavg()[0])
        print(f"run {run + 1}/{runs} (load average {loads[-1]:.2f})", flush=True)
        figures: dict[tuple[str, int], tuple[float, bool]] = {}
        for name, factory in zip(names, (lambda: Etsy(stats_js), lambda: Ours(workers=1),
                                         lambda: Ours(workers=n))):
            daemon = factory()
            try:
                for per_packet, start in ((1, 50_000), (20, 200_000)):
                    figures[(name, per_packet)] = max_loss_free(daemon, per_packet, start, trials)
                if isinstance(daemon, Ours):
                    memory[name] = daemon.rss_mib()
            finally:
                daemon.close()
        results.append(figures)

    print()
    print(f"metrics/s, loss-free, per run (load average {', '.join(f'{x:.1f}' for x in loads)}); "
          "* = sender-bound (the daemon took all the sender could send)")
    for per_packet in (1, 20):
        for name in names:
            row = [f"{r[(name, per_packet)][0] / 1e3:,.0f}k{'*' if r[(name, per_packet)][1] else ''}"
                   for r in results]
            print(f"  {per_packet:>2}/packet  {name:<10} {' / '.join(row)}")
    print()
    print(f"{'':<14}{'ours 1 / etsy':>26}{f'ours {n} / etsy':>26}{f'ours {n} / ours 1':>26}")
    for per_packet in (1, 20):
        def ratios(a: str, b: str) -> list[float]:
            return [r[(a, per_packet)][0] / r[(b, per_packet)][0] for r in results if r[(b, per_packet)][0]]
        print(f"{f'{per_packet}/packet':<14}{spread(ratios('ours 1', 'etsy')):>26}"
              f"{spread(ratios(f'ours {n}', 'etsy')):>26}{spread(ratios(f'ours {n}', 'ours 1')):>26}")
        bound = sum(r[(f"ours {n}", per_packet)][1] or r[("ours 1", per_packet)][1] for r in results)
        if bound:
            print(f"{'':<14}sender-bound in {bound} of {runs} runs: ours is at least this")
    for name, (main_mib, workers) in memory.items():
        each = ", ".join(f"{w:.0f}" for w in workers)
        print(f"memory (RSS, after the last run), {name}: daemon process {main_mib:.0f} MiB"
              f"{f'; workers {each} MiB' if workers else ''}")
    ok = True
    for workers in sorted({1, n}):
        good, detail = distinct_at_flush(workers)
        ok = ok and good
        print(f"100,000 distinct metrics across flushes, {workers} worker(s): {'OK' if good else 'FAILED'} ({detail})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
