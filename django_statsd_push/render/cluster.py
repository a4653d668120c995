"""Federation: one render API answering for several, as graphite-web's ``CLUSTER_SERVERS``.

Each peer is another render server (this project's or graphite-web) holding its own
share of the series (carbon-relay's consistent hashing put each series on one cache).
``/metrics/find``, ``/metrics/expand``, ``/metrics/index.json`` and every path read by
``/render`` are asked of all peers at once with ``local=1`` (so a peer never asks on in
its turn) and merged with the local answer:

- find: one entry per path; a leaf found on several peers is one leaf whose intervals
  are the union (graphite-web's ``REMOTE_STORE_MERGE_RESULTS``);
- render: series of the same name are merged as graphite-web's ``_merge_results``: the
  first one seen (local first) has its gaps filled from the others when both have the
  same length; when the lengths differ the one with fewer gaps is kept.

Peers are asked in msgpack, which can carry nothing but plain data, so nothing a peer
sends is ever unpickled. Every request to the peers has one deadline (``timeout``, or
the request's remaining ``--time-budget`` if that is sooner): a peer that is down, slow,
or answers garbage is left out of that answer, logged, counted (``/cluster``) and named
in the response's ``X-Cluster-Failed-Peers`` header. The answer is partial, never late,
never a 500 (past the request's own budget it is main's HTTP 503, as for any request).

Tagged series federate the same way: ``seriesByTag(...)`` is sent to the peers as the
target it is, and each peer answers from its own tag database (graphite-web 1.1.8's
RemoteFinder passes tagged queries through likewise).
"""

from __future__ import annotations

import http.client
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import msgpack
import numpy as np

from . import deadline as budget
from . import reader
from .series import Series

log = logging.getLogger(__name__)

MAX_RESPONSE = 64 << 20  # bytes one peer may answer to one request
FAILED_HEADER = "X-Cluster-Failed-Peers"


class RemoteNode(NamedTuple):
    """A node found on peers: the fields of ``finder.Node`` and the intervals it holds."""

    path: str
    fs_path: str  # always "": nothing local to read
    is_leaf: bool
    name: str
    intervals: tuple[tuple[float, float], ...] = ()


class PeerFailed(Exception):
    pass


@dataclass
class PeerStats:
    requests: int = 0
    failures: int = 0
    timeouts: int = 0
    last_error: str = ""


