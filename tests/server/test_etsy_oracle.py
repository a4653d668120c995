"""Same packets to the real etsy statsd 0.9 (node) and to ours: the Carbon line sets match.

etsy is installed with npm into a cache dir outside the repo (see ``etsy.py``).
"""

from __future__ import annotations

import socket

import pytest

from django_statsd_push.server.aggregate import Aggregator
from django_statsd_push.server.config import Settings
from django_statsd_push.server.graphite_sink import GraphiteSink
from tests.conftest import require_program

from .etsy import CarbonCapture, EtsyStatsd
from .etsy_lines import masked
from .helpers import Collect, eventually, ingest_as_workers

pytestmark = pytest.mark.slow

PACKETS = [
    b"a.b:1|c",
    b"a.b:3|c|@0.25",
    b"weird name/x#y:2|c",
    b"semi colon;x$y:3|c",
    b"t.tagged:1|c|#env:prod,role:web",
    b"h.type:4|h",
    b"lat:" + b"|ms\nlat:".join(str(v).encode() for v in
                                 [3, 1.5, 7, 12.25, 99, 100, 0, 45, 2, 8, 13, 21, 34, 55, 89, 144, 6.5, 7, 7]) + b"|ms",
    b"lat.single:42|ms",
    b"lat.sampled:10|ms|@0.5\nlat.sampled:20|ms|@0.5\nlat.sampled:5|ms|@0.5",
    b"api.lat:12|ms|#k:v",
    b"g1:10|g\ng1:+2.5|g\ng2:-3|g\ng3:0|g\ng3:-1|g",
    b"s1:a|s\ns1:b|s\ns1:a|s\ns2:1|s",
    b"bad:1|c|@x\nbad2:x|ms\nnocolon",
    b"multi:1|c:2|c:5|ms",
]

CONFIGS = {
    "non-legacy, prefixes, suffix, percentile list, histogram": {
        "graphite": {"legacyNamespace": False, "globalPrefix": "pfx", "prefixCounter": "cnt",
                     "prefixSet": "", "globalSuffix": "sfx"},
        "percentThreshold": [90, 99.5, -25, 50],
        "histogram": [{"metric": "api.lat", "bins": [10, 12, "inf"]},
                      {"metric": "lat", "bins": [1, 2.5, 10, 50]}],
    },
    "legacy, deleteIdleStats, gaugesMaxTTL, no counts, prefixStats": {
        "deleteIdleStats": True, "gaugesMaxTTL": 2, "flush_counts": False, "prefixStats": "mine",
        "percentThreshold": 95,
    },
    "non-legacy defaults, calculatedTimerMetrics, keyNameSanitize off": {
        "graphite": {"legacyNamespace": False}, "keyNameSanitize": False,
        "calculatedTimerMetrics": ["count", "upper_percent", "mean", "histogram"],
        "histogram": [{"metric": "lat", "bins": [5, "inf"]}],
    },
}


def random_packets(seed: int = 11) -> list[bytes]:
    """Valid lines of every type with random values, rates and packing (seeded)."""
    import random

    rng = random.Random(seed)
    lines = []
    for _ in range(600):
        kind = rng.choice("cmgs")
        name = f"r.{kind}{rng.randint(0, 7)}"
        if kind == "c":
            rate = rng.choice(["", "|@0.1", "|@0.3", "|@0.75"])
            lines.append(f"{name}:{rng.choice([1, 2, 5, 0.5, rng.uniform(0, 100)])}|c{rate}")
        elif kind == "m":
            rate = rng.choice(["", "", "|@0.5"])
            lines.append(f"{name}:{round(rng.expovariate(0.02), rng.randint(0, 3))}|ms{rate}")
        elif kind == "g":
            lines.append(f"{name}:{rng.choice(['', '+', '-'])}{round(rng.uniform(0, 50), 2)}|g")
        else:
            lines.append(f"{name}:user{rng.randint(0, 30)}|s")
    packets, i = [], 0
    while i < len(lines):
        n = rng.randint(1, 25)
        packets.append("\n".join(lines[i:i + n]).encode())
        i += n
    return packets


