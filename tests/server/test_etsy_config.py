"""An unedited etsy ``config.js`` works with ``statsd-push serve --config``.

The parser is checked against etsy statsd itself: etsy evaluates the same file and its
management ``config`` command prints what it read, which must equal what we read.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import socket
import string
from pathlib import Path

import pytest

from django_statsd_push.server.config import ConfigError
from django_statsd_push.server.etsy_config import parse_js_object, settings_from_config_js
from django_statsd_push.server.timer_stats import js_str

from .etsy import CarbonCapture, EtsyStatsd
from .helpers import Serve, send_udp

# Everything etsy's own config files use: comments (with braces and quotes inside),
# both quotes, unquoted and quoted keys, comma-first and trailing commas, parentheses.
VARIED = string.Template("""\
/* An etsy config as people keep them. { "not": 'a key' } */
({
  port: $port              // UDP, as etsy's default server
, mgmt_port: $mgmt_port
, address: "127.0.0.1", mgmt_address: '127.0.0.1'
, "flushInterval": 1000
, percentThreshold: [ 90, 99.5, -10, ]
, histogram: [ { metric: 'api.', bins: [ 10, 0x20, 1e2, 'inf' ] } ]
, deleteIdleStats: false, gaugesMaxTTL: 1  // etsy adds it when missing
, 'prefixStats': "statsd"
, graphite: { legacyNamespace: false, globalPrefix: "app", globalSuffix: 'a\\u0062c', }
, debug: true
, dumpMessages: false
, automaticConfigReload: true
, title: 'it\\'s "statsd"'
, backends: [ "./backends/graphite", "./backends/console" ]
, graphiteHost: "127.0.0.1"
, graphitePort: $carbon_port
, librato: { email: "x@example.com" }   // another backend's settings
,})
""")


def etsy_string(value) -> str:
    """JavaScript's String(value), as etsy's ``config`` command writes each value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return js_str(value)
    if isinstance(value, list):
        return ",".join("" if v is None else etsy_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return value


def as_etsy_prints_it(config: dict) -> str:
    """etsy's helpers.writeConfig: ``key: value``, one level of ``key > sub: value``."""
    out = ["\n"]
    for key, value in config.items():
        if isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            out += [f"{key} > {sub}: {etsy_string(v)}\n" for sub, v in items]
        else:
            out.append(f"{key}: {etsy_string(value)}\n")
    return "".join(out)


def config_reply(port: int) -> str:
    """etsy's ``config`` answer has no END line: ask for ``health`` once it has begun, and
    read up to that answer (both go out on one connection, in order)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"config\n")
        data = s.recv(1 << 20)
        s.sendall(b"health\n")
        while not data.endswith(b"health: up\n"):
            data += s.recv(1 << 20)
    return data.decode()[:-len("health: up\n")]


def test_we_read_what_etsy_reads(etsy_js):
    with CarbonCapture() as carbon:
        template = string.Template(VARIED.safe_substitute(carbon_port=carbon.port))
        with EtsyStatsd(etsy_js, template) as etsy:
            text = template.substitute(port=etsy.udp_port, mgmt_port=etsy.mgmt_port)
            printed = config_reply(etsy.mgmt_port)
    assert as_etsy_prints_it(parse_js_object(text)) == printed


def test_etsy_example_config_is_accepted_as_it_is(etsy_js, caplog):
    example = Path(etsy_js).parent / "exampleConfig.js"
    with caplog.at_level(logging.WARNING, "django_statsd_push.server"):
        settings = settings_from_config_js(example)
    assert (settings.graphite_host, settings.graphite_port, settings.port) == ("graphite.example.com", 2003, 8125)
    assert settings.graphite_enabled
    assert [r.getMessage() for r in caplog.records] == [
        f"{example}: address and mgmt_address not set: etsy listens on 0.0.0.0, statsd-push on 127.0.0.1 "
        "(set it to be reachable from other machines)"]


def test_serve_runs_on_a_varied_config_js_and_names_what_it_ignores(tmp_path):
    with CarbonCapture() as carbon:
        config = tmp_path / "config.js"
        # port 0: the daemon binds ports of its own and logs them (a port probed free here
        # could be taken before it binds it)
        config.write_text(VARIED.substitute(port=0, mgmt_port=0, carbon_port=carbon.port))
        with Serve("--config", str(config), timeout=60) as daemon:
            send_udp(daemon.port, b"api.t:15|ms")
            # legacyNamespace false, globalPrefix "app", globalSuffix "abc", bins 10, 32, 100, inf
            carbon.lines_until(lambda line: line.startswith("app.timers.api.t.histogram.bin_32.abc 1 "))
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(30) == 0
    out = daemon.log()
    for ignored in ("debug", "dumpMessages", "automaticConfigReload", "title", "'./backends/console'", "librato"):
        assert re.search(rf"{re.escape(str(config))}: (backends: )?{re.escape(ignored)}", out), (ignored, out)
    assert "unknown setting" not in out


@pytest.mark.parametrize("text,expected", [
    ("{a:1}", {"a": 1}),
    ("(({ 'a': \"x\\\"y\", b: 'it\\'s', }));", {"a": 'x"y', "b": "it's"}),
    ("{a: [1, -2.5, +3, .5, 1e3, 0xff, Infinity, -Infinity], b: [[]], c: {}, d: null, e: undefined}",
     {"a": [1, -2.5, 3, 0.5, 1000.0, 255, math.inf, -math.inf], "b": [[]], "c": {}, "d": None, "e": None}),
    ("// only a comment line\n{ a: true, /* inline */ b: false }", {"a": True, "b": False}),
    ("{ 'a.b': '\\u00e9\\x41\\n' }", {"a.b": "\u00e9A\n"}),
])
def test_object_literals(text, expected):
    assert parse_js_object(text) == expected


@pytest.mark.parametrize("text,message", [
    ("{ graphiteHost: require('os').hostname() }", r"config\.js:1:30: unexpected '\.'"),
    ("{ port: 8125 + 1 }", r"config\.js:1:14: unexpected '\+'"),
    ("{\n  port: 8125\n  mgmt_port: 8126 }", r"config\.js:3:3: expected ','"),
    ("{ a: 'open }", r"config\.js:1:6: unexpected \"'\""),
    ("config = { a: 1 }", r"config\.js:1:8: unexpected '='"),
    ("[ 1 ]", r"config\.js:1:1: expected the config object"),
    ("{ a: 1 } { b: 2 }", r"config\.js:1:10: unexpected '\{' after the config object"),
])
def test_javascript_that_needs_running_is_refused_with_its_place(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_js_object(text)


@pytest.mark.parametrize("text,message", [
    ("{ port: '8125' }", "port must be int, got str '8125'"),
    ("{ percentThreshold: [ 90, 101 ] }", "percentThreshold: 101"),
    ("{ backends: './backends/graphite' }", "backends must be a list"),
    ("{ servers: [ 8125 ] }", "servers must be a list of objects"),
])
def test_wrong_values_are_refused_by_name(tmp_path, text, message):
    path = tmp_path / "config.js"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_config_js(path)


def test_servers_and_backends_map_to_ours(tmp_path, caplog):
    path = tmp_path / "config.js"
    path.write_text("""{
      servers: [ { server: './servers/udp', address: '127.0.0.2', port: 8135 },
                 { server: './servers/tcp', address: '127.0.0.2', port: 8136 } ],
      port: 9999,
      mgmt_address: '127.0.0.1',
      backends: [ './backends/console' ]
    }""")
    with caplog.at_level(logging.WARNING, "django_statsd_push.server"):
        settings = settings_from_config_js(path)
    assert (settings.host, settings.port, settings.graphite_enabled) == ("127.0.0.2", 8135, False)
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "servers[1] listens on 127.0.0.2:8136" in warnings
    assert "port: ignored because servers is set" in warnings
    assert "backends: './backends/console' has no counterpart" in warnings


def test_serve_reads_js_as_etsy_config_and_anything_else_as_toml(tmp_path):
    """By the name's ending, at start and on every SIGHUP (both go through settings_from)."""
    from django_statsd_push.server.cli import parser, settings_from

    toml, js = tmp_path / "statsd.toml", tmp_path / "config.js"
    toml.write_text("flushInterval = 2000\n")
    js.write_text("{ flushInterval: 3000, }  // etsy style\n")
    assert settings_from(parser().parse_args(["--config", str(toml)])).flush_interval_ms == 2000
    assert settings_from(parser().parse_args(["--config", str(js), "--port", "9"])).flush_interval_ms == 3000
    with pytest.raises(ConfigError, match="cannot read config"):
        settings_from(parser().parse_args(["--config", str(tmp_path / "config.toml.js")]))