class Peer:
    """One ``CLUSTER_SERVERS`` entry: ``host:port`` or ``http://host:port/prefix``."""

    def __init__(self, spec: str) -> None:
        parsed = urlsplit(spec if "://" in spec else "http://" + spec)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"cluster server must be HOST:PORT or http://HOST:PORT[/PREFIX], got {spec!r}")
        try:
            self.port = parsed.port or 80
        except ValueError:
            raise ValueError(f"cluster server {spec!r} has an invalid port") from None
        self.host = parsed.hostname
        self.prefix = parsed.path.rstrip("/")
        self.name = f"{self.host}:{self.port}{self.prefix}"
        self.stats = PeerStats()
        self._lock = threading.Lock()

    def get(self, path: str, params: list[tuple[str, str]], deadline: float) -> object:
        """The peer's msgpack answer, decoded; PeerFailed for anything else."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise PeerFailed("no time left")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=left)
        try:
            conn.request("GET", f"{self.prefix}{path}?{urlencode(params)}", headers={"Accept": "application/x-msgpack"})
            sock = conn.sock  # http.client forgets it once a response says it closes
            response = conn.getresponse()
            chunks: list[bytes] = []
            size = 0
            while not response.isclosed():
                sock.settimeout(max(deadline - time.monotonic(), 0.001))  # one deadline, not one per read
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raise PeerFailed(f"answer larger than {MAX_RESPONSE} bytes")
                if time.monotonic() > deadline:
                    raise TimeoutError()
                chunks.append(chunk)
        except TimeoutError:
            raise PeerFailed("timed out") from None
        except (OSError, http.client.HTTPException) as exc:
            raise PeerFailed(f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        body = b"".join(chunks)
        if response.status != 200:
            first_line = body.decode("utf-8", "replace").strip().splitlines()[:1]
            raise PeerFailed(f"HTTP {response.status} {first_line[0][:200] if first_line else ''}".rstrip())
        try:
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise PeerFailed(f"undecodable answer: {exc}") from None

    def count(self, error: str | None, timed_out: bool = False) -> None:
        with self._lock:
            self.stats.requests += 1
            if error is not None:
                self.stats.failures += 1
                self.stats.timeouts += timed_out
                self.stats.last_error = error


class Cluster:
    """The peers of one render server and the fan-out to them."""

    def __init__(self, servers: Sequence[str], timeout: float = 3.0) -> None:
        if timeout <= 0:
            raise ValueError("cluster timeout must be positive")
        self.peers = [Peer(spec) for spec in servers]
        if not self.peers:
            raise ValueError("a cluster needs at least one server")
        self.timeout = timeout
        # A worker per peer for each request the server may serve at once (httpserver's 64
        # threads), so a busy front never queues a peer request past its deadline; threads
        # start only as needed, and one held by a hung peer is freed at the deadline.
        self._pool = ThreadPoolExecutor(max_workers=64 * len(self.peers), thread_name_prefix="cluster")

    def ask(self, path: str, params: list[tuple[str, str]], failed: list[str]) -> list[object]:
        """Every peer's decoded answer that arrived in time; the others named in ``failed``.

        The peers have ``timeout`` seconds, or what is left of the request's time budget
        (``--time-budget``) if that is less; a request whose budget runs out while
        waiting for them ends as every over-budget request does (HTTP 503)."""
        request = budget.current()
        left = self.timeout if request is None else min(self.timeout, request.remaining())
        if left <= 0:
            raise budget.over_budget(request, f"asking the cluster peers for {path}")
        deadline = time.monotonic() + left
        params = [*params, ("local", "1"), ("format", "msgpack")]
        futures = {self._pool.submit(peer.get, path, params, deadline): peer for peer in self.peers}
        done, _ = wait(futures, timeout=left + 0.05)
        answers = []
        for future, peer in futures.items():
            if future in done and future.exception() is None:
                peer.count(None)
                answers.append(future.result())
                continue
            if future in done:
                error, timed_out = str(future.exception()), str(future.exception()) == "timed out"
            else:
                future.cancel()
                error, timed_out = "timed out", True
            if timed_out:
                error = f"timed out after {left:g}s" + ("" if left == self.timeout else " (the request's time budget)")
            peer.count(error, timed_out)
            log.warning("cluster peer %s left out of %s: %s", peer.name, path, error)
            failed.append(f"{peer.name} ({error})")
        budget.check(f"asking the cluster peers for {path}")
        return answers

    # -- finding ---------------------------------------------------------------------
    def find(self, pattern: str, local: Iterable, failed: list[str], leaves_only: bool = False,
             intervals: bool = True) -> list:
        """Local nodes and the peers' for one pattern, one per path and kind, sorted by path.

        ``intervals=False`` asks peers to leave leaves' intervals out (``intervals=0``, our
        extension, which graphite-web ignores): working them out reads every file's header,
        and only the json and cluster formats show them."""
        params = [("query", pattern)] + ([("leavesOnly", "1")] if leaves_only else [])
        params += [] if intervals else [("intervals", "0")]
        merged: dict[tuple[str, bool], object] = {(n.path, n.is_leaf): n for n in local}
        for answer in self.ask("/metrics/find/", params, failed):
            for info in answer if isinstance(answer, list) else ():
                node = _remote_node(info)
                if node is None or (leaves_only and not node.is_leaf):
                    continue
                known = merged.get((node.path, node.is_leaf))
                if known is None:
                    merged[(node.path, node.is_leaf)] = node
                elif node.is_leaf:
                    spans = tuple(known.intervals if isinstance(known, RemoteNode) else leaf_intervals(known))
                    merged[(node.path, True)] = node._replace(intervals=tuple(sorted(set(spans + node.intervals))))
        return sorted(merged.values(), key=lambda n: (n.path, n.is_leaf))

    def expand(self, queries: list[str], leaves_only: bool, failed: list[str]) -> dict[str, set[str]]:
        params = [("query", q) for q in queries] + [("groupByExpr", "1")]
        params += [("leavesOnly", "1")] if leaves_only else []
        out: dict[str, set[str]] = {}
        for answer in self.ask("/metrics/expand/", params, failed):
            results = answer.get("results") if isinstance(answer, dict) else None
            for query, paths in (results.items() if isinstance(results, dict) else ()):
                if query in queries and isinstance(paths, list):
                    out.setdefault(query, set()).update(p for p in paths if isinstance(p, str))
        return out

    def index(self, failed: list[str]) -> set[str]:
        out: set[str] = set()
        for answer in self.ask("/metrics/index.json", [], failed):
            if isinstance(answer, list):
                out.update(p for p in answer if isinstance(p, str))
        return out

    # -- reading ---------------------------------------------------------------------
    def fetch(self, pattern: str, start: int, end: int, now: int, failed: list[str],
              make: Callable[[str, int, int, int, np.ndarray], Series]) -> list[Series]:
        """Every peer's series for one path expression, unmerged (``merge`` does that)."""
        params = [("target", pattern), ("from", str(start)), ("until", str(end)), ("now", str(now)),
                  ("noCache", "1")]
        out = []
        for answer in self.ask("/render/", params, failed):
            for info in answer if isinstance(answer, list) else ():
                series = _remote_series(info, make)
                if series is not None:
                    out.append(series)
        return out

    def status(self) -> list[dict]:
        return [{"peer": p.name, "requests": p.stats.requests, "failures": p.stats.failures,
                 "timeouts": p.stats.timeouts, "last_error": p.stats.last_error} for p in self.peers]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def merge(known: list[Series], more: list[Series]) -> list[Series]:
    """graphite-web's rule for one name met several times (see the module docstring),
    the result sorted by name."""
    by_name: dict[str, Series] = {}
    for series in [*known, *more]:
        first = by_name.get(series.name)
        if first is None:
            by_name[series.name] = series
            continue
        gaps = np.isnan(first.values)
        if not gaps.any():
            continue
        if len(series) == len(first) and series.step == first.step and series.start == first.start:
            values = np.where(gaps, series.values, first.values)
            values.flags.writeable = False
            by_name[series.name] = first.copy(values=values)
        elif np.isnan(series.values).sum() < gaps.sum():
            by_name[series.name] = series
    return [by_name[name] for name in sorted(by_name)]


