"""The real etsy statsd 0.9 (node) as an oracle, and a TCP listener playing Carbon.

etsy statsd is installed with npm into a cache directory outside the repository
(``$ETSY_STATSD_DIR``, else ``$XDG_CACHE_HOME/django-statsd-push/etsy-statsd``), once.
The bench uses this module too.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import string
import subprocess
import tempfile
import threading
import time
from pathlib import Path

VERSION = "0.9.0"


def node_cache(name: str) -> Path:
    """Where an npm package the tests run is installed, outside the repository."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "django-statsd-push" / name


def cache_dir() -> Path:
    if os.environ.get("ETSY_STATSD_DIR"):
        return Path(os.environ["ETSY_STATSD_DIR"])
    return node_cache("etsy-statsd")


def npm_install(package: str, version: str, prefix: Path) -> Path | None:
    """``prefix/node_modules/<package>``, installed with npm if it is not there yet; None
    without node/npm or offline (the caller skips, or fails in CI, with a reason)."""
    where = prefix / "node_modules" / package
    if where.exists():
        return where
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--omit=optional", "--prefix", str(prefix),
             f"{package}@{version}"],
            check=True, capture_output=True, timeout=300,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return where if where.exists() else None


def install() -> Path | None:
    """Path of etsy's ``stats.js``, installing it with npm if needed; None without node/npm."""
    where = npm_install("statsd", VERSION, cache_dir())
    return where / "stats.js" if where is not None and (where / "stats.js").exists() else None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CarbonCapture:
    """A TCP listener on port 0 that keeps each connection's payload as a list of lines.

    etsy opens one connection per flush, so one payload is one flush. Our daemon keeps
    one connection open, so for it ``lines()`` hands out whatever has arrived.
    """

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.payloads: queue.Queue[list[str]] = queue.Queue()
        self.received: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(target=self._read, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _read(self, conn: socket.socket) -> None:
        data = b""
        lines: list[str] = []
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
                *complete, data = data.split(b"\n")
                for line in complete:
                    lines.append(line.decode())
                    self.received.put(lines[-1])
        self.payloads.put(lines)

    def flush(self, timeout: float = 30.0) -> list[str]:
        """The lines of etsy's next flush (it opens one connection per flush)."""
        try:
            return self.payloads.get(timeout=timeout)
        except queue.Empty as exc:
            raise TimeoutError("no flush arrived") from exc

    def lines_until(self, predicate, timeout: float = 30.0) -> list[str]:
        """Lines from a persistent connection, until one satisfies ``predicate``."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.received.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty as exc:
                raise TimeoutError(f"only got {lines[-5:]}") from exc
            lines.append(line)
            if predicate(line):
                return lines

    def drop_connections(self) -> None:
        """Close the accepted connections (a Carbon restart, as the client sees it)."""
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        self.server.close()
        self.drop_connections()  # ends each reader thread's recv
        self._accept.join(5)
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> CarbonCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EtsyStatsd:
    """etsy statsd running as a child process with the given config (JSON-able dict)."""

    def __init__(self, stats_js: Path, config: dict | string.Template, stderr=subprocess.DEVNULL) -> None:
        """``config``: a dict (written as JSON), or the text of a config.js with ``$port``
        and ``$mgmt_port`` where the free ports go. ``stderr``: where node's goes (a
        benchmark keeps it to say why a run died)."""
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.mgmt_port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="etsy-statsd-")
        path = Path(self._dir.name) / "config.js"
        if isinstance(config, string.Template):
            path.write_text(config.substitute(port=self.udp_port, mgmt_port=self.mgmt_port))
        else:
            self.config = {"port": self.udp_port, "address": "127.0.0.1", "mgmt_port": self.mgmt_port,
                           "mgmt_address": "127.0.0.1", **config}
            path.write_text(json.dumps(self.config))
        self.proc = subprocess.Popen(["node", str(stats_js), str(path)], stdout=subprocess.DEVNULL,
                                     stderr=stderr, cwd=self._dir.name)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etsy statsd exited with {self.proc.returncode}")
            try:
                if "health: up" in self.mgmt("health"):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("etsy statsd did not start")

    def mgmt(self, command: str, timeout: float = 30.0) -> str:
        """Send a management command, return the answer (up to END for listings)."""
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=timeout) as s:
            s.sendall(command.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(1 << 20)
                data += chunk
                if not chunk or (command == "health" and b"\n" in data) or b"END\n\n" in data:
                    return data.decode()

    def send(self, packets: list[bytes]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for packet in packets:
                s.sendto(packet, ("127.0.0.1", self.udp_port))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._dir.cleanup()

    def __enter__(self) -> EtsyStatsd:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
