"""The flush at scale: our daemon vs etsy statsd 0.9 (node) at 10k, 100k and 500k names.

    python bench/daemon_scale.py [--sizes 10000,100000,500000] [--busy-flushes 3] [--idle-flushes 3]

For each size, each daemon in turn runs with its default settings (10 s flush) and
writes to a stand-in Carbon on loopback that reads as fast as it can and counts. The
bench sends a Django-like mix of names at 120,000 lines/s: 40 % counters, 20 % timers
(5 samples each time a timer comes round), 20 % gauges, 20 % sets, cycling through
all names, until ``--busy-flushes`` flushes with traffic have arrived, then stops and
waits for ``--idle-flushes`` idle flushes.

Per flush, from what each daemon wrote to Carbon (the same lines in both):

* flush calculation: ``processing_time`` + ``graphiteStats.calculationtime`` (etsy:
  its ``process_metrics`` + its graphite backend's loop; ours: the table swap and
  snapshot + ``format_snapshot``). Neither includes writing to the socket.
* lines per flush: counted by the stand-in Carbon (up to the ``flush_length`` line,
  which both daemons write last).
* RSS: the daemon's ``VmRSS`` read from /proc the moment its flush has arrived whole.

Points lost: lines sent minus the daemon's own ``metrics_received`` summed over its
flushes (UDP drops in the kernel or while it was busy), plus, for ours, the Carbon
client's ``carbon.dropped``.

Figures depend on the machine and on what else runs on it: the header prints the load
average; take them on a quiet machine. 500k names takes several minutes per daemon.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.daemon_ingest import Ours  # noqa: E402
from tests.server.etsy import EtsyStatsd, install  # noqa: E402

RATE = 120_000  # lines/s
PER_DATAGRAM = 20
FLUSH_SECONDS = 10  # both daemons' default
# The lines both daemons write about themselves (legacy namespace, prefixStats "statsd").
PROCESSING = b"\nstats.statsd.processing_time "
CALCULATION = b"\nstats.statsd.graphiteStats.calculationtime "
RECEIVED = b"\nstats_counts.statsd.metrics_received "
END = b"\nstats.statsd.graphiteStats.flush_length "  # the last line of a flush, in both


def mix(names: int, seed: int = 1) -> list[bytes]:
    """One round over every name, as datagrams of ``PER_DATAGRAM`` lines."""
    rnd = random.Random(seed)
    lines = []
    for i in range(names):
        kind = i % 10
        if kind < 4:
            lines.append(f"app.view{i}.hits:1|c")
        elif kind < 6:
            lines += [f"app.view{i}.time:{rnd.randint(1, 900)}|ms" for _ in range(5)]
        elif kind < 8:
            lines.append(f"app.view{i}.level:{rnd.randint(0, 100)}|g")
        else:
            lines.append(f"app.view{i}.users:u{rnd.randint(0, 50)}|s")
    rnd.shuffle(lines)
    return ["\n".join(lines[j:j + PER_DATAGRAM]).encode() for j in range(0, len(lines), PER_DATAGRAM)]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


@dataclass
class Flush:
    lines: int = 0
    processing_ms: float = 0.0
    calculation_ms: float = 0.0
    received: float = 0.0
    rss_mb: float = 0.0
    busy: bool = True


class DaemonDied(Exception):
    def __init__(self, code: int, flushes: int) -> None:
        super().__init__(f"exited with code {code} after {flushes} flushes")
        self.code, self.flushes = code, flushes


@dataclass
class FlushCounter:
    """Plays Carbon: reads every connection as fast as it can and counts each flush.

    Scans with ``bytes.find`` and ``count`` only: at 500k names a flush is about
    2 million lines (130 MB), which a line-by-line Python reader could not keep up with.
    """

    pid: int = 0  # whose RSS to read when a flush has arrived
    busy: bool = True  # traffic was being sent during the flush now arriving
    flushes: list[Flush] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.arrived = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        tail, current = b"\n", Flush()
        with conn:
            while chunk := conn.recv(1 << 20):
                data = tail + chunk
                cut = data.rfind(b"\n") + 1
                block, tail = data[:cut], data[cut - 1:]  # keep the "\n" before a partial line
                start = 0
                while (end_at := block.find(END, start)) >= 0:
                    line_end = block.index(b"\n", end_at + 1) + 1
                    self._take(block, start, line_end, current)
                    current.rss_mb = rss_mb(self.pid) if self.pid else 0.0
                    current.busy = self.busy
                    with self.arrived:
                        self.flushes.append(current)
                        self.arrived.notify_all()
                    current, start = Flush(), line_end - 1
                self._take(block, start, len(block), current)

    @staticmethod
    def _take(block: bytes, start: int, end: int, flush: Flush) -> None:
        flush.lines += block.count(b"\n", start + 1, end)
        for needle, attr in ((PROCESSING, "processing_ms"), (CALCULATION, "calculation_ms"),
                             (RECEIVED, "received")):
            at = block.find(needle, start, end)
            if at >= 0:
                value = block[at + len(needle):block.index(b" ", at + len(needle))]
                setattr(flush, attr, getattr(flush, attr) + float(value))

    def wait_flushes(self, count: int, timeout: float, proc) -> None:
        """Until ``count`` flushes have arrived; ``DaemonDied`` if ``proc`` exits first."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.flushes) < count:
                if proc.poll() is not None:
                    raise DaemonDied(proc.returncode, len(self.flushes))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(self.flushes)} of {count} flushes arrived in {timeout:.0f}s")
                self.arrived.wait(1.0)

    def close(self) -> None:
        self.server.close()


