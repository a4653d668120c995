"""graphite/statsd-mapping.yml against the names the Django side really builds.

Every metric family (docs/architecture.rst) is rendered by ``django_statsd_push.names``
twice, as plain Graphite paths and with DogStatsD tags, sent through the daemon's parser and
aggregator into the bridge; both modes must land on the same Prometheus names and
labels.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_statsd_push import names
from django_statsd_push.bridge.collector import BridgeCollector
from django_statsd_push.bridge.mapping import load_mapping
from django_statsd_push.bridge.store import SeriesStore
from django_statsd_push.server.aggregate import Aggregator

MAPPING = Path(__file__).resolve().parents[2] / "graphite" / "statsd-mapping.yml"

# (metric, wire type, value) -> expected (sample name, labels, value)
CASES = [
    (names.request("polls_index", "get"), "ms", "120",
     "django_request_duration_seconds_sum", {"view": "polls_index", "method": "GET"}, 0.12),
    (names.request("polls_index", "GET", "db_queries"), "ms", "7",
     "django_request_db_queries_sum", {"view": "polls_index", "method": "GET"}, 7.0),
    (names.request("polls_index", "GET", "db_time"), "ms", "15",
     "django_request_db_duration_seconds_sum", {"view": "polls_index", "method": "GET"}, 0.015),
    (names.request("polls_index", "POST", "request_bytes"), "ms", "2048",
     "django_request_body_bytes_sum", {"view": "polls_index", "method": "POST"}, 2048.0),
    (names.request("polls_index", "GET", "response_bytes"), "ms", "5000",
     "django_response_body_bytes_bucket", {"view": "polls_index", "method": "GET", "le": "10000.0"}, 1.0),
    (names.request_exception("ValueError"), "c", "1",
     "django_request_exceptions_total", {"exception": "ValueError"}, 1.0),
    (names.db_query("default", "postgresql", "select"), "ms", "3",
     "django_db_query_duration_seconds_count", {"alias": "default", "vendor": "postgresql", "verb": "select"}, 1.0),
    (names.db_error("default", "OperationalError"), "c", "1",
     "django_db_errors_total", {"alias": "default", "exception": "OperationalError"}, 1.0),
    (names.cache_op("default", "get"), "ms", "0.5",
     "django_cache_duration_seconds_bucket", {"alias": "default", "op": "get", "le": "0.0005"}, 1.0),
    (names.cache_result("default", "get", "hit"), "c", "1",
     "django_cache_results_total", {"alias": "default", "op": "get", "result": "hit"}, 1.0),
    (names.model_event("polls", "question", "insert"), "c", "1",
     "django_model_events_total", {"app": "polls", "model": "question", "event": "insert"}, 1.0),
    (names.migrations("default", "unapplied"), "g", "2",
     "django_migrations", {"alias": "default", "state": "unapplied"}, 2.0),
    (names.celery("send_mail", "runtime"), "ms", "250",
     "celery_task_runtime_seconds_sum", {"task": "send_mail"}, 0.25),
    (names.celery("send_mail", "failed"), "c", "1",
     "celery_task_events_total", {"task": "send_mail", "event": "failed"}, 1.0),
    (names.browser("polls_detail", "load"), "ms", "1200",
     "django_browser_timing_seconds_sum", {"view": "polls_detail", "figure": "load"}, 1.2),
    (names.browser("polls_index", "lcp"), "ms", "2400",  # Web Vitals' "good" LCP bound is a bucket
     "django_browser_timing_seconds_bucket", {"view": "polls_index", "figure": "lcp", "le": "2.5"}, 1.0),
    (names.browser("polls_index", "ttfb"), "ms", "900",
     "django_browser_timing_seconds_bucket", {"view": "polls_index", "figure": "ttfb", "le": "0.8"}, 0.0),
]  # fmt: skip


def wire(metric: names.Metric, type_: str, value: str, tag_format: str | None) -> str:
    rendered = names.render(metric, None, tag_format)
    return f"{rendered.name}:{value}|{type_}{rendered.tail}"


def exported(lines: list[str]) -> dict[tuple[str, frozenset], float]:
    store = SeriesStore(load_mapping(MAPPING))
    aggregator = Aggregator()
    aggregator.ingest("\n".join(lines).encode())
    store.apply(aggregator.flush(1000.0))
    body = BridgeCollector(store).render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if not s.name.startswith("statsd_push_bridge_")
    }


@pytest.mark.parametrize("tag_format", [None, "dogstatsd"])
@pytest.mark.parametrize(("metric", "type_", "value", "name", "labels", "expected"), CASES)
def test_django_name_maps(metric, type_, value, name, labels, expected, tag_format) -> None:
    samples = exported([wire(metric, type_, value, tag_format)])
    assert samples.get((name, frozenset(labels.items()))) == pytest.approx(expected), sorted(samples)


@pytest.mark.parametrize("tag_format", [None, "dogstatsd"])
def test_responses_carry_status_and_class_once(tag_format) -> None:
    lines = [wire(m, "c", "1", tag_format) for m in names.responses(404, tagged=bool(tag_format))]
    samples = exported(lines)
    assert samples == {("django_responses_total", frozenset({("status", "404"), ("status_class", "4xx")})): 1.0}


def test_both_modes_export_the_same_series() -> None:
    plain = exported([wire(m, t, v, None) for m, t, v, *_ in CASES])
    tagged = exported([wire(m, t, v, "dogstatsd") for m, t, v, *_ in CASES])
    assert plain.keys() == tagged.keys()
    assert not [key for key in plain if not key[0].startswith(("django_", "celery_"))]  # nothing unmapped
