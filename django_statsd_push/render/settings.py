"""The render API's settings: one description serving the command line
(``statsd-push render --max-series 500``) and the environment
(``STATSD_PUSH_RENDER_MAX_SERIES=500`` for :mod:`.wsgi` under gunicorn), so both
ways of serving read the same names, defaults, conversions and checks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

ENV_PREFIX = "STATSD_PUSH_RENDER_"
_KINDS: dict[Callable[[str], object], str] = {int: "an integer", float: "a number of seconds", str: "text"}


@dataclass(frozen=True)
class Limits:
    """What one request may use (the evaluator enforces them, the app opens the budget)."""

    max_series: int = 10000  # series read by one request
    max_points: int = 10_000_000  # points read by one request, and points in one response
    time_budget: float = 20.0  # wall-clock seconds for one request (below gunicorn's 30 s worker timeout)
    regex_budget: float = 1.0  # seconds one backtracking regular expression may run (see regex.py)


def _setting(default, help: str, convert: Callable[[str], object] = str, metavar: str | None = None,  # noqa: A002
             repeatable: bool = False):
    """``repeatable``: the flag may be given several times; the values are kept as one
    comma-separated string, which is also how the environment variable spells them."""
    return field(default=default, metadata={"help": help, "convert": convert, "metavar": metavar,
                                            "repeatable": repeatable})


@dataclass(frozen=True)
class RenderSettings:
    whisper_root: str = _setting(None, "directory carbon writes .wsp files into (required)")
    host: str = _setting("127.0.0.1", "address to bind (default %(default)s; not used under a WSGI server)")
    port: int = _setting(8080, "TCP port (default %(default)s; 0 picks a free one; not used under a WSGI server)",
                         int)
    max_series: int = _setting(Limits.max_series, "most series one request may read (default %(default)s)", int)
    max_points: int = _setting(Limits.max_points, "most points one request may read or return "
                               "(default %(default)s)", int)
    time_budget: float = _setting(Limits.time_budget, "wall-clock seconds one request may take; past it the "
                                  "answer is HTTP 503 naming the budget (default %(default)s)", float, "SECONDS")
    regex_budget: float = _setting(Limits.regex_budget, "seconds one regular expression that needs backtracking "
                                   "(look-around, back-references) may run; past it, HTTP 400 "
                                   "(default %(default)s)", float, "SECONDS")
    stop_grace: float = _setting(3.0, "on SIGTERM, seconds the requests still running get to finish before the "
                                 "process exits anyway (default %(default)s; keep it under 5)", float, "SECONDS")
    carbonlink: str | None = _setting(None, "carbon-cache's cache-query port (e.g. 127.0.0.1:7002): merge points "
                                      "not yet written; repeat (or comma-separate) for several caches behind "
                                      "carbon-relay's consistent hashing, with the instance names of the relay's "
                                      "DESTINATIONS", metavar="HOST:PORT[:INSTANCE]", repeatable=True)
    cluster_server: str | None = _setting(None, "a peer render server to federate (graphite-web's CLUSTER_SERVERS);"
                                          " repeat (or comma-separate) for each", metavar="HOST:PORT",
                                          repeatable=True)
    cluster_timeout: float = _setting(3.0, "seconds the peers have to answer one request (at most what is left of "
                                      "the request's --time-budget); a later peer is left out (default "
                                      "%(default)s)", float, "SECONDS")
    tagdb: str | None = _setting(None, "tag database: an SQLite file (default tagdb.sqlite3 beside the Whisper "
                                 "root) or a redis:// URL shared by several render servers",
                                 metavar="FILE|redis://HOST:PORT/DB")
    events_db: str | None = _setting(None, "events' SQLite file (default events.sqlite3 beside the Whisper root)",
                                     metavar="FILE")
    events_retention_days: float = _setting(365.0, "events older than this many days are deleted "
                                            "(default %(default)s)", float, "DAYS")
    static_dir: str | None = _setting(None, "serve / and /static/* from here (default: the bundled dashboard)")
    log_level: str = _setting("INFO", "logging level (default %(default)s)")

    def __post_init__(self) -> None:
        if not self.whisper_root:
            raise ValueError(f"the Whisper root is required ({describe('whisper_root')})")
        for name in ("max_series", "max_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{describe(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("time_budget", "regex_budget", "events_retention_days", "cluster_timeout", "stop_grace"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"{describe(name)} must be a positive number of seconds, got {value}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"{describe('port')} must be 0..65535, got {self.port}")
        self.carbonlink_hosts  # noqa: B018 - validates the value
        self.cluster_servers  # noqa: B018 - validates the value

    @property
    def carbonlink_hosts(self) -> list[tuple[str, int, str | None]]:
        """The carbon-caches to ask for points not yet written, as (host, port, instance)
        (graphite-web's CARBONLINK_HOSTS); empty without ``carbonlink``."""
        hosts = []
        for entry in _items(self.carbonlink):
            parts = entry.split(":")
            if len(parts) not in (2, 3) or not parts[1].isdigit():
                raise ValueError(f"{describe('carbonlink')} must be HOST:PORT[:INSTANCE], comma-separated, "
                                 f"got {entry!r}")
            hosts.append((parts[0] or "127.0.0.1", int(parts[1]), parts[2] if len(parts) == 3 else None))
        return hosts

    @property
    def cluster_servers(self) -> list[str]:
        """The peer render servers to federate (graphite-web's CLUSTER_SERVERS), each
        ``HOST:PORT`` or ``http://HOST:PORT[/PREFIX]``; empty without ``cluster_server``."""
        from urllib.parse import urlsplit

        servers = _items(self.cluster_server)
        for spec in servers:
            parsed = urlsplit(spec if "://" in spec else "http://" + spec)
            try:
                parsed.port  # noqa: B018 - raises on a bad port
            except ValueError:
                raise ValueError(f"{describe('cluster_server')}: cluster server {spec!r} has an invalid port") \
                    from None
            if parsed.scheme != "http" or not parsed.hostname:
                raise ValueError(f"{describe('cluster_server')}: cluster server must be HOST:PORT or "
                                 f"http://HOST:PORT[/PREFIX], got {spec!r}")
        return servers

    @property
    def limits(self) -> Limits:
        return Limits(max_series=self.max_series, max_points=self.max_points, time_budget=self.time_budget,
                      regex_budget=self.regex_budget)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for f in fields(cls):
            parser.add_argument(flag(f.name), dest=f.name, type=f.metadata["convert"], default=f.default,
                                required=f.name == "whisper_root", help=f.metadata["help"],
                                metavar=f.metadata["metavar"],
                                **({"action": "append"} if f.metadata["repeatable"] else {}))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RenderSettings:
        def value(f):
            given = getattr(args, f.name)
            return ",".join(given) if f.metadata["repeatable"] and isinstance(given, list) else given

        return cls(**{f.name: value(f) for f in fields(cls)})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RenderSettings:
        """Settings from ``STATSD_PUSH_RENDER_<FLAG>`` variables (unset or empty: the default)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name), "").strip()
            if not raw:
                continue
            try:
                values[f.name] = f.metadata["convert"](raw)
            except ValueError:
                raise ValueError(f"{env_name(f.name)}={raw!r} is not {_KINDS[f.metadata['convert']]}") from None
        return cls(**values)


def _items(value: str | None) -> list[str]:
    """A repeatable setting's entries (comma-separated, blanks ignored)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def describe(name: str) -> str:
    return f"{flag(name)} / {env_name(name)}"