def send_until(port: int, payload: list[bytes], done) -> int:
    """Send ``payload`` round after round at ``RATE`` lines/s until ``done()``; lines sent."""
    per_second = RATE / PER_DATAGRAM
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        start = time.perf_counter()
        i = 0
        while not done():
            for _ in range(60):  # ~10 ms of traffic between clock reads
                packet = payload[i % len(payload)]
                s.send(packet)
                sent += packet.count(b"\n") + 1
                i += 1
            ahead = start + i / per_second - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    return sent


def run(daemon_name: str, names: int, payload: list[bytes], busy: int, idle: int, stats_js: Path) -> dict:
    carbon = FlushCounter()
    if daemon_name == "ours":
        daemon = Ours(["--graphite-port", str(carbon.port)])  # otherwise its defaults
        port, proc = daemon.port, daemon.proc
    else:
        daemon = EtsyStatsd(stats_js, {"graphiteHost": "127.0.0.1", "graphitePort": carbon.port})
        port, proc = daemon.udp_port, daemon.proc
    carbon.pid = proc.pid
    try:
        carbon.wait_flushes(1, FLUSH_SECONDS * 3, proc)  # start sending right after a flush
        first = len(carbon.flushes)
        sent = send_until(port, payload, lambda: len(carbon.flushes) >= first + busy or proc.poll() is not None)
        carbon.busy = False
        # the flush after the last packet still carries traffic; then the idle ones
        carbon.wait_flushes(first + busy + 1 + idle, FLUSH_SECONDS * (idle + 8) + names / 2000, proc)
        dropped = kernel_drops = 0
        if daemon_name == "ours":
            stats = daemon.stats()
            dropped = int(float(re.search(r"carbon\.dropped: (\S+)", stats).group(1)))
            kernel_drops = int(float(re.search(r"udp\.kernel_drops: (\S+)", stats).group(1)))
    except DaemonDied as died:
        why = daemon.stderr() if isinstance(daemon, EtsyStatsd) else ""
        last = why.strip().splitlines()[-1:] or [""]
        return {"died": f"{died} ({last[0][:80]})", "rss_series": [round(f.rss_mb) for f in carbon.flushes]}
    finally:
        daemon.close()
        carbon.close()
    measured = carbon.flushes[first:]
    received = sum(f.received for f in measured)
    traffic = [f for f in measured if f.busy]
    idle_flushes = measured[busy + 1:busy + 1 + idle]
    calc = [f.processing_ms + f.calculation_ms for f in traffic]
    return {
        "rss": max(f.rss_mb for f in traffic), "calc": statistics.median(calc), "calc_max": max(calc),
        "idle_calc": [f.processing_ms + f.calculation_ms for f in idle_flushes],
        "lines": max(f.lines for f in traffic), "lost": int(sent - received) + dropped,
        "note": f" (Carbon client dropped {dropped:,}, kernel dropped {kernel_drops:,} datagrams)"
        if daemon_name == "ours" else "",
        "sent": sent, "rss_series": [round(f.rss_mb) for f in measured[:busy + 1 + idle]],
    }


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sizes", default="10000,100000,500000", help="numbers of names, comma-separated")
    args.add_argument("--busy-flushes", type=int, default=3, help="flushes with traffic per run")
    args.add_argument("--idle-flushes", type=int, default=3, help="idle flushes after the traffic")
    args.add_argument("--only", choices=("ours", "etsy"), help="run one daemon only")
    opts = args.parse_args(argv)
    stats_js = install()
    if stats_js is None and opts.only != "ours":
        print("node/npm missing: cannot run etsy statsd", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {RATE:,} lines/s, "
          f"{FLUSH_SECONDS} s flushes, {opts.busy_flushes} busy + {opts.idle_flushes} idle flushes per run",
          flush=True)
    daemons = [opts.only] if opts.only else ["etsy", "ours"]
    header = (f"{'names':>8} {'daemon':<10} {'RSS after flush':>16} {'flush calculation':>18} "
              f"{'max':>7} {'lines/flush':>12} {'points lost':>12}   idle flushes: calculation ms; RSS MB "
              "per flush")
    rows = []
    for names in (int(n) for n in opts.sizes.split(",")):
        payload = mix(names)
        results = {}
        for name in daemons:
            r = results[name] = run(name, names, payload, opts.busy_flushes, opts.idle_flushes, stats_js)
            if "died" in r:
                rows.append(f"{names:>8,} {name:<10} {r['died']}; RSS MB per flush {r['rss_series']}")
                print(rows[-1], flush=True)
                continue
            rows.append(f"{names:>8,} {name:<10} {r['rss']:>13.0f} MB {r['calc']:>15.0f} ms {r['calc_max']:>4.0f} ms "
                        f"{r['lines']:>12,} {r['lost']:>12,}   {[round(c) for c in r['idle_calc']]}; "
                        f"{r['rss_series']}{r['note']}")
            print(rows[-1], flush=True)
        if len(results) == 2 and not any("died" in r for r in results.values()):
            ours, etsy = results["ours"], results["etsy"]
            rows.append(f"{names:>8,} {'ratio':<10} {ours['rss'] / etsy['rss']:>15.2f}x "
                        f"{ours['calc'] / max(etsy['calc'], 1):>17.2f}x")
            print(rows[-1], flush=True)
    print()
    print(header)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
