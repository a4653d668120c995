"""Redis as the tag database's path store, for several render servers sharing one index.

One Redis set holds the canonical paths and one counter moves on every write, so
each server's in-memory index (``tagdb.TagDB``) notices other servers' writes with
a single ``GET`` per query. Needs the ``redis`` package.
"""

from __future__ import annotations

PATHS_KEY = "statsd-push:tagdb:series"
VERSION_KEY = "statsd-push:tagdb:version"


class RedisStore:
    def __init__(self, url: str, prefix: str = "") -> None:
        try:
            import redis
        except ImportError:
            raise ValueError("a redis:// tag database needs the 'redis' package (pip install redis)") from None
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.paths_key, self.version_key = prefix + PATHS_KEY, prefix + VERSION_KEY
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise ValueError(f"cannot reach the tag database at {url}: {exc}") from None

    def add(self, paths: list[str]) -> None:
        with self.client.pipeline() as pipe:  # MULTI/EXEC: the version moves with the data
            for start in range(0, len(paths), 1000):
                pipe.sadd(self.paths_key, *paths[start:start + 1000])
            pipe.incr(self.version_key)
            pipe.execute()

    def remove(self, paths: list[str]) -> None:
        with self.client.pipeline() as pipe:
            if paths:
                pipe.srem(self.paths_key, *paths)
            pipe.incr(self.version_key)
            pipe.execute()

    def paths(self) -> list[str]:
        return [p.decode("utf-8") for p in self.client.sscan_iter(self.paths_key, count=1000)]

    def count(self) -> int:
        return int(self.client.scard(self.paths_key))

    def version(self) -> tuple:
        return (int(self.client.get(self.version_key) or 0),)

    def close(self) -> None:
        self.client.close()
