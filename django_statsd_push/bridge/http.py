"""The bridge's HTTP face: ``/metrics``, ``/-/healthy``, ``/-/ready`` (statsd_exporter's paths).

A threaded stdlib server on its own thread: scrapes must not wait behind statsd input,
and the exposition itself is cached per flush, so a thread per request is plenty.
``/metrics`` never answers 500: if rendering fails outright (it should not: a bad
family is already skipped by the collector) the last good page is served.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django_statsd_push.bridge.collector import BridgeCollector

__all__ = ["DEFAULT_LISTEN", "MetricsServer", "parse_listen"]

log = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:9102"
#: what the page is (exposition.py writes 0.0.4). Spelled here: prometheus_client names
#: it CONTENT_TYPE_PLAIN_0_0_4 only after 0.22 (the floor is 0.20), and its CONTENT_TYPE_LATEST is 1.0.0 now.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_listen(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[v6]:PORT`` -> (host, port); ValueError names the problem."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9102)")
    host = host.strip("[]") or default_host
    return host, int(port)


_INDEX = b"""<html><head><title>statsd-push bridge</title></head><body>
<h1>statsd-push bridge</h1><p><a href="/metrics">Metrics</a></p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/-/healthy":
            self._send(200, b"OK\n", "text/plain; charset=utf-8")
        elif path == "/-/ready":
            if self.server.ready():
                self._send(200, b"OK\n", "text/plain; charset=utf-8")
            else:
                self._send(503, b"not ready\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, _INDEX, "text/html; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _metrics(self) -> None:
        server = self.server
        try:
            body = server.collector.render()
            server.last_good = body
        except Exception:  # noqa: BLE001 - a scrape must never see a 500
            server.collector.render_errors += 1
            log.exception("rendering /metrics failed; serving the last good page")
            body = server.last_good
        self._send(200, body, CONTENT_TYPE)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    collector: BridgeCollector
    ready: Callable[[], bool]
    last_good: bytes = b""


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """Serves a collector on ``host:port`` from a background thread (port 0: any free)."""

    def __init__(
        self,
        collector: BridgeCollector,
        host: str = "127.0.0.1",
        port: int = 9102,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._server = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        self._server.collector = collector
        self._server.ready = ready
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="bridge-http", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
