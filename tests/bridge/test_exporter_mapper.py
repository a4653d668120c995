"""statsd_exporter's mapper tests as data: ``TestMetricMapperYAML`` in pkg/mapper/mapper_test.go.

``data/statsd_exporter_mapper_cases.json`` holds its scenarios (mapping YAML, whether it
is refused, statsd names with the name and labels statsd_exporter maps them to, or that
no rule matches), converted once from the Go literals of its test file (statsd_exporter ac592b1e).
Option fields its scenarios also check (ttl, buckets, quantiles, scale ...) are listed
per scenario in ``notChecked``; tests/bridge/test_mapping.py covers those options.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from django_statsd_push.bridge.mapping import MappingError, parse_mapping

DATA = json.loads((Path(__file__).parent / "data" / "statsd_exporter_mapper_cases.json").read_text())
SCENARIOS = {s["testName"]: s for s in DATA["scenarios"]}
STATSD_TYPE = {"counter": "c", "gauge": "g", "observer": "ms"}  # statsd_exporter's MetricType


@pytest.mark.parametrize("name", SCENARIOS)
def test_mapping_as_statsd_exporter_maps_it(name: str) -> None:
    scenario = SCENARIOS[name]
    if scenario["configBad"]:
        with pytest.raises(MappingError):
            parse_mapping(scenario["config"])
        return
    mapper = parse_mapping(scenario["config"])
    for case in scenario["mappings"]:
        result = mapper.map(case["statsdMetric"], STATSD_TYPE[case.get("metricType", "counter")])
        present = result.mapped
        if case.get("notPresent"):
            assert not present, case
        if present and case.get("name"):
            assert result.name == case["name"], case
        assert dict(result.labels) == (case["labels"] if present else {}), case
