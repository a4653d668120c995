"""Daemon settings: a TOML file using etsy statsd's own key names, then command-line flags.

etsy's names are kept (``flushInterval``, ``percentThreshold``, ``deleteIdleStats``,
``[graphite] legacyNamespace`` ...), so an etsy ``config.js`` translates line by line;
keys etsy does not have are snake_case. Unknown keys are an error that names them,
because a misspelt ``deleteIdleStats`` would otherwise silently do nothing.

Example::

    port = 8125
    flushInterval = 10000
    percentThreshold = [90, 99.5]
    histogram = [{metric = "request.", bins = [50, 100, 500, "inf"]}]
    graphiteHost = "127.0.0.1"

    [graphite]
    legacyNamespace = false
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from django_statsd_push.server.aggregate import AggregatorConfig
from django_statsd_push.server.graphite import GraphiteConfig, is_safe
from django_statsd_push.server.protocol import Rules


class ConfigError(ValueError):
    pass


RELOAD = "reload"  # SIGHUP applies the new value
RESTART = "restart"  # SIGHUP logs it by name and keeps the running value

_LISTEN = "the sockets are bound at start"
MAX_WORKERS = 256


@dataclass(frozen=True)
class Setting:
    """One top-level key of the config file: its attribute, type, and what SIGHUP does."""

    key: str  # the file's name (etsy's where etsy has it)
    attr: str  # the ``Settings`` attribute
    types: type | tuple[type, ...]
    applies: str  # RELOAD or RESTART
    how: str  # what a reload does with it, or why it cannot (docs/daemon.rst shows it)


# Every setting, once. ``Daemon.reload`` walks this table: it logs each changed key,
# keeps the running value of a RESTART one (so the management ``config`` command shows
# what is in force), and the parts named in ``how`` take the RELOAD ones.
SETTINGS: tuple[Setting, ...] = (
    Setting("address", "host", str, RESTART, _LISTEN),
    Setting("port", "port", int, RESTART, _LISTEN),
    Setting("mgmt_address", "mgmt_host", str, RESTART, _LISTEN),
    Setting("mgmt_port", "mgmt_port", int, RESTART, _LISTEN),
    Setting("workers", "workers", int, RESTART, "the receiver processes are started at start"),
    Setting("flushInterval", "flush_interval_ms", (int, float), RELOAD, "from the next flush on"),
    Setting("graphiteHost", "graphite_host", str, RELOAD, "the Carbon client reconnects; buffered points follow"),
    Setting("graphitePort", "graphite_port", int, RELOAD, "the Carbon client reconnects; buffered points follow"),
    Setting("graphitePicklePort", "graphite_pickle_port", int, RELOAD,
            "the Carbon client reconnects; buffered points follow"),
    Setting("graphiteProtocol", "graphite_protocol", str, RELOAD, "the Carbon client reconnects"),
    Setting("percentThreshold", "percent_threshold", (list, int, float), RELOAD, "the next flush's output"),
    Setting("histogram", "histogram", list, RELOAD, "the next flush's output"),
    Setting("deleteIdleStats", "delete_idle_stats", bool, RELOAD, "the next flush"),
    Setting("deleteCounters", "delete_counters", bool, RELOAD, "the next flush"),
    Setting("deleteTimers", "delete_timers", bool, RELOAD, "the next flush"),
    Setting("deleteSets", "delete_sets", bool, RELOAD, "the next flush"),
    Setting("deleteGauges", "delete_gauges", bool, RELOAD, "the next flush"),
    Setting("gaugesMaxTTL", "gauges_max_ttl", int, RELOAD, "gauges updated from now on"),
    Setting("prefixStats", "prefix_stats", str, RESTART, "the daemon's own series would change names mid-run"),
    Setting("keyNameSanitize", "key_name_sanitize", bool, RELOAD, "the next flush's output"),
    Setting("flush_counts", "flush_counts", bool, RELOAD, "the next flush's output"),
    Setting("calculatedTimerMetrics", "calculated_timer_metrics", list, RELOAD, "the next flush's output"),
    Setting("healthStatus", "health_status", str, RELOAD, "the ``health`` answer, when the value changed"),
    Setting("graphite", "graphite", dict, RELOAD, "the next flush's output (the ``[graphite]`` table)"),
    Setting("graphite_enabled", "graphite_enabled", bool, RESTART, "the sinks are built at start"),
    Setting("udp_receive_buffer", "udp_receive_buffer", int, RELOAD, "asked of the kernel again (SO_RCVBUF)"),
    Setting("max_packet_size", "max_packet_size", int, RELOAD, "the listeners check the next datagram/line"),
    Setting("unix_dgram_path", "unix_dgram_path", str, RESTART, _LISTEN),
    Setting("unix_stream_path", "unix_stream_path", str, RESTART, _LISTEN),
    Setting("unix_socket_mode", "unix_socket_mode", int, RESTART, "set on the socket files at start"),
    Setting("unix_socket_group", "unix_socket_group", str, RESTART, "set on the socket files at start"),
    Setting("max_series", "max_series", int, RELOAD, "new series from now on"),
    Setting("max_name_length", "max_name_length", int, RELOAD, "new series from now on"),
    Setting("carbon_buffer_lines", "carbon_buffer_lines", int, RELOAD,
            "the Carbon client's bound (oldest points dropped if over it)"),
    Setting("carbon_reconnect_max", "carbon_reconnect_max", (int, float), RELOAD, "the Carbon client's next retry"),
    Setting("prometheus_listen", "prometheus_listen", str, RESTART, "the sinks are built at start"),
    Setting("events_url", "events_url", str, RESTART, "the sinks are built at start"),
    Setting("mapping", "mapping", str, RELOAD, "the Prometheus sink reads the file again (on every SIGHUP)"),
    Setting("log_level", "log_level", str, RELOAD, "the root logger's level"),
    Setting("exporter_rules", "exporter_rules", bool, RELOAD, "lines read from now on (statsd_exporter's rules)"),
    Setting("origin_tags", "origin_tags", bool, RELOAD, "lines read from now on"),
)
_TOP: dict[str, Setting] = {s.key: s for s in SETTINGS}


def settings_table_rst() -> str:
    """The table of ``SETTINGS`` as docs/daemon.rst shows it (a test keeps them equal)."""
    rows = [("Setting", "On SIGHUP", "How")]
    rows += [(f"``{s.key}``", "applied" if s.applies == RELOAD else "needs a restart", s.how) for s in SETTINGS]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "  ".join("=" * w for w in widths)

    def line(row: tuple[str, str, str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    return "\n".join([rule, line(rows[0]), rule, *map(line, rows[1:]), rule]) + "\n"


_GRAPHITE: dict[str, str] = {
    "legacyNamespace": "legacy_namespace",
    "globalPrefix": "global_prefix",
    "prefixCounter": "prefix_counter",
    "prefixTimer": "prefix_timer",
    "prefixGauge": "prefix_gauge",
    "prefixSet": "prefix_set",
    "globalSuffix": "global_suffix",
}


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8125
    mgmt_host: str = "127.0.0.1"
    mgmt_port: int = 8126
    workers: int = 1  # UDP receivers; > 1: that many processes sharing the port (server/workers.py)
    flush_interval_ms: float = 10000
    graphite_enabled: bool = True
    graphite_host: str = "127.0.0.1"
    graphite_port: int = 2003
    graphite_pickle_port: int = 2004
    graphite_protocol: str = "text"  # or "pickle"
    percent_threshold: list[float] = field(default_factory=lambda: [90])
    histogram: list[dict] = field(default_factory=list)
    delete_idle_stats: bool = False
    delete_counters: bool | None = None
    delete_timers: bool | None = None
    delete_sets: bool | None = None
    delete_gauges: bool | None = None
    gauges_max_ttl: int = 1
    prefix_stats: str = "statsd"
    key_name_sanitize: bool = True
    flush_counts: bool = True
    calculated_timer_metrics: list[str] | None = None
    health_status: str = "up"
    graphite: dict[str, Any] = field(default_factory=dict)  # etsy's [graphite] table
    udp_receive_buffer: int = 8 * 1024 * 1024
    max_packet_size: int = 65535
    unix_dgram_path: str | None = None  # DogStatsD's datagram mode (server/unix_listener.py)
    unix_stream_path: str | None = None  # lines: newline-framed or length-prefixed
    unix_socket_mode: int = 0o660
    unix_socket_group: str | None = None
    max_series: int = 1_000_000
    max_name_length: int = 1024
    carbon_buffer_lines: int = 1_000_000
    carbon_reconnect_max: float = 30.0
    prometheus_listen: str | None = None
    mapping: str | None = None
    events_url: str | None = None  # graphite-web's /events/ for DogStatsD events (server/events_sink.py)
    log_level: str = "INFO"
    exporter_rules: bool = False  # parse as statsd_exporter (the bridge), not as etsy
    origin_tags: bool = False  # keep DogStatsD container id / cardinality as tags

    @classmethod
    def from_mapping(cls, data: dict[str, Any], base: Settings | None = None) -> Settings:
        """Settings from etsy-named keys (a parsed TOML file or an etsy config dict)."""
        settings = cls(**{f.name: getattr(base, f.name) for f in fields(cls)}) if base else cls()
        unknown = []
        for key, value in data.items():
            if key == "graphite":
                if not isinstance(value, dict):
                    raise ConfigError("[graphite] must be a table")
                bad = sorted(set(value) - set(_GRAPHITE))
                unknown += [f"graphite.{k}" for k in bad]
                settings.graphite = {**settings.graphite, **value}
                continue
            if key not in _TOP:
                unknown.append(key)
                continue
            setting = _TOP[key]
            attr, types = setting.attr, setting.types
            allowed = types if isinstance(types, tuple) else (types,)
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                names = " or ".join(t.__name__ for t in allowed)
                raise ConfigError(f"{key} must be {names}, got {type(value).__name__} {value!r}")
            setattr(settings, attr, value)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings.validate()
        return settings

    @classmethod
    def from_file(cls, path: str | Path, base: Settings | None = None) -> Settings:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        return cls.from_mapping(data, base)

    def validate(self) -> None:
        if isinstance(self.percent_threshold, (int, float)):
            self.percent_threshold = [self.percent_threshold]
        for pct in self.percent_threshold:
            if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not -100 <= pct <= 100 or pct == 0:
                raise ConfigError(f"percentThreshold: {pct!r} is not a number in [-100, 100] other than 0")
        for entry in self.histogram:
            if not isinstance(entry, dict) or set(entry) != {"metric", "bins"} or not isinstance(entry["bins"], list):
                raise ConfigError("histogram entries look like {metric = \"name part\", bins = [10, 100, \"inf\"]}")
            for b in entry["bins"]:
                if b != "inf" and (isinstance(b, bool) or not isinstance(b, (int, float))):
                    raise ConfigError(f"histogram bins must be numbers or \"inf\", got {b!r}")
        if isinstance(self.workers, bool) or not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be a whole number from 1 to {MAX_WORKERS}, got {self.workers!r}")
        if self.flush_interval_ms <= 0:
            raise ConfigError("flushInterval must be > 0 (milliseconds)")
        if self.graphite_protocol not in ("text", "pickle"):
            raise ConfigError('graphiteProtocol must be "text" or "pickle"')
        if not 0 < self.max_packet_size <= 65535:
            raise ConfigError("max_packet_size must be between 1 and 65535")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise ConfigError(f"log_level {self.log_level!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
        if not 0 <= self.unix_socket_mode <= 0o777:
            raise ConfigError(f"unix_socket_mode {self.unix_socket_mode:o} is not a file mode (0 to 0o777)")
        paths = [p for p in (self.unix_dgram_path, self.unix_stream_path) if p]
        if len(set(paths)) < len(paths):
            raise ConfigError("unix_dgram_path and unix_stream_path must be two different files")
        if self.events_url is not None and not self.events_url.startswith(("http://", "https://")):
            raise ConfigError(f"events_url {self.events_url!r} must be an http:// or https:// URL")
        if self.gauges_max_ttl < 1:
            self.gauges_max_ttl = 1  # etsy forces it to 1 when it is not a positive integer
        if not is_safe(self.prefix_stats) or ";" in self.prefix_stats:
            raise ConfigError(f"prefixStats {self.prefix_stats!r} is not a valid Graphite path")
        try:
            self.graphite_config()
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc

    # --- the parts' configs ------------------------------------------------------
    def aggregator_config(self) -> AggregatorConfig:
        return AggregatorConfig(
            flush_interval=self.flush_interval_ms / 1000,
            prefix_stats=self.prefix_stats,
            delete_idle_stats=self.delete_idle_stats,
            delete_counters=self.delete_counters,
            delete_timers=self.delete_timers,
            delete_sets=self.delete_sets,
            delete_gauges=self.delete_gauges,
            gauges_max_ttl=self.gauges_max_ttl,
            max_series=self.max_series,
            max_name_length=self.max_name_length,
            rules=Rules(exporter=self.exporter_rules, origin_tags=self.origin_tags),
        )

    def carbon_options(self) -> dict[str, Any]:
        """The ``CarbonClient`` settings (for building it, and for ``configure`` on SIGHUP)."""
        pickle = self.graphite_protocol == "pickle"
        return {"host": self.graphite_host, "port": self.graphite_pickle_port if pickle else self.graphite_port,
                "protocol": self.graphite_protocol, "max_lines": self.carbon_buffer_lines,
                "reconnect_max": self.carbon_reconnect_max}

    def graphite_config(self) -> GraphiteConfig:
        options = {_GRAPHITE[k]: v for k, v in self.graphite.items()}
        return GraphiteConfig(
            **options,
            flush_counts=self.flush_counts,
            key_name_sanitize=self.key_name_sanitize,
            percent_threshold=list(self.percent_threshold),
            histogram=[(h["metric"], list(h["bins"])) for h in self.histogram],
            calculated_timer_metrics=self.calculated_timer_metrics,
        )
