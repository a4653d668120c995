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


def _setting(default, help: str, convert: Callable[[str], object] = str, metavar: str | None = None):  # noqa: A002
    return field(default=default, metadata={"help": help, "convert": convert, "metavar": metavar})


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
    carbonlink: str | None = _setting(None, "carbon-cache's cache-query port (e.g. 127.0.0.1:7002): merge points "
                                      "not yet written", metavar="HOST:PORT")
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
        for name in ("time_budget", "regex_budget", "events_retention_days"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"{describe(name)} must be a positive number of seconds, got {value}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"{describe('port')} must be 0..65535, got {self.port}")
        self.carbonlink_address  # noqa: B018 - validates the value

    @property
    def carbonlink_address(self) -> tuple[str, int] | None:
        if not self.carbonlink:
            return None
        host, sep, port = self.carbonlink.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"{describe('carbonlink')} must be HOST:PORT, got {self.carbonlink!r}")
        return host or "127.0.0.1", int(port)

    @property
    def limits(self) -> Limits:
        return Limits(max_series=self.max_series, max_points=self.max_points, time_budget=self.time_budget,
                      regex_budget=self.regex_budget)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for f in fields(cls):
            parser.add_argument(flag(f.name), dest=f.name, type=f.metadata["convert"], default=f.default,
                                required=f.name == "whisper_root", help=f.metadata["help"],
                                metavar=f.metadata["metavar"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RenderSettings:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

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


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def describe(name: str) -> str:
    return f"{flag(name)} / {env_name(name)}"
