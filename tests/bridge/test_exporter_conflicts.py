"""statsd_exporter's ``TestConflictingMetrics`` (pkg/exporter/exporter_test.go) as data.

Each scenario's events arrive in one flush, in order; the series of the first events
keep their name and value, the later ones with a clashing type or exposed name are
dropped and counted (``statsd_push_bridge_conflicts_total``). Counters are exported
with ``_total`` here (statsd_exporter's client_golang leaves a counter's name as it
is); the clash rules follow from the names each type writes, so the scenarios about
``_count``/``_sum``/``_bucket`` suffixes still apply. Observations are sent as ``h``
(their own unit), as statsd_exporter's observer events carry no unit.
"""

from __future__ import annotations

import pytest

from django_statsd_push.server.protocol import EXPORTER
from tests.bridge.test_store import Bridge

MAPPING = "mappings:\n- match: histogram.*\n  name: \"histogram_${1}\"\n"

# name -> (lines in arrival order, {(sample, labels): value} that must be on the page, dropped updates)
SCENARIOS: dict[str, tuple[list[str], dict[tuple[str, tuple], float], int]] = {
    "counter vs gauge": (["cvg_test:1|c", "cvg_test:2|g"], {("cvg_test_total", ()): 1}, 1),
    "counter vs gauge with different labels": (
        ["cvgl_test:1|c|#tag:1", "cvgl_test:2|c|#tag:2", "cvgl_test:3|g|#tag:1"],
        {("cvgl_test_total", (("tag", "1"),)): 1, ("cvgl_test_total", (("tag", "2"),)): 2}, 1),
    "counter vs gauge with same labels": (
        ["cvgsl_test:1|c|#tag:1", "cvgsl_test:2|c|#tag:1", "cvgsl_test:3|g|#tag:1"],
        {("cvgsl_test_total", (("tag", "1"),)): 3}, 1),
    "gauge vs counter": (["gvc_test:2|g", "gvc_test:1|c"], {("gvc_test", ()): 2}, 1),
    "histogram vs counter with count suffix": (
        ["histogram.test1:2|h", "histogram_test1_count:1|c"], {("histogram_test1_sum", ()): 2}, 1),
    "histogram vs counter with sum suffix": (
        ["histogram.test1:2|h", "histogram_test1_sum:1|c"], {("histogram_test1_sum", ()): 2}, 1),
    "histogram vs counter with bucket suffix": (
        ["histogram.test1:2|h", "histogram_test1_bucket:1|c"], {("histogram_test1_sum", ()): 2}, 1),
    "histogram vs gauge with sum suffix": (
        ["histogram.test1:2|h", "histogram_test1_sum:1|g"], {("histogram_test1_sum", ()): 2}, 1),
    "histogram vs gauge with count suffix": (
        ["histogram.test1:2|h", "histogram_test1_count:1|g"], {("histogram_test1_sum", ()): 2}, 1),
    "counter vs histogram": (["histogram_test1:1|c", "histogram.test1:2|h"], {("histogram_test1_total", ()): 1}, 1),
    "counter vs histogram sum": (
        ["histogram_test1_sum:1|c", "histogram.test1:2|h"], {("histogram_test1_sum_total", ()): 1}, 1),
    "counter vs histogram count": (
        ["histogram_test2_count:1|c", "histogram.test2:2|h"], {("histogram_test2_count_total", ()): 1}, 1),
    "counter vs histogram bucket": (
        ["histogram_test3_bucket:1|c", "histogram.test3:2|h"], {("histogram_test3_bucket_total", ()): 1}, 1),
    "counter vs summary quantile": (["cvsq_test:1|c", "cvsq_test:2|h"], {("cvsq_test_total", ()): 1}, 1),
    "counter vs summary count": (["cvsc_count:1|c", "cvsc:2|h"], {("cvsc_count_total", ()): 1}, 1),
    "counter vs summary sum": (["cvss_sum:1|c", "cvss:2|h"], {("cvss_sum_total", ()): 1}, 1),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_first_metric_keeps_its_name(name: str) -> None:
    lines, expected, dropped = SCENARIOS[name]
    bridge = Bridge(MAPPING, idle_repeats=False, rules=EXPORTER)
    bridge.feed("\n".join(lines))
    samples = bridge.samples()  # the page parses: no two families write one name
    for key, value in expected.items():
        assert samples.get(key) == value, key
    families = {f for f in bridge.types() if not f.startswith("statsd_push_bridge_")}
    assert len(families) == 1, families  # the later, clashing metric made none
    conflicts = sum(bridge.own("conflicts", kind=kind) for kind in ("type", "labels", "name"))
    assert conflicts == dropped
