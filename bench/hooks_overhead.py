"""Added cost of the DB and cache hooks, against django-prometheus's DB and cache
backends, measured in the same run.

    python bench/hooks_overhead.py [--rounds 9] [--queries 4000] [--gets 20000] [--strict]

DB: ``cursor.execute("SELECT 1")`` through Django's cursor on an in-memory SQLite
database, one connection per configuration:

  off          plain sqlite3 backend, hooks off                       (baseline)
  push         plain sqlite3 backend + our DB hook, inside a request batch (the
               batch is sent every 50 queries, as a request's would be: its share of
               packing and sending is included)
  push-nobatch plain sqlite3 backend + our DB hook, outside any request: one UDP
               datagram per query (management commands, scripts)
  prometheus   django_prometheus.db.backends.sqlite3 (counters + histogram per query)

Cache: ``cache.get`` on LocMem, half hits, half misses; same configurations with our
cache hook (timer + hit/miss counter per get) and with
django_prometheus.cache.backends.locmem.LocMemCache.

Added cost = configuration - off. Target: push's added cost below prometheus's (the
ratio printed is push / prometheus; < 1 meets it). Our metrics go over real UDP to a
socket bound on 127.0.0.1 (drained between rounds, never during timing). Rounds are
interleaved and the median round reported, so drift on a shared machine hits every
configuration alike. ``--strict`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

BATCH_EVERY = 50  # queries per simulated request


def configure(port: int, maxudpsize: int) -> None:
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=["django_statsd_push"],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            "prometheus": {
                "ENGINE": "django_prometheus.db.backends.sqlite3", "NAME": ":memory:",
            },
        },
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "prometheus": {
                "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
                "LOCATION": "prometheus",
            },
        },
        STATSD_CLIENT="udp",
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=port,
        STATSD_MAXUDPSIZE=maxudpsize,
        STATSD_HOOKS=[],
    )
    django.setup()


def drain(sock: socket.socket) -> int:
    count = 0
    try:
        while True:
            sock.recv(65535)
            count += 1
    except BlockingIOError:
        return count


def per_op_ns(run: Callable[[int], None], n: int) -> float:
    start = time.perf_counter_ns()
    run(n)
    return (time.perf_counter_ns() - start) / n


def db_runs() -> dict[str, tuple[Callable[[int], None], Callable[[], None]]]:
    """name -> (loop of n queries, setup before the round)."""
    from django.db import connections

    from django_statsd_push.client import batching
    from django_statsd_push.hooks import db as db_hook

    plain = connections["default"].cursor()
    prom = connections["prometheus"].cursor()

    def loop(cursor):
        def run(n: int) -> None:
            execute = cursor.execute
            for _ in range(n):
                execute("SELECT 1")
        return run

    def batched(n: int) -> None:
        execute = plain.execute
        for _ in range(n // BATCH_EVERY):
            with batching():
                for _ in range(BATCH_EVERY):
                    execute("SELECT 1")

    return {
        "off": (loop(plain), db_hook.uninstall),
        "push": (batched, db_hook.install),
        "push-nobatch": (loop(plain), db_hook.install),
        "prometheus": (loop(prom), db_hook.uninstall),
    }


def cache_runs() -> dict[str, tuple[Callable[[int], None], Callable[[], None]]]:
    from django.core.cache import caches

    from django_statsd_push.client import batching
    from django_statsd_push.hooks import cache as cache_hook

    def loop(alias):
        def run(n: int) -> None:
            get = caches[alias].get  # looked up after install/uninstall
            for _ in range(n // 2):
                get("hit")
                get("miss")
        return run

    def batched(n: int) -> None:
        get = caches["default"].get
        for _ in range(n // BATCH_EVERY):
            with batching():
                for _ in range(BATCH_EVERY // 2):
                    get("hit")
                    get("miss")

    caches["default"].set("hit", 1, None)
    caches["prometheus"].set("hit", 1, None)
    return {
        "off": (loop("default"), cache_hook.uninstall),
        "push": (batched, cache_hook.install),
        "push-nobatch": (loop("default"), cache_hook.install),
        "prometheus": (loop("prometheus"), cache_hook.uninstall),
    }


def measure(runs, n: int, rounds: int, sock: socket.socket) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for name, (run, setup) in runs.items():  # warm up
        setup()
        run(min(n, 1000))
    drain(sock)
    for _ in range(rounds):
        for name, (run, setup) in runs.items():
            setup()
            samples[name].append(per_op_ns(run, n))
            drain(sock)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, unit: str, medians: dict[str, float]) -> bool:
    off = medians["off"]
    added = {name: value - off for name, value in medians.items()}
    print(f"\n{title} (median of rounds, ns per {unit})")
    for name, value in medians.items():
        extra = "" if name == "off" else f"  added {added[name]:8.0f}"
        print(f"  {name:<13} {value:9.0f}{extra}")
    prom = added["prometheus"]
    ok = True
    for name in ("push", "push-nobatch"):
        ratio = added[name] / prom if prom > 0 else float("inf")
        met = added[name] < prom
        ok = ok and (met if name == "push" else True)
        print(f"  {name} added / prometheus added = {ratio:.2f}"
              f"{'  (target < 1: met)' if met else '  (target < 1: MISSED)'}"
              f"{'' if name == 'push' else '  [informational]'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--queries", type=int, default=4000, help="queries per round")
    parser.add_argument("--gets", type=int, default=20000, help="cache gets per round")
    parser.add_argument("--maxudpsize", type=int, default=512,
                        help="STATSD_MAXUDPSIZE (512 is the default; 1432 fits a 1500 MTU)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        configure(sock.getsockname()[1], args.maxudpsize)
        from django.db import connections

        from django_statsd_push.client import statsd

        started = time.perf_counter()
        db = measure(db_runs(), args.queries, args.rounds, sock)
        cache = measure(cache_runs(), args.gets, args.rounds, sock)
        print(f"python {sys.version.split()[0]}, django {django.get_version()}, "
              f"STATSD_MAXUDPSIZE={args.maxudpsize}, {args.rounds} rounds, "
              f"{time.perf_counter() - started:.1f} s")
        ok = report(f"DB: SELECT 1 on in-memory SQLite, {args.queries} queries/round",
                    "query", db)
        ok = report(f"Cache: LocMem get, 50% hits, {args.gets} gets/round",
                    "get", cache) and ok
        statsd.reset()
        connections.close_all()
    finally:
        sock.close()
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