def _remote_node(info) -> RemoteNode | None:
    if not isinstance(info, dict):
        return None
    path = info.get("path") or info.get("metric_path")
    if not isinstance(path, str) or not path:
        return None
    is_leaf = bool(info.get("is_leaf") or info.get("isLeaf"))
    spans = []
    for span in info.get("intervals") or () if is_leaf else ():
        if isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, (int, float)) for x in span):
            spans.append((float(span[0]), float(span[1])))
    return RemoteNode(path, "", is_leaf, path.rsplit(".", 1)[-1], tuple(sorted(spans)))


def _remote_series(info, make) -> Series | None:
    """A peer's series, or None (logged) when its fields do not add up."""
    try:
        name, start, end, step = info["name"], int(info["start"]), int(info["end"]), int(info["step"])
        values = np.array(info["values"], dtype=np.float64)  # None becomes NaN
        if values.ndim != 1:
            raise ValueError("values are not a flat list")
    except (KeyError, TypeError, ValueError):
        log.warning("cluster: skipped a malformed series from a peer")
        return None
    if not isinstance(name, str) or step <= 0 or len(values) != max(end - start, 0) // step:
        log.warning("cluster: skipped series %r from a peer: %d values for %s..%s step %s",
                    name, len(values), start, end, step)
        return None
    values.flags.writeable = False
    return make(name, start, end, step, values)


# -- the cluster protocol's find answers (graphite-web's pickle_nodes / msgpack_nodes) ------
def leaf_intervals(node, now: float | None = None) -> list[tuple[float, float]]:
    """When a leaf can hold data: graphite-web's whisper reader says from now minus the
    file's longest retention to its last modification."""
    if isinstance(node, RemoteNode):
        return list(node.intervals)
    try:
        retention = reader.read_header(node.fs_path).max_retention
        modified = os.stat(node.fs_path).st_mtime
    except (OSError, reader.CorruptWhisperFile):
        return []
    start = (time.time() if now is None else now) - retention
    return [(start, max(modified, start))]


def encode_nodes(nodes: Iterable, fmt: str, now: float | None = None, intervals: bool = True) -> tuple[bytes, str]:
    """``/metrics/find?format=pickle|msgpack``: [{path, is_leaf, intervals}], intervals as
    (start, end) pairs, which graphite-web's RemoteFinder turns back into its IntervalSet."""
    infos = []
    for node in nodes:
        info: dict = {"path": node.path, "is_leaf": node.is_leaf}
        if node.is_leaf:
            info["intervals"] = leaf_intervals(node, now) if intervals else []
        infos.append(info)
    if fmt == "msgpack":
        return msgpack.packb(infos, use_bin_type=True), "application/x-msgpack"
    return pickle.dumps(infos, protocol=2), "application/pickle"


def parse_servers(spec: str | Sequence[str] | None) -> list[str]:
    """``--cluster-server`` values: each may hold several, comma-separated."""
    if not spec:
        return []
    items = [spec] if isinstance(spec, str) else list(spec)
    return [s.strip() for item in items for s in item.split(",") if s.strip()]

