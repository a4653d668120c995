"""``statsd-push demo-traffic``: a realistic request mix at the example app.

Every panel of the dashboard needs something to show within a minute: fast and slow
views for latency percentiles, the N+1 list for DB queries per request, the cached view
for the hit ratio, 404s and 500s for the status-code panel. A few threads with
keep-alive connections are enough; the rate is capped so the demo does not eat the CPU
the daemons share with it.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import random
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import statsd

# (weight, kind); the path of each kind is picked in Traffic.path().
MIX: list[tuple[int, str]] = [
    (30, "index"),
    (15, "polls"),
    (15, "detail"),
    (20, "cached"),
    (6, "slow"),
    (7, "notfound"),
    (4, "error"),
    (3, "healthz"),
]
KINDS = [kind for _, kind in MIX]
WEIGHTS = [weight for weight, _ in MIX]
FIXED_PATHS = {"index": "/", "polls": "/polls/", "cached": "/cached/", "slow": "/slow/", "error": "/error/",
               "healthz": "/healthz"}

DETAIL_LINK = re.compile(rb'/polls/(\d+)/')
TAGGED_METRIC = "demo_traffic.responses"  # sent as demo_traffic.responses;status=2xx


@dataclass
class Tally:
    """Responses by status (0 = connection error), shared by the worker threads."""

    counts: collections.Counter[int] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int) -> None:
        with self.lock:
            self.counts[status] += 1

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def summary(self) -> str:
        with self.lock:
            return ", ".join(f"{'error' if s == 0 else s}: {n}" for s, n in sorted(self.counts.items())) or "none"


class Traffic:
    """Drives the mix from ``threads`` threads at about ``rate`` requests/s in total."""

    def __init__(self, base_url: str, rate: float = 20.0, threads: int = 4, seed: int | None = None,
                 statsd_address: tuple[str, int] | None = None, events_url: str | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--url must be an http:// URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.rate = rate
        self.threads = max(1, threads)
        self.random = random.Random(seed)
        self._random_lock = threading.Lock()  # Random is shared by the worker threads
        self.poll_ids: list[int] = []
        self.tally = Tally()
        self.stop_event = threading.Event()
        self._workers: list[threading.Thread] = []
        # The tag and event demo: a Graphite-tagged counter per response status class
        # (seriesByTag, groupByTags) and one deploy marker posted at start.
        self.statsd = statsd.StatsClient(*statsd_address) if statsd_address else None
        self.events_url = events_url

    def path(self, kind: str) -> str:
        if kind == "detail":
            return f"/polls/{self.random.choice(self.poll_ids or [1])}/"
        if kind == "notfound":
            return f"/no-such-page/{self.random.randrange(1000)}/"
        return FIXED_PATHS[kind]

    def pick(self) -> str:
        return self.path(self.random.choices(KINDS, WEIGHTS)[0])

    def _get(self, conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
        conn.request("GET", path, headers={"User-Agent": "statsd-push-demo-traffic"})
        response = conn.getresponse()
        body = response.read()
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
        return response.status, body

    def discover_polls(self) -> None:
        """Detail pages need ids that exist; read them off the list page once."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            status, body = self._get(conn, "/polls/")
            if status == 200:
                self.poll_ids = sorted({int(m) for m in DETAIL_LINK.findall(body)})
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def _worker(self, interval: float, index: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        next_at = time.monotonic() + interval * index / self.threads
        try:
            while not self.stop_event.is_set():
                # Deadline pacing: a slow response does not shift every later request.
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop_event.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
                with self._random_lock:
                    path = self.pick()
                try:
                    status, _ = self._get(conn, path)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    status = 0
                self.tally.add(status)
                if self.statsd is not None:
                    self.statsd.incr(f"{TAGGED_METRIC};status={status // 100 if status else 0}xx")
        finally:
            conn.close()

    def start(self) -> None:
        if self.events_url:
            from django_statsd_push.events import send_event

            send_event("demo-traffic started", tags=["deploy", "demo"], data="statsd-push demo-traffic",
                       url=self.events_url)
        self.discover_polls()
        interval = self.threads / self.rate if self.rate > 0 else 0.0
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, args=(interval, i), name=f"demo-traffic-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        for t in self._workers:
            t.join(timeout)
        self._workers.clear()
        if self.statsd is not None:
            self.statsd.close()


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n")[0].replace("``", "")
    p = argparse.ArgumentParser(prog="statsd-push demo-traffic", description=summary)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the example app")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second in total (default 20)")
    p.add_argument("--threads", type=int, default=4, help="concurrent connections (default 4)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 = until Ctrl-C (default)")
    p.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable mix")
    p.add_argument("--statsd", default=None, metavar="HOST:PORT",
                   help="also send a tagged counter (demo_traffic.responses;status=2xx) to this statsd daemon")
    p.add_argument("--events-url", default=None, metavar="URL",
                   help="post a deploy event here at start (e.g. http://127.0.0.1:8080/events/)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rate <= 0:
        print("demo-traffic: --rate must be positive", file=sys.stderr)
        return 2
    try:
        address = None
        if args.statsd:
            host, _, port = args.statsd.rpartition(":")
            if not port.isdigit():
                raise ValueError(f"--statsd must be HOST:PORT, got {args.statsd!r}")
            address = (host or "127.0.0.1", int(port))
        traffic = Traffic(args.url, rate=args.rate, threads=args.threads, seed=args.seed,
                          statsd_address=address, events_url=args.events_url)
    except ValueError as e:
        print(f"demo-traffic: {e}", file=sys.stderr)
        return 2
    print(f"demo-traffic: ~{args.rate:g} req/s at {args.url} (Ctrl-C to stop)", flush=True)
    traffic.start()
    try:
        if args.duration > 0:
            traffic.stop_event.wait(args.duration)
        else:
            while not traffic.stop_event.wait(3600):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        traffic.stop()
    print(f"demo-traffic: {traffic.tally.total} requests ({traffic.tally.summary()})")
    if traffic.tally.total and traffic.tally.counts[0] == traffic.tally.total:
        print(f"demo-traffic: no response from {args.url}; is the example app running?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
