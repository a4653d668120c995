"""The bundled HTTP server: the stdlib WSGI server with one thread per connection.

Chosen over gunicorn for ``statsd-push render`` because a render request is one
short, mostly NumPy-bound computation: a thread per connection adds no measurable
latency, starts in milliseconds, needs no fork or extra process to supervise, and
runs the same inside tests (port 0, clean shutdown). For several cores, run the
same WSGI app under gunicorn (see :mod:`django_statsd_push.render.wsgi`).

Threads are enough to keep one request from stalling the others because nothing a
request runs holds the GIL for long: regular expressions run on RE2 or with
``concurrent=True`` (:mod:`.regex`), NumPy releases it for large arrays, and the
Python between them yields every switch interval (5 ms).
"""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    timeout = 30  # seconds a client may stall mid-request before its thread gives up

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per connection, at most ``max_threads`` at once: past that, accepting
    waits (the kernel's backlog queues), so a connection flood cannot spawn without bound."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    max_threads = 64

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_threads)

    def process_request(self, request, client_address) -> None:
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the requests in flight (call after
        ``serve_forever`` returns); the number still running when it gives up."""
        end = time.monotonic() + timeout
        taken = 0
        while taken < self.max_threads and self._slots.acquire(timeout=max(0.0, end - time.monotonic())):
            taken += 1
        return self.max_threads - taken


def make_server(app, host: str = "127.0.0.1", port: int = 8080) -> ThreadingWSGIServer:
    server = ThreadingWSGIServer((host, port), _QuietHandler)
    server.set_app(app)
    return server


class BackgroundServer:
    """Serve an app from a thread (tests, benchmarks): ``with BackgroundServer(app) as url:``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_server(app, host, port)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()
