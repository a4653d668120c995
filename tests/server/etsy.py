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

from django_statsd_push.stack.health import PortHold

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


class EtsyExited(RuntimeError):
    """etsy statsd exited before it answered on its management port."""


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
    """etsy statsd running as a child process with the given config (JSON-able dict).

    Its management port is held for it (``PortHold``; libuv binds with SO_REUSEADDR), so
    the "health: up" there is this etsy's. Its UDP port cannot be held (node's dgram sets
    neither option): it is picked free, and when something takes it before etsy binds
    it, etsy dies with EADDRINUSE before it answers on the management port (it binds its
    servers first, and the error is thrown before any later socket event is handled),
    and is started again on fresh ports.
    """

    def __init__(self, stats_js: Path, config: dict | string.Template, attempts: int = 3) -> None:
        """``config``: a dict (written as JSON), or the text of a config.js with ``$port``
        and ``$mgmt_port`` where the free ports go. node's stderr is kept (``stderr()``:
        a benchmark reads why a run died)."""
        self._dir = tempfile.TemporaryDirectory(prefix="etsy-statsd-")
        self.stderr_path = Path(self._dir.name) / "stderr.log"
        self._mgmt: PortHold | None = None
        self.proc: subprocess.Popen | None = None
        try:
            for attempt in range(attempts):
                try:
                    self._start(stats_js, config)
                    return
                except EtsyExited:
                    if attempt == attempts - 1 or "EADDRINUSE" not in self.stderr():
                        raise
        except BaseException:
            self.close()
            raise

    def _start(self, stats_js: Path, config: dict | string.Template) -> None:
        if self._mgmt is not None:
            self._mgmt.close()
        self._mgmt = PortHold()
        self.mgmt_port = self._mgmt.port
        self.udp_port = self._pick_udp_port()
        path = Path(self._dir.name) / "config.js"
        if isinstance(config, string.Template):
            path.write_text(config.substitute(port=self.udp_port, mgmt_port=self.mgmt_port))
        else:
            self.config = {"port": self.udp_port, "address": "127.0.0.1", "mgmt_port": self.mgmt_port,
                           "mgmt_address": "127.0.0.1", **config}
            path.write_text(json.dumps(self.config))
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(["node", str(stats_js), str(path)], stdout=subprocess.DEVNULL,
                                         stderr=stderr, cwd=self._dir.name)
        self._wait_ready()

    def _pick_udp_port(self) -> int:
        with PortHold(udp=True) as pick:  # a port free for UDP now, let go for node to bind
            return pick.port

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EtsyExited(f"etsy statsd exited with {self.proc.returncode}:\n{self.stderr()[-2000:]}")
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
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._mgmt is not None:
            self._mgmt.close()
        self._dir.cleanup()

    def __enter__(self) -> EtsyStatsd:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
