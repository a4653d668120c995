"""SIGHUP re-reads the mapping file: in the store, and in real ``bridge``/``serve`` processes.

A new file maps the samples that come after it and leaves the series already exported
as they were; a bad file is logged with its line, counted, and the running mapping stays.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from django_statsd_push.bridge.mapping import MappingError, parse_mapping
from tests.bridge.test_standalone import Cli, bridge_command, wait_for
from tests.bridge.test_store import Bridge

OLD = "mappings:\n  - match: req.*\n    name: old_name\n    labels: {view: $1}\n"
NEW = "mappings:\n  - match: req.*\n    name: new_name\n    labels: {page: $1}\n"
BAD = "mappings:\n  - match: req.*\n    labels: {view: $1}\n"  # line 2: no name


def test_store_maps_new_samples_by_the_new_rules_and_keeps_old_series() -> None:
    bridge = Bridge(OLD)
    bridge.feed("req.home:1|c")
    assert bridge.value("old_name_total", view="home") == 1.0
    bridge.store.replace_mapper(lambda: parse_mapping(NEW))
    bridge.feed("req.home:2|c")  # the cached route of req.home went with the old mapping
    assert bridge.value("new_name_total", page="home") == 2.0
    assert bridge.value("old_name_total", view="home") == 1.0
    assert bridge.own("mapping_reloads", outcome="success") == 1.0
    assert bridge.own("mapping_reloads", outcome="failure") == 0.0

    with pytest.raises(MappingError, match=r"^m\.yml:2: .*sets no metric 'name'"):
        bridge.store.replace_mapper(lambda: parse_mapping(BAD, "m.yml"))
    bridge.feed("req.home:3|c")
    assert bridge.value("new_name_total", page="home") == 5.0
    assert bridge.own("mapping_reloads", outcome="failure") == 1.0
    assert bridge.own("mapping_rules") == 1.0


def serve_command(mapping: str | Path) -> Callable[[int, str], list[str]]:
    return lambda statsd_port, listen: ["serve", "--no-graphite", "--port", str(statsd_port), "--mgmt-port", "0",
                                        "--flush-interval", "50", "--prometheus-listen", listen,
                                        "--mapping", str(mapping)]


@pytest.mark.parametrize("command", [bridge_command, serve_command])
def test_sighup_reloads_the_mapping_file(tmp_path, command) -> None:
    mapping = tmp_path / "m.yml"
    mapping.write_text(OLD)
    reloads = "statsd_push_bridge_mapping_reloads_total"
    with Cli(command(mapping)) as cli:
        assert cli.metric(reloads, outcome="success") == 0.0
        cli.send(b"req.home:1|c\n")
        wait_for(lambda: cli.metric("old_name_total", view="home") == 1.0)

        mapping.write_text(NEW)
        cli.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: cli.metric(reloads, outcome="success") == 1.0)
        cli.send(b"req.home:2|c\n")
        wait_for(lambda: cli.metric("new_name_total", page="home") == 2.0)
        assert cli.metric("old_name_total", view="home") == 1.0  # exported series keep their value

        mapping.write_text(BAD)
        cli.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: cli.metric(reloads, outcome="failure") == 1.0)
        cli.send(b"req.home:3|c\n")
        wait_for(lambda: cli.metric("new_name_total", page="home") == 5.0)  # the running mapping stayed
        assert cli.metric(reloads, outcome="success") == 1.0
        assert cli.metric("statsd_push_bridge_mapping_rules") == 1.0
    assert cli.proc.returncode == 0, cli.log()
    assert f"reload failed, keeping the running configuration: {mapping}:2:" in cli.log()
    assert "sets no metric 'name'" in cli.log()
