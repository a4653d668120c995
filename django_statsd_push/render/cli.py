"""``statsd-push render``: serve the Graphite-compatible render API over a Whisper root."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .evaluator import Limits


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="statsd-push render",
                                description="Serve the Graphite-compatible render API over a Whisper root.")
    p.add_argument("--whisper-root", required=True, help="directory carbon writes .wsp files into")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--max-series", type=int, default=Limits.max_series,
                   help="most series one request may read (default %(default)s)")
    p.add_argument("--max-points", type=int, default=Limits.max_points,
                   help="most points one request may read or return (default %(default)s)")
    p.add_argument("--carbonlink", metavar="HOST:PORT[:INSTANCE]", action="append", default=None,
                   help="carbon-cache's cache-query port (e.g. 127.0.0.1:7002): merge points not yet written; "
                        "repeat (or comma-separate) for several caches behind carbon-relay's consistent hashing, "
                        "with the instance names of the relay's DESTINATIONS")
    p.add_argument("--cluster-server", metavar="HOST:PORT", action="append", default=None,
                   help="a peer render server to federate (graphite-web's CLUSTER_SERVERS); repeat for each")
    p.add_argument("--cluster-timeout", type=float, default=3.0, metavar="S",
                   help="seconds the peers have to answer one request; a later peer is left out (default 3)")
    p.add_argument("--static-dir", default=None, help="serve / and /static/* from here (default: the bundled dashboard)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from .app import STATIC_DIR, create_app
        from .httpserver import make_server
    except ImportError as exc:  # numpy is in the "server" extra, not the base install
        print(f"statsd-push render: {exc}; install django-statsd-push[server]", file=sys.stderr)
        return 2

    try:
        app = create_app(args.whisper_root, args.max_series, args.max_points, args.static_dir or STATIC_DIR,
                         ",".join(args.carbonlink or []), args.cluster_server, args.cluster_timeout)
    except ValueError as exc:
        print(f"statsd-push render: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(app, args.host, args.port)
    except OSError as exc:
        print(f"statsd-push render: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    def stop(signum, frame):
        # shutdown() waits for serve_forever to notice, so it must run on another thread;
        # nothing is interrupted mid-request, unlike raising KeyboardInterrupt here
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"render API listening on http://{host}:{port} (whisper root {args.whisper_root})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
