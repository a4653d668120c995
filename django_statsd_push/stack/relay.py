"""The real carbon-relay (PyPI ``carbon``) with consistent hashing, in front of several caches.

Each metric goes to exactly one cache, the one carbon's ``carbon_ch`` ring names: the
same ring the render API's carbonlink uses (``render/carbonlink.HashRing``) to ask the
right cache for points not yet written. Config and process handling are carbon-cache's
(``stack/carbon_cache.py``): the same files, plus a ``[relay]`` section.
"""

from __future__ import annotations

from pathlib import Path

from django_statsd_push.stack.carbon_cache import CarbonCache

#: the ring label of each cache: the port is not part of a ring node, so a relay's
#: destination (a cache's pickle port) and carbonlink's host (its query port) agree
INSTANCE = "a"


class CarbonRelay(CarbonCache):
    program = "carbon-relay"

    def __init__(self, root: str | Path, destinations: list[tuple[str, int]], *, host: str = "127.0.0.1",
                 line_port: int = 0, pickle_port: int = 0) -> None:
        """``destinations``: each cache's (host, pickle port); the hosts must differ, as
        the ring tells nodes apart by host and instance only."""
        if len({h for h, _ in destinations}) != len(destinations):
            raise ValueError("carbon-relay destinations need one host (loopback address) each")
        super().__init__(root, host=host, line_port=line_port, pickle_port=pickle_port)
        self.destinations = list(destinations)

    def write_config(self) -> Path:
        conf = super().write_config()
        relay = {
            "LINE_RECEIVER_INTERFACE": self.host, "LINE_RECEIVER_PORT": str(self.line_port),
            "PICKLE_RECEIVER_INTERFACE": self.host, "PICKLE_RECEIVER_PORT": str(self.pickle_port),
            "RELAY_METHOD": "consistent-hashing", "REPLICATION_FACTOR": "1",
            "DESTINATIONS": ", ".join(f"{h}:{p}:{INSTANCE}" for h, p in self.destinations),
            # a down cache's points wait in the relay's queue (bounded) until it is back
            "MAX_QUEUE_SIZE": "100000", "USE_FLOW_CONTROL": "True", "QUEUE_LOW_WATERMARK_PCT": "0.8",
        }
        with conf.open("a") as f:
            f.write("\n[relay]\n" + "".join(f"{k} = {v}\n" for k, v in relay.items()))
        return conf

    @property
    def ports(self) -> tuple[int, ...]:
        """A relay has no cache, so no query port."""
        return self.line_port, self.pickle_port

    def stop(self, timeout: float = 15.0, flush: bool = False) -> None:
        """SIGTERM (a relay has no Whisper files, so no write barrier): carbon-relay sends
        what it still queues to the caches before it exits."""
        super().stop(timeout, flush=False)


def carbonlink_hosts(caches: list[tuple[str, int]]) -> str:
    """``--carbonlink`` for caches behind a CarbonRelay, as (host, query port)."""
    return ",".join(f"{h}:{p}:{INSTANCE}" for h, p in caches)
