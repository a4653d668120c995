"""Points still in carbon-cache's memory (its "cache query" port), merged into reads.

graphite-web asks carbon for each series' cached points (CARBONLINK_HOSTS) so a graph
shows data carbon has received but not yet written; so do we, with one
``cache-query-bulk`` request per path expression instead of one request per series.
Optional (``--carbonlink HOST:PORT``): without it, points appear once carbon writes them.
Carbon's answer is a pickle; it is loaded with an unpickler that refuses every class,
so only plain containers, numbers and strings can come out of it.
"""

from __future__ import annotations

import io
import logging
import pickle
import socket
import struct

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
