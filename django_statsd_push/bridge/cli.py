"""``statsd-push bridge``: statsd on 127.0.0.1:9125 (UDP+TCP) -> Prometheus /metrics on :9102.

Signals as for ``statsd-push serve`` (same loop): SIGHUP re-reads the mapping file,
SIGTERM/SIGINT flush once more and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from django_statsd_push.bridge.http import DEFAULT_LISTEN, parse_listen
from django_statsd_push.bridge.mapping import MappingError
from django_statsd_push.bridge.store import DEFAULT_MAX_SERIES
from django_statsd_push.bridge.standalone import DEFAULT_FLUSH_INTERVAL, StandaloneBridge
from django_statsd_push.server.cli import SHARED_KEYS, add_shared_arguments, run_until_stopped, signal_queue
from django_statsd_push.server.config import ConfigError

log = logging.getLogger("django_statsd_push.bridge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statsd-push bridge",
        description="Receive statsd metrics and expose them to Prometheus (statsd_exporter-compatible mapping).",
    )
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="HTTP HOST:PORT for /metrics (default %(default)s)")
    parser.add_argument("--statsd-host", default="127.0.0.1", help="statsd UDP+TCP address (default %(default)s)")
    parser.add_argument("--statsd-port", type=int, default=9125, help="statsd UDP+TCP port (default %(default)s)")
    parser.add_argument("--mapping", metavar="FILE", help="statsd_exporter mapping YAML (e.g. graphite/statsd-mapping.yml)")
    parser.add_argument(
        "--flush-interval",
        type=int,
        default=int(DEFAULT_FLUSH_INTERVAL * 1000),
        metavar="MS",
        help="how often received statsd data reaches /metrics, in ms (default %(default)s)",
    )
    parser.add_argument(
        "--max-series", type=int, default=DEFAULT_MAX_SERIES, help="most series held; more are dropped and counted"
    )
    parser.add_argument("--origin-tags", action="store_true",
                        help="keep DogStatsD |c: container ids and |card: cardinalities as labels")
    add_shared_arguments(parser)  # Unix sockets, events
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        parse_listen(args.listen)
    except ValueError as exc:
        parser.error(f"--listen: {exc}")
    if args.flush_interval <= 0:
        parser.error("--flush-interval must be > 0 ms")
    if args.max_series <= 0:
        parser.error("--max-series must be > 0")
    options = {key: getattr(args, key) for key in SHARED_KEYS if getattr(args, key) is not None}
    signals = signal_queue()  # before the ports answer: an early SIGTERM still flushes
    try:
        bridge = StandaloneBridge(
            args.mapping,
            args.listen,
            args.statsd_host,
            args.statsd_port,
            flush_interval=args.flush_interval / 1000,
            max_series=args.max_series,
            origin_tags=args.origin_tags,
            options=options,
        ).start()
    except MappingError as exc:
        print(f"statsd-push bridge: bad mapping file: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"statsd-push bridge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"statsd-push bridge: cannot listen: {exc}", file=sys.stderr)
        return 1
    host, port = bridge.statsd_address
    http_host, http_port = bridge.http_address
    log.info("statsd on %s:%d (UDP+TCP), metrics on http://%s:%d/metrics, flush every %d ms",
             host, port, http_host, http_port, args.flush_interval)  # fmt: skip
    # serve's loop: SIGHUP re-reads the mapping file (bad file: logged, old mapping kept)
    run_until_stopped(bridge.daemon, signals, lambda: replace(bridge.daemon.settings))
    return 0
