"""``counters``, ``timers`` and ``gauges`` answer with etsy's exact text (Node's
``util.inspect``), so scripts that parse etsy's management port keep working.

Checked two ways: ``js_inspect.inspect`` against ``node``'s own util.inspect on a few
hundred seeded tables, and our daemon's answers against a running etsy statsd 0.9 fed
the same datagrams.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time

from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.js_inspect import inspect

from ..conftest import require_program
from .etsy import EtsyStatsd
from .helpers import mgmt, send_udp, wait_received

NODE_INSPECT = ("const util = require('util');"
                "for (const value of JSON.parse(require('fs').readFileSync(0, 'utf8')))"
                "  process.stdout.write(util.inspect(value) + '\\u0000');")


def seeded_tables(seed: int = 5) -> list:
    """etsy's shapes: objects of numbers, objects of number arrays (0 to 150 items), with
    identifier and dotted keys, quotes in keys, and numbers of every size Node writes."""
    rng = random.Random(seed)

    def number():
        return rng.choice([rng.randint(0, 9), rng.randint(0, 10**6), round(rng.uniform(-999, 999), rng.randint(0, 4)),
                           rng.uniform(0, 1e-6), 1e21, 1 / 3])

    def key(i):
        return rng.choice(["g", "x_1", "statsd.metrics_received", "api.latency", "a-b", "1st", "it's",
                           "k" * rng.randint(1, 45)]) + str(i)

    tables: list = [{}, []]
    for _ in range(300):
        if rng.random() < 0.5:
            tables.append({key(i): number() for i in range(rng.randint(1, 8))})
        else:
            sizes = [0, 1, 2, 6, 7, 8, 13, 30, 99, 100, 101, 150]
            tables.append({key(i): [number() for _ in range(rng.choice(sizes))] for i in range(rng.randint(1, 4))})
    return tables


def test_inspect_prints_what_node_prints():
    node = require_program("node")
    tables = seeded_tables()
    answer = subprocess.run([node, "-e", NODE_INSPECT], input=json.dumps(tables), capture_output=True, text=True,
                            check=True, timeout=60).stdout
    expected = answer.split("\0")[:-1]
    assert len(expected) == len(tables)
    for table, text in zip(tables, expected):
        assert inspect(table) == text, json.dumps(table)[:200]


PACKETS = [
    b"short:1|c\nsampled:1|c|@0.3\nsampled:2|c|@0.1\napi.requests:7|c",
    b"g:10|g\ng:+2.5|g\nneg:-3|g\nqueue.depth:42|g",
    b"few:3|ms\nfew:1|ms",
    b"\n".join(f"seven:{v}|ms".encode() for v in (12, 7, 1500, 3, 88, 41, 9)),
    b"\n".join(f"many.values:{(v * 37) % 1000}|ms".encode() for v in range(120)),
    b"this.is.a.rather.long.metric.name.for.one.line:1|c\nnot a metric",
]


def test_listings_equal_etsys(etsy_js):
    hour = 3_600_000  # no flush during the test: nothing resets
    lines = sum(p.count(b"\n") + 1 for p in PACKETS)  # both count the bad line as received too
    with EtsyStatsd(etsy_js, {"flushInterval": hour, "backends": []}) as etsy, \
            Daemon(Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": hour,
                                          "graphite_enabled": False})) as ours:
        for packet in PACKETS:
            etsy.send([packet])
            send_udp(ours.port, packet)
        wait_received(ours, lines)
        received = re.compile(rf"'statsd\.metrics_received': {lines}\b")
        deadline = time.monotonic() + 30
        while not received.search(etsy.mgmt("counters")):  # etsy counts on its own event loop
            assert time.monotonic() < deadline, etsy.mgmt("counters")
            time.sleep(0.01)
        for command in ("counters", "timers", "gauges"):
            assert mgmt(ours.mgmt_port, command) == etsy.mgmt(command), command
