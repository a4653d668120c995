"""Points still in carbon-cache's memory (its "cache query" port), merged into reads.

graphite-web asks carbon for each series' cached points (CARBONLINK_HOSTS) so a graph
shows data carbon has received but not yet written; so do we, with one
``cache-query-bulk`` request per path expression instead of one request per series.
Optional (``--carbonlink HOST:PORT[:INSTANCE]``, several for several caches): without it,
points appear once carbon writes them. With several caches each metric is asked of the one
cache carbon-relay's consistent hashing sent it to (:class:`HashRing`), as graphite-web's
``CARBONLINK_HOSTS`` does.
Carbon's answer is a pickle; it is loaded with an unpickler that refuses every class,
so only plain containers, numbers and strings can come out of it.
"""

from __future__ import annotations

import bisect
import io
import logging
import pickle
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from hashlib import md5

import numpy as np

log = logging.getLogger(__name__)
MAX_RESPONSE = 256 << 20


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"carbonlink: refusing to load {module}.{name}")


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("carbon closed the cache-query connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class CarbonLink:
    def __init__(self, host: str, port: int, timeout: float = 1.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def query(self, metrics: list[str]) -> dict[str, list[tuple[int, float]]]:
        """Cached points by metric; {} (logged) when carbon cannot be asked."""
        if not metrics:
            return {}
        request = pickle.dumps({"type": "cache-query-bulk", "metrics": list(metrics)}, protocol=2)
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(struct.pack("!L", len(request)) + request)
                size = struct.unpack("!L", _recv_exactly(sock, 4))[0]
                if size > MAX_RESPONSE:
                    raise ValueError(f"cache-query answer of {size} bytes")
                body = _recv_exactly(sock, size)
            result = _PlainUnpickler(io.BytesIO(body)).load()
            points = result.get("datapointsByMetric", {}) if isinstance(result, dict) else {}
            return points if isinstance(points, dict) else {}
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, struct.error) as exc:
            log.warning("carbonlink %s:%s: %s", self.host, self.port, exc)
            return {}


class HashRing:
    """carbon's ``carbon_ch`` consistent-hash ring, as carbon-relay (RELAY_METHOD =
    consistent-hashing) and graphite-web's carbonlink build it: 100 replicas per
    ``(server, instance)`` node, each placed at the first 16 bits of the MD5 of
    ``"('server', 'instance'):i"``, a taken position moving up by one; a metric belongs
    to the first node at or after its own position. The port is not part of a node, so
    a relay's destinations (pickle ports) and the caches' query ports land alike."""

    REPLICAS = 100

    def __init__(self, nodes: list[tuple[str, str | None]]) -> None:
        if not nodes:
            raise ValueError("a hash ring needs at least one node")
        self._positions: list[int] = []
        self._nodes: list[tuple[str, str | None]] = []
        taken: set[int] = set()
        for node in nodes:
            for i in range(self.REPLICAS):
                position = self.position(f"{node!r}:{i}")
                while position in taken:
                    position += 1
                taken.add(position)
                at = bisect.bisect_left(self._positions, position)
                self._positions.insert(at, position)
                self._nodes.insert(at, node)

    @staticmethod
    def position(key: str) -> int:
        return int(md5(key.encode("utf-8")).hexdigest()[:4], 16)

    def node(self, metric: str) -> tuple[str, str | None]:
        at = bisect.bisect_left(self._positions, self.position(metric))
        return self._nodes[at % len(self._nodes)]


def parse_hosts(spec: str) -> list[tuple[str, int, str | None]]:
    """``HOST:PORT[:INSTANCE]`` entries, comma-separated (graphite-web's CARBONLINK_HOSTS)."""
    hosts = []
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ValueError(f"carbonlink host must be HOST:PORT[:INSTANCE], got {entry!r}")
        hosts.append((parts[0] or "127.0.0.1", int(parts[1]), parts[2] if len(parts) == 3 else None))
    if not hosts:
        raise ValueError("no carbonlink host given")
    return hosts


class CarbonLinkPool:
    """Several carbon-caches behind one ``query``: each metric goes to the cache the ring
    names, the caches are asked in parallel, and a cache that cannot answer costs only its
    own metrics' unwritten points (logged), never the read."""

    def __init__(self, hosts: list[tuple[str, int, str | None]], timeout: float = 1.0) -> None:
        self.links = {(host, instance): CarbonLink(host, port, timeout) for host, port, instance in hosts}
        self.ring = HashRing(list(self.links))
        self._pool = ThreadPoolExecutor(max_workers=len(self.links), thread_name_prefix="carbonlink") \
            if len(self.links) > 1 else None

    def query(self, metrics: list[str]) -> dict[str, list[tuple[int, float]]]:
        if self._pool is None:
            return next(iter(self.links.values())).query(metrics)
        by_node: dict[tuple[str, str | None], list[str]] = {}
        for metric in metrics:
            by_node.setdefault(self.ring.node(metric), []).append(metric)
        out: dict[str, list[tuple[int, float]]] = {}
        for answer in self._pool.map(lambda item: self.links[item[0]].query(item[1]), by_node.items()):
            out.update(answer)
        return out


_CONSOLIDATE = {
    "sum": np.sum, "max": np.max, "min": np.min, "last": lambda v: v[-1],
    "average": np.mean,
}


def merge(values: np.ndarray, start: int, step: int, cached, aggregation: str, raw_step: int) -> np.ndarray:
    """graphite-web's merge_with_cache: keep the last point per raw interval, consolidate to
    the read step with the file's aggregation method if it differs, overwrite the slots."""
    latest: dict[int, float] = {}
    for point in cached:
        try:
            timestamp, value = int(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError):
            continue
        latest[timestamp - timestamp % raw_step if raw_step > 1 else timestamp] = value
    if not latest:
        return values
    if step != raw_step:
        buckets: dict[int, list[float]] = {}
        for timestamp, value in latest.items():
            buckets.setdefault(timestamp - timestamp % step, []).append(value)
        if aggregation == "avg_zero":
            per = {t: sum(v) / len(v) for t, v in buckets.items()}
        else:
            func = _CONSOLIDATE.get(aggregation, np.mean)
            per = {t: float(func(np.asarray(v))) for t, v in buckets.items()}
    else:
        per = latest
    out = values.copy()
    for timestamp, value in per.items():
        i = (timestamp - start) // step
        if 0 <= i < len(out):
            out[i] = value
    return out
