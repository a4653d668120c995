"""``statsd-push render``: serve the Graphite-compatible render API over a Whisper root."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .settings import RenderSettings

#: seconds SIGTERM waits for requests in flight before the process exits anyway
#: (the contract is "ended within 5 s, whatever is running")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="statsd-push render",
                                description="Serve the Graphite-compatible render API over a Whisper root. "
                                "Each flag can also be set as STATSD_PUSH_RENDER_<FLAG> for the WSGI entry point.")
    RenderSettings.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from .app import create_app
        from .httpserver import make_server
    except ImportError as exc:  # numpy is in the "server" extra, not the base install
        print(f"statsd-push render: {exc}; install django-statsd-push[server]", file=sys.stderr)
        return 2

    try:
        settings = RenderSettings.from_args(args)
        app = create_app(settings)
    except ValueError as exc:
        print(f"statsd-push render: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(app, settings.host, settings.port)
    except OSError as exc:
        print(f"statsd-push render: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1

    def stop(signum, frame):
        # shutdown() waits for serve_forever to notice, so it must run on another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"render API listening on http://{host}:{port} (whisper root {settings.whisper_root})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
        running = server.drain(settings.stop_grace)
        if running:
            # their threads are daemons: the interpreter exits without them
            logging.getLogger(__name__).warning("stopping with %d request(s) still running", running)
    finally:
        server.server_close()
    return 0