def ours(config: dict, phases: list[list[bytes]], workers: int = 1) -> list[set]:
    """Our flushes: one before any packet, then one after each phase's packets (spread
    over ``workers`` recording aggregators and merged, as worker processes are)."""
    settings = Settings.from_mapping(config)
    aggregator = Aggregator(settings.aggregator_config())
    keep = Collect()
    sink = GraphiteSink(keep, settings.graphite_config(), aggregator.count)
    t0 = 1_800_000_000.0
    sink.flush(aggregator.flush(t0))
    for i, packets in enumerate(phases, 1):
        ingest_as_workers(aggregator, packets, workers)
        sink.flush(aggregator.flush(t0 + i))
    for batch in keep.batches:  # one line per Graphite name, whatever the raw names were
        names = [n for n, _, _ in batch]
        assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    return [masked(b) for b in keep.batches]


def theirs(etsy_js, config: dict, phases: list[list[bytes]]) -> list[set]:
    """etsy's flushes for the same phases (each sent just after a flush arrived)."""
    with CarbonCapture() as carbon:
        etsy_config = {**config, "graphiteHost": "127.0.0.1", "graphitePort": carbon.port}
        with EtsyStatsd(etsy_js, etsy_config) as etsy:
            flushes = [carbon.flush()]
            for packets in phases:
                etsy.send(packets)
                flushes.append(carbon.flush())
    return [masked(b) for b in flushes]


def mask_lag(lines: set) -> set:
    # etsy computes the lag from whole seconds of its own timer: +-1 either way.
    return {(n, "*" if "timestamp_lag" in n else v) for n, v in lines}


CONFIGS["random values and packing, many percentiles"] = {
    "percentThreshold": [50, 90, 99, 99.9, -10], "histogram": [{"metric": "r.m1", "bins": [5, 50, 500, "inf"]}],
}


def counter_sums_alike(got: set, expected: set) -> set:
    """``got`` with each counter line whose value differs from etsy's only by rounding
    replaced by etsy's. With workers, a counter is summed per worker and the partial
    sums added at flush: a sum of non-integers (``1/rate`` of 0.3, fractional values)
    can differ in the last digits from etsy's one running sum (docs/daemon.rst).
    Timers, gauges and sets must still be exact."""
    theirs = dict(expected)
    out = set()
    for name, value in got:
        other = theirs.get(name)
        if other is not None and other != value and ".timers." not in name and ".gauges." not in name:
            try:
                if abs(float(value) - float(other)) <= 1e-12 * max(abs(float(other)), 1.0):
                    value = other
            except ValueError:
                pass
        out.add((name, value))
    return out


def assert_same_flushes(etsy_js, config: dict, phases: list[list[bytes]]) -> None:
    """etsy's flushes equal ours with one receiver and with several (workers 2 and 3)."""
    config = {"flushInterval": 1000, **config}
    expected = [mask_lag(b) for b in theirs(etsy_js, config, phases)]
    for workers in (1, 2, 3):
        got = [mask_lag(b) for b in ours(config, phases, workers)]
        if workers > 1:
            got = [counter_sums_alike(g, e) for g, e in zip(got, expected)]
        for i in (*range(1, len(got)), 0):  # the flushes with data first: the clearest failure
            assert got[i] == expected[i], f"flush {i}, workers {workers}"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_lines_as_etsy(etsy_js, name):
    packets = random_packets() if name.startswith("random") else PACKETS
    assert_same_flushes(etsy_js, CONFIGS[name], [packets, []])


