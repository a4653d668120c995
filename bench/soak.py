"""Soak: the whole local stack under steady traffic for ten minutes; nothing may grow or go missing.

    python bench/soak.py [--duration 600] [--warmup 60]

Starts the parts ``statsd-push stack`` starts (carbon-cache, the daemon with its
Prometheus sink, the render API, the example app under gunicorn), on free ports in a
temporary directory, then drives two kinds of traffic over a bounded set of names:

* the demo request mix at the example app (``stack/traffic.py``), so every metric goes
  view -> middleware -> UDP -> daemon -> carbon -> whisper;
* counters sent straight over UDP (``--udp-names`` names, ``--udp-rate`` datagrams/s of
  ten lines each), so the number sent is known exactly.

Meanwhile it scrapes ``/metrics`` and asks the render API for a dashboard-like query every
few seconds, as Prometheus and an open dashboard would.

Every process's RSS (children included, e.g. gunicorn workers) is read from /proc once
the warm-up is over and again at the end. After the traffic stops, the stack is stopped
in its own order (the daemon flushes once more, carbon writes its cache out) and the
whisper files are summed: ``stats_counts.soak.*`` must equal the UDP counts sent and
``stats_counts.response.<status>`` the responses the traffic generator received (plus
the launcher's own two requests: the readiness ``/healthz`` and the poll-id lookup).

Pass: every RSS within 10 % of its post-warm-up figure, and no count lost. Exit status 1
otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import whisper  # noqa: E402

from django_statsd_push.stack import cli as stack_cli  # noqa: E402
from django_statsd_push.stack.health import HOST  # noqa: E402
from django_statsd_push.stack.processes import Supervisor  # noqa: E402
from django_statsd_push.stack.traffic import Traffic  # noqa: E402

LINES_PER_DATAGRAM = 10
GROWTH_ALLOWED = 0.10
# The launcher's own requests that reach the middleware: the first /healthz answering
# 200 (readiness) and Traffic.discover_polls() reading /polls/ once.
LAUNCHER_200S = 2


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def process_tree(name: str, pid: int) -> dict[str, int]:
    """name -> pid for a process and its descendants (gunicorn's workers: app/1, app/2)."""
    found = {name: pid}
    for i, child in enumerate(children(pid), 1):
        found.update(process_tree(f"{name}/{i}", child))
    return found


def stack_processes(sup: Supervisor) -> dict[str, int]:
    procs: dict[str, int] = {}
    for service in sup.started:
        pid = getattr(service, "pid", None)
        if pid is None:  # CarbonService: the twistd process is the one that holds the data
            pid = service.carbon.proc.pid
        procs.update(process_tree(service.name, pid))
    return procs


class UdpCounters(threading.Thread):
    """``soak.c<i>:1|c`` over ``names`` names, paced by deadline at ``rate`` datagrams/s."""

    def __init__(self, port: int, names: int, rate: float) -> None:
        super().__init__(name="soak-udp", daemon=True)
        self.port, self.names, self.rate = port, names, rate
        self.sent: dict[str, int] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        interval, next_at, i = 1.0 / self.rate, time.monotonic(), 0
        try:
            while not self.stop_event.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop_event.wait(delay):
                    break
                next_at += interval
                names = [f"soak.c{(i + k) % self.names}" for k in range(LINES_PER_DATAGRAM)]
                i += LINES_PER_DATAGRAM
                sock.sendto("\n".join(f"{n}:1|c" for n in names).encode(), (HOST, self.port))
                for n in names:
                    self.sent[n] = self.sent.get(n, 0) + 1
        finally:
            sock.close()


class Readers(threading.Thread):
    """A Prometheus scrape and a dashboard-like render every ``every`` seconds."""

    def __init__(self, render_port: int, prometheus_port: int, every: float = 5.0) -> None:
        super().__init__(name="soak-readers", daemon=True)
        self.render_port, self.prometheus_port, self.every = render_port, prometheus_port, every
        self.stop_event = threading.Event()
        self.statuses: dict[str, dict[int | str, int]] = {"render": {}, "metrics": {}}

    def get(self, kind: str, port: int, path: str) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            status: int | str = response.status
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
        finally:
            conn.close()
        self.statuses[kind][status] = self.statuses[kind].get(status, 0) + 1

    def run(self) -> None:
        while not self.stop_event.wait(self.every):
            self.get("metrics", self.prometheus_port, "/metrics")
            self.get("render", self.render_port,
                     "/render?format=json&from=-5min&target=sumSeries(stats_counts.response.*)"
                     "&target=stats.timers.request.*.GET.upper_90&target=stats_counts.soak.*")


def whisper_sum(path: Path, since: float) -> float:
    if not path.exists():
        return 0.0
    # The daemon stamps its last flush (on SIGTERM) with the deadline of the interval it
    # closes, up to one interval ahead; whisper.fetch clamps to `now`, so move `now` past it.
    later = time.time() + 3600
    _, values = whisper.fetch(str(path), since, later, now=later)
    return sum(v for v in values if v is not None)


def sample(procs: dict[str, int]) -> dict[str, int | None]:
    return {name: rss_kib(pid) for name, pid in procs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600.0, help="seconds of traffic after warm-up (default 600)")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds of traffic before the first RSS reading")
    p.add_argument("--rate", type=float, default=20.0, help="HTTP requests/s at the example app (default 20)")
    p.add_argument("--udp-names", type=int, default=200, help="distinct UDP counter names (default 200)")
    p.add_argument("--udp-rate", type=float, default=100.0,
                   help=f"UDP datagrams/s, {LINES_PER_DATAGRAM} counters each (default 100)")
    p.add_argument("--dir", type=Path, default=None, help="stack directory (default: a temporary one)")
    args = p.parse_args(argv)

    tmp = None if args.dir else tempfile.TemporaryDirectory(prefix="statsd-push-soak-")
    stack_dir = args.dir or Path(tmp.name)
    stack_args = stack_cli.build_parser().parse_args(
        ["--dir", str(stack_dir), *[a for dest, *_ in stack_cli.PORT_FLAGS for a in (stack_cli.flag(dest), "0")]])
    holds = contextlib.ExitStack()  # the ports picked stay held until the stack has stopped
    stack_cli.resolve_ports(stack_args, holds)
    sup = Supervisor()
    began = time.time()
    traffic = udp = readers = None
    try:
        urls = stack_cli.start_stack(stack_args, sup, print)
        procs = stack_processes(sup)
        whisper_dir = sup.started[0].whisper_dir
        traffic = Traffic(urls["example app"], rate=args.rate, seed=1)
        udp = UdpCounters(stack_args.statsd_port, args.udp_names, args.udp_rate)
        readers = Readers(stack_args.render_port, stack_args.prometheus_port)
        traffic.start()
        udp.start()
        readers.start()
        print(f"soak: warm-up {args.warmup:g}s, then {args.duration:g}s; "
              f"{args.rate:g} req/s + {args.udp_rate * LINES_PER_DATAGRAM:g} UDP counters/s "
              f"over {args.udp_names} names", flush=True)
        time.sleep(args.warmup)
        procs = stack_processes(sup)  # gunicorn workers exist by now
        start_rss = sample(procs)
        peak = dict(start_rss)
        end_at = time.monotonic() + args.duration
        while (left := end_at - time.monotonic()) > 0:
            time.sleep(min(30.0, left))
            sup.check()
            now = sample(procs)
            peak = {n: max(v or 0, peak.get(n) or 0) for n, v in now.items()}
            print(f"soak: {args.duration - max(0.0, end_at - time.monotonic()):.0f}s "
                  + " ".join(f"{n}={(v or 0) / 1024:.1f}M" for n, v in now.items()), flush=True)
        end_rss = sample(procs)
    finally:
        for part in (traffic, udp, readers):
            if part is not None:
                part.stop() if isinstance(part, Traffic) else part.stop_event.set()
        for part in (udp, readers):
            if part is not None and part.is_alive():
                part.join(30)
        sup.stop_all(report=print)
        holds.close()

    since = began - 60
    failures = []

    print("\nRSS (MiB)       after warm-up    end     peak   change")
    for name in procs:
        a, b = start_rss.get(name), end_rss.get(name)
        if not a or not b:
            failures.append(f"{name}: no RSS reading (exited?)")
            continue
        change = b / a - 1
        print(f"  {name:<14} {a / 1024:9.1f} {b / 1024:8.1f} {(peak.get(name) or 0) / 1024:8.1f} {change:+8.1%}")
        if change > GROWTH_ALLOWED:
            failures.append(f"{name}: RSS grew {change:+.1%} after warm-up")

    udp_sent = sum(udp.sent.values())
    udp_stored = sum(whisper_sum(whisper_dir / "stats_counts" / "soak" / f"{n.split('.')[1]}.wsp", since)
                     for n in udp.sent)
    print(f"\nUDP counters   sent {udp_sent}  stored {udp_stored:.0f}  lost {udp_sent - udp_stored:.0f}")
    if udp_stored != udp_sent:
        failures.append(f"UDP counters: sent {udp_sent}, stored {udp_stored:.0f}")

    sent_by_status = dict(traffic.tally.counts)
    sent_by_status[200] = sent_by_status.get(200, 0) + LAUNCHER_200S
    for status, sent in sorted(sent_by_status.items()):
        if status == 0:
            failures.append(f"HTTP: {sent} requests got no response")
            continue
        stored = whisper_sum(whisper_dir / "stats_counts" / "response" / f"{status}.wsp", since)
        print(f"HTTP {status}       sent {sent}  stored {stored:.0f}  lost {sent - stored:.0f}")
        if stored != sent:
            failures.append(f"HTTP {status}: responses {sent}, stored {stored:.0f}")
    print(f"readers: {readers.statuses}")
    for kind, statuses in readers.statuses.items():
        if set(statuses) - {200}:
            failures.append(f"{kind}: answers other than 200: {statuses}")

    if tmp is not None:
        tmp.cleanup()
    print("\nsoak: " + ("PASS" if not failures else "FAIL\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
