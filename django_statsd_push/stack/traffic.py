"""``statsd-push demo-traffic``: a realistic request mix at the example app.

Every panel of the dashboard needs something to show within a minute: fast and slow
views for latency percentiles, the N+1 list for DB queries per request, the cached view
for the hit ratio, 404s and 500s for the status-code panel, and now and then the
browser-timing beacon a real browser would send for a page carrying
``{% statsd_browser_timing %}``. A few threads with keep-alive connections are enough;
the rate is capped so the demo does not eat the CPU the daemons share with it.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
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
# The end of {% statsd_browser_timing %}'s script: ...})("<beacon URL>", "<view name>");
BEACON_CALL = re.compile(rb'\}\)\(("(?:[^"\\]|\\.)*"), ("(?:[^"\\]|\\.)*")\);</script>')
# One beacon per this many seconds from all threads: the endpoint takes STATSD_BROWSER_RATE
# (default 30) a minute from one address, and every demo beacon comes from this one.
BEACON_INTERVAL = 3.0
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
        self.beacons = Tally()  # beacon answers (204 when recorded), apart from the page mix
        self._next_beacon = 0.0  # monotonic time; guarded by _random_lock

    def path(self, kind: str) -> str:
        if kind == "detail":
            return f"/polls/{self.random.choice(self.poll_ids or [1])}/"
        if kind == "notfound":
            return f"/no-such-page/{self.random.randrange(1000)}/"
        return FIXED_PATHS[kind]

    def pick(self) -> str:
        return self.path(self.random.choices(KINDS, WEIGHTS)[0])

    def _request(self, conn: http.client.HTTPConnection, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """GET ``path``, or POST ``body`` (JSON) to it."""
        headers = {"User-Agent": "statsd-push-demo-traffic"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request("GET" if body is None else "POST", path, body=body, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
        return response.status, body

    def discover_polls(self) -> None:
        """Detail pages need ids that exist; read them off the list page once."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            status, body = self._request(conn, "/polls/")
            if status == 200:
                self.poll_ids = sorted({int(m) for m in DETAIL_LINK.findall(body)})
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def beacon(self, page: bytes, ttfb_ms: float) -> tuple[str, bytes] | None:
        """(URL, body) of the beacon the page's script would send, if the page has the script
        and a beacon is due. The figures are made up around the measured time to the page."""
        call = BEACON_CALL.search(page)
        if call is None:
            return None
        with self._random_lock:
            now = time.monotonic()
            if now < self._next_beacon:
                return None
            self._next_beacon = now + BEACON_INTERVAL
            dom = ttfb_ms + self.random.uniform(20, 150)
            load = dom + self.random.uniform(5, 400)
            lcp = self.random.uniform(dom, load + 200)
        try:
            url, view = json.loads(call[1]), json.loads(call[2])
        except ValueError:
            return None
        figures = {"ttfb": ttfb_ms, "dom_content_loaded": dom, "load": load, "lcp": lcp}
        return url, json.dumps({"view": view, **{k: round(v, 1) for k, v in figures.items()}}).encode()

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
                started = time.monotonic()
                try:
                    status, page = self._request(conn, path)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    status, page = 0, b""
                self.tally.add(status)
                beacon = self.beacon(page, (time.monotonic() - started) * 1000) if status == 200 else None
                if beacon is not None:
                    try:
                        self.beacons.add(self._request(conn, *beacon)[0])
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        self.beacons.add(0)
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
    print(f"demo-traffic: {traffic.tally.total} requests ({traffic.tally.summary()}), "
          f"{traffic.beacons.total} browser-timing beacons ({traffic.beacons.summary()})")
    if traffic.tally.total and traffic.tally.counts[0] == traffic.tally.total:
        print(f"demo-traffic: no response from {args.url}; is the example app running?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