# Raw names that etsy's sanitising turns into one name: whitespace runs vs "_", "/" vs
# "-", characters it strips, a tag vs the same text in the name, tags cleaning alike,
# and the daemon's own stats. Integral sums, so the order of additions cannot matter.
COLLIDING = [
    [b"a b:1|c\na_b:2|c\na \t b:3|c|@0.5\nx/y:1|c\nx-y:4|c|@0.25\np$q%:2|c\npq:3|c",
     b"h:1|c|#env:prod\nh;env=prod:2|c\nh:4|c|#env$:prod\nh:8|c|#env;x:v\nh:16|c|#env_x:v\n"
     b"h:1|c|#env:pr od\nh:2|c|#env:pr_od",
     b"statsd.packets received:5|c\nstatsd.timestamp lag:100|g",
     b"lat ency:3|ms\nlat_ency:1|ms|@0.5\nlat  ency:12.5|ms\nlat/x:5|ms\nlat-x:7|ms\n"
     b"api.lat:12|ms|#k:v\napi.lat;k=v:3|ms",
     b"g a:1|g\ng_a:5|g\ng_a:+1|g\ng/b:3|g\ng-b:4|g",
     b"s a:x|s\ns_a:y|s\ns$_a:x|s\nu/v:1|s\nu-v:2|s"],
    [b"g a:7|g\na_b:1|c\nlat_ency:2|ms\nlat ency:4|ms\ns a:z|s"],
    [],
    [],
]

COLLIDING_CONFIGS = {
    "legacy, percentiles, histogram": {
        "percentThreshold": [90, 50], "histogram": [{"metric": "lat_ency", "bins": [2, 5, "inf"]}],
    },
    "non-legacy, deleteIdleStats, gaugesMaxTTL": {
        "graphite": {"legacyNamespace": False}, "deleteIdleStats": True, "gaugesMaxTTL": 2,
    },
}


@pytest.mark.parametrize("name", list(COLLIDING_CONFIGS))
def test_colliding_names_combine_as_in_etsy(etsy_js, name):
    assert_same_flushes(etsy_js, COLLIDING_CONFIGS[name], COLLIDING)


def test_numbers_are_written_as_node_writes_them(tmp_path):
    """js_str against node's String(Number) for random doubles of every magnitude."""
    import random
    import subprocess

    from django_statsd_push.server.js import js_str

    node = require_program("node")
    rng = random.Random(7)
    values = [rng.uniform(-1e6, 1e6) for _ in range(200)]
    values += [rng.random() * 10 ** rng.randint(-12, 25) for _ in range(400)]
    values += [0.1, 1e-4, 1.1e-4, 1e-5, 1e-7, 2.0**53, 2.0**53 + 2, 9.5e15, 1e21, -0.0, 123456789.125]
    script = "require('fs').readFileSync(0,'utf8').trim().split('\\n').forEach(x=>console.log(String(Number(x))))"
    out = subprocess.run([node, "-e", script], input="\n".join(map(repr, values)), capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert [js_str(v) for v in values] == out


def test_etsy_starts_again_when_its_udp_port_was_taken_before_it_bound_it(etsy_js):
    """The oracle's harness: node's UDP port cannot be held for it, so one taken between
    the pick and node's bind must cost a restart on another port, not a failed test."""

    class Unlucky(EtsyStatsd):
        def _pick_udp_port(self) -> int:
            port = super()._pick_udp_port()
            if not strangers:  # the first pick is taken before node binds it
                strangers.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                strangers[0].bind(("127.0.0.1", port))
            return port

    strangers: list[socket.socket] = []
    try:
        with Unlucky(etsy_js, {"flushInterval": 3600000, "backends": []}) as etsy:
            assert etsy.udp_port != strangers[0].getsockname()[1]
            etsy.send([b"harness.hits:3|c"])
            counters = eventually(lambda: etsy.mgmt("counters"), lambda text: "'harness.hits': 3" in text)
            assert "'harness.hits': 3" in counters
    finally:
        for s in strangers:
            s.close()
