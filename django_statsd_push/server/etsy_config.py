"""An unedited etsy statsd ``config.js``, read without running JavaScript.

etsy evaluates its config file as JavaScript. Users moving over keep that file, so
``statsd-push serve --config config.js`` reads the object literal it holds: comments,
single- or double-quoted strings, unquoted keys, trailing commas, an optional pair of
parentheses around it. Anything that would need JavaScript to run (``require('os')...``,
arithmetic, variables) is refused with its line and column rather than guessed at.

Every key is then sorted three ways: it has a meaning here (applied, under the same name
the TOML file uses), it has none (a warning names it and says why), or its value is wrong
(``ConfigError``, from ``Settings.from_mapping``, naming it).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from django_statsd_push.server.config import ConfigError, Settings

log = logging.getLogger("django_statsd_push.server")

# etsy keys with no meaning here -> why (said in the warning).
IGNORED = {
    "debug": "set --log-level DEBUG for more output",
    "dumpMessages": "incoming lines are not logged one by one",
    "title": "the process title is not changed",
    "automaticConfigReload": "the file is not watched; send SIGHUP to reload it",
    "keyFlush": "frequent keys are not logged",
    "log": "logs go to stderr (--log-level)",
    "console": "there is no console backend",
    "repeater": "packets are not repeated to other statsd servers",
    "repeaterProtocol": "packets are not repeated to other statsd servers",
}
# etsy keys applied here, under the same names (docs/daemon.rst lists what each does).
APPLIED = {
    "address", "port", "mgmt_address", "mgmt_port", "flushInterval", "graphiteHost", "graphitePort",
    "graphitePicklePort", "graphiteProtocol", "percentThreshold", "histogram", "deleteIdleStats",
    "deleteCounters", "deleteTimers", "deleteSets", "deleteGauges", "gaugesMaxTTL", "prefixStats",
    "keyNameSanitize", "flush_counts", "calculatedTimerMetrics", "healthStatus", "graphite",
}
GRAPHITE_KEYS = {"legacyNamespace", "globalPrefix", "prefixCounter", "prefixTimer", "prefixGauge", "prefixSet",
                 "globalSuffix"}
GRAPHITE_BACKEND = "./backends/graphite"
SERVERS = {"./servers/udp", "./servers/tcp"}


class _Parser:
    """A recursive-descent reader for one JavaScript object literal (JSON5-like values)."""

    TOKEN = re.compile(r"""
        (?P<space>\s+|//[^\n]*|/\*.*?\*/)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<number>[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity))
      | (?P<name>[A-Za-z_$][\w$]*)
      | (?P<punct>[{}\[\](),:;])
    """, re.VERBOSE | re.DOTALL)
    ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
    WORDS = {"true": True, "false": False, "null": None, "undefined": None}

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if m is None:
                self.fail(pos, f"unexpected {text[pos]!r}")
            if m.lastgroup != "space":
                self.tokens.append((m.lastgroup, m.group(), pos))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, message: str) -> None:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        raise ConfigError(f"{self.source}:{line}:{column}: {message} (only a plain object literal is read; "
                          "statsd-push does not run JavaScript)")

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "end of file", len(self.text))

    def take(self, *expected: str) -> tuple[str, str, int]:
        kind, value, pos = self.peek()
        if expected and value not in expected:
            self.fail(pos, f"expected {' or '.join(repr(e) for e in expected)}, found {value!r}")
        self.i += 1
        return kind, value, pos

    def document(self) -> dict[str, Any]:
        opened = 0
        while self.peek()[1] == "(":
            self.take("(")
            opened += 1
        if self.peek()[1] != "{":
            self.fail(self.peek()[2], f"expected the config object '{{', found {self.peek()[1]!r}")
        result = self.value()
        for _ in range(opened):
            self.take(")")
        while self.peek()[1] == ";":
            self.take(";")
        if self.peek()[0] != "end":
            self.fail(self.peek()[2], f"unexpected {self.peek()[1]!r} after the config object")
        return result

    def value(self) -> Any:
        kind, text, pos = self.take()
        if text == "{":
            return self.entries()
        if text == "[":
            return self.items()
        if kind == "string":
            return self.string(text, pos)
        if kind == "number":
            return self.number(text)
        if kind == "name" and text in self.WORDS:
            return self.WORDS[text]
        if kind == "name" and text == "NaN":
            return float("nan")
        self.fail(pos, f"cannot read {text!r} here")

    def entries(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.peek()[1] != "}":
            kind, key, pos = self.take()
            if kind == "string":
                key = self.string(key, pos)
            elif kind not in ("name", "number"):
                self.fail(pos, f"expected a key, found {key!r}")
            self.take(":")
            out[key] = self.value()
            if self.peek()[1] != "}":
                self.take(",")
        self.take("}")
        return out

    def items(self) -> list[Any]:
        out = []
        while self.peek()[1] != "]":
            out.append(self.value())
            if self.peek()[1] != "]":
                self.take(",")
        self.take("]")
        return out

    def string(self, token: str, pos: int) -> str:
        def unescape(m: re.Match[str]) -> str:
            c = m.group(1)
            if c[0] in "xu":
                return chr(int(c[1:], 16))
            return self.ESCAPES.get(c, c)

        return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", unescape, token[1:-1], flags=re.DOTALL)

    @staticmethod
    def number(text: str) -> int | float:
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-")
        if body == "Infinity":
            return sign * float("inf")
        if body[:2] in ("0x", "0X"):
            return sign * int(body, 16)
        value = float(body)
        return sign * (int(value) if value.is_integer() and re.fullmatch(r"\d+", body) else value)


def parse_js_object(text: str, source: str = "config.js") -> dict[str, Any]:
    """The object literal in ``text`` as Python values; ConfigError (with line:column) otherwise."""
    return _Parser(text, source).document()


def _listen_address(data: dict[str, Any], warn: list[str]) -> dict[str, Any]:
    """etsy's ``servers`` list (one UDP or TCP server each) -> our one address and port."""
    servers = data.get("servers")
    if servers is None:
        return {}
    if not isinstance(servers, list) or not all(isinstance(s, dict) for s in servers) or not servers:
        raise ConfigError("servers must be a list of objects such as { server: './servers/udp', port: 8125 }")
    first = servers[0]
    out = {key: first[key] for key in ("address", "port") if key in first}
    for i, server in enumerate(servers):
        kind = server.get("server", "./servers/udp")
        if kind not in SERVERS:
            warn.append(f"servers[{i}].server {kind!r}: only etsy's udp and tcp servers have a counterpart")
        extra = sorted(set(server) - {"server", "address", "port"})
        if extra:
            warn.append(f"servers[{i}]: {', '.join(extra)} not supported (IPv6 follows from the address)")
        where = (server.get("address", out.get("address")), server.get("port", out.get("port")))
        if i and where != (out.get("address"), out.get("port")):
            warn.append(f"servers[{i}] listens on {where[0]}:{where[1]}: statsd-push takes UDP and TCP on one "
                        f"address and port, those of servers[0]")
    return out


def translate(data: dict[str, Any], source: str = "config.js") -> tuple[dict[str, Any], list[str]]:
    """etsy's config object -> (keys for ``Settings.from_mapping``, warnings naming what is ignored)."""
    warn: list[str] = []
    out: dict[str, Any] = {}
    backends = data.get("backends", [GRAPHITE_BACKEND])
    if not isinstance(backends, list) or not all(isinstance(b, str) for b in backends):
        raise ConfigError("backends must be a list of names such as ['./backends/graphite']")
    for backend in backends:
        if backend != GRAPHITE_BACKEND:
            warn.append(f"backends: {backend!r} has no counterpart here (Prometheus: --prometheus-listen)")
    if GRAPHITE_BACKEND not in backends:
        out["graphite_enabled"] = False
    elif "graphiteHost" not in data:
        warn.append("graphiteHost is not set: etsy would send nothing to Graphite; statsd-push sends to "
                    "127.0.0.1 (use --no-graphite to send nothing)")
    out.update(_listen_address(data, warn))
    unset = [key for key in ("address", "mgmt_address") if key not in data and key not in out]
    if unset:
        warn.append(f"{' and '.join(unset)} not set: etsy listens on 0.0.0.0, statsd-push on 127.0.0.1 "
                    "(set it to be reachable from other machines)")
    for key, value in data.items():
        if key in ("backends", "servers"):
            continue
        if key in ("address", "port") and "servers" in data:
            warn.append(f"{key}: ignored because servers is set, as etsy does")
            continue
        if key == "address_ipv6":
            if value:
                warn.append("address_ipv6: give an IPv6 address (--host ::1) instead")
            continue
        if key in IGNORED:
            warn.append(f"{key}: ignored, {IGNORED[key]}")
        elif key not in APPLIED:
            warn.append(f"{key}: not an etsy statsd 0.9 setting (another backend's?); ignored")
        elif key == "graphite" and isinstance(value, dict):
            for sub in sorted(set(value) - GRAPHITE_KEYS):
                warn.append(f"graphite.{sub}: not a setting of etsy's graphite backend; ignored")
            out[key] = {k: v for k, v in value.items() if k in GRAPHITE_KEYS}
        else:
            out[key] = value
    return out, [f"{source}: {w}" for w in warn]


def settings_from_config_js(path: str | Path) -> Settings:
    """The settings of an etsy ``config.js``; each ignored key is logged as a warning, by name."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    data, warnings = translate(parse_js_object(text, str(path)), str(path))
    for warning in warnings:
        log.warning("%s", warning)
    return Settings.from_mapping(data)
