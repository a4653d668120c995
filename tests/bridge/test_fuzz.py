"""Garbage in, a valid /metrics page out: random names, tags and types, checked by both
prometheus_client's parser and Prometheus's own (``promtool check metrics``), and
byte-equal to what ``generate_latest`` writes for the same store."""

from __future__ import annotations

import random
import subprocess

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from django_statsd_push.server.protocol import ETSY, EXPORTER, Rules
from tests.bridge.test_store import Bridge
from tests.conftest import require_program

ALPHABET = "abc.-_/ :|#@,=[]\"\\\n\tü€0123456789xyz"


def garbage(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, size)))


def random_line(rng: random.Random) -> str:
    name = rng.choice(["req", "req.a", "x_count", "x", "statsd_push_bridge_series", "9lives"]) + garbage(rng, 6)
    value = rng.choice(["1", "-1", "+2", "0.5", "1e3", "abc", "", "nan", "1:2:3", "0.5::x"])
    type_ = rng.choice(["c", "g", "ms", "s", "h", "d", "zz"])
    tail = "".join(rng.choice(["", "|@0.5", "|#env:prod", "|#le:1,__x:y", f"|#{garbage(rng, 8)}", "|@x",
                               "|c:abc", "|c:", "|T1656581400", "|card:low", "|e:it-1", "|" + garbage(rng, 4)])
                   for _ in range(rng.randint(0, 3)))
    if rng.random() < 0.05:
        return rng.choice([f"_sc|{garbage(rng, 5)}|{rng.randint(0, 4)}{tail}",
                           f"_e{{{rng.randint(0, 5)},{rng.randint(0, 5)}}}:{garbage(rng, 9)}{tail}"]).replace("\n", " ")
    return f"{name}:{value}|{type_}{tail}".replace("\n", " ")


@pytest.mark.parametrize("rules", [ETSY, EXPORTER], ids=["etsy", "exporter"])
@pytest.mark.parametrize("seed", range(5))
def test_random_input_always_renders_a_valid_page(seed: int, rules: Rules) -> None:
    rng = random.Random(seed)
    bridge = Bridge(max_series=200, rules=rules)
    for _ in range(5):
        bridge.feed("\n".join(random_line(rng) for _ in range(300)))
    page = bridge.text()
    assert page == generate_latest(bridge.collector.registry).decode()
    families = list(text_string_to_metric_families(page))
    assert any(f.name == "statsd_push_bridge_lines" for f in families)
    promtool = require_program("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=30)
    # promtool also lints (exit 3: naming advice); a page Prometheus cannot parse is exit 1.
    assert result.returncode != 1 and "parsing error" not in result.stdout + result.stderr, result.stderr
