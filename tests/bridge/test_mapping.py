"""The mapping file reader and matcher, against statsd_exporter's documented behaviour."""

from __future__ import annotations

import pytest

from django_statsd_push.bridge.mapping import (
    DEFAULT_BUCKETS,
    Mapper,
    MappingError,
    escape_metric_name,
    load_mapping,
    parse_mapping,
)

# statsd_exporter's README example, verbatim.
README_EXAMPLE = r"""
mappings:
- match: "test.dispatcher.*.*.*"
  name: "dispatcher_events_total"
  labels:
    processor: "$1"
    action: "$2"
    outcome: "$3"
    job: "test_dispatcher"
- match: "*.signup.*.*"
  name: "signup_events_total"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
"""


def test_readme_example_maps_as_statsd_exporter_documents() -> None:
    mapper = parse_mapping(README_EXAMPLE)
    result = mapper.map("test.dispatcher.FooProcessor.send.success", "c")
    assert result.mapped and result.name == "dispatcher_events_total"
    assert dict(result.labels) == {
        "processor": "FooProcessor", "action": "send", "outcome": "success", "job": "test_dispatcher",
    }  # fmt: skip
    result = mapper.map("foo_product.signup.facebook.failure", "c")
    assert (result.name, dict(result.labels)) == (
        "signup_events_total",
        {"provider": "facebook", "outcome": "failure", "job": "foo_product_server"},
    )
    result = mapper.map("test.web-server.foo.bar", "c")
    assert not result.mapped and result.name == "test_web_server_foo_bar" and result.labels == ()


def test_glob_star_is_one_whole_component() -> None:
    mapper = parse_mapping("mappings:\n- match: a.*\n  name: one\n")
    assert mapper.map("a.b", "c").name == "one"
    assert mapper.map("a.", "c").name == "one"  # an empty component is still one component
    assert not mapper.map("a.b.c", "c").mapped
    assert not mapper.map("ab", "c").mapped


def test_first_glob_in_file_order_wins_and_regex_runs_after_globs() -> None:
    mapper = parse_mapping(
        r"""
mappings:
- match: 'a\.(.*)'
  match_type: regex
  name: from_regex
- match: a.*.c
  name: wildcard_first
- match: a.b.c
  name: concrete_second
- match: a.b.*
  name: "${1}_x"
"""
    )
    assert mapper.map("a.b.c", "c").name == "wildcard_first"
    assert mapper.map("a.b.d", "c").name == "d_x"  # backtracks past the failing a.*.c
    assert mapper.map("a.q", "c").name == "from_regex"


def test_glob_disable_ordering_prefers_concrete_components() -> None:
    mapper = parse_mapping(
        "defaults:\n  glob_disable_ordering: true\nmappings:\n"
        "- match: a.*.c\n  name: wildcard\n- match: a.b.c\n  name: concrete\n"
    )
    assert mapper.map("a.b.c", "c").name == "concrete"
    assert mapper.map("a.z.c", "c").name == "wildcard"


def test_regex_is_unanchored_with_numbered_and_named_groups() -> None:
    mapper = parse_mapping(
        r"""
mappings:
- match: 'svc\.(?P<host>\w+)\.(\w+)'
  match_type: regex
  name: "$2"
  labels:
    host: "$host"
    whole: "$0"
"""
    )
    result = mapper.map("prefix.svc.web1.latency", "ms")
    assert result.name == "latency"
    assert dict(result.labels) == {"host": "web1", "whole": "svc.web1.latency"}


def test_template_reference_reads_longest_word_like_go() -> None:
    # "$1_total" names group "1_total", which does not exist: it expands to nothing.
    mapper = parse_mapping("mappings:\n- match: a.*\n  name: x_$1_total\n- match: b.*\n  name: x_${1}_total\n")
    assert mapper.map("a.q", "c").name == "x_"
    assert mapper.map("b.q", "c").name == "x_q_total"


def test_match_metric_type_and_kinds() -> None:
    mapper = parse_mapping(
        "mappings:\n"
        "- match: m.*\n  match_metric_type: counter\n  name: m_total\n"
        "- match: m.*\n  match_metric_type: observer\n  name: m_seconds\n"
        "- match: m.*\n  match_metric_type: gauge\n  name: m_level\n"
    )
    assert mapper.map("m.a", "c").name == "m_total"
    assert mapper.map("m.a", "ms").name == "m_seconds"
    assert mapper.map("m.a", "g").name == "m_level"
    assert mapper.map("m.a", "s").name == "m_level"  # sets are exported as gauges


def test_defaults_apply_and_rule_overrides() -> None:
    mapper = parse_mapping(
        """
defaults:
  ttl: 1m30s
  observer_type: summary
  summary_options:
    quantiles: [{quantile: 0.5, error: 0.05}]
    max_age: 30s
mappings:
- match: a.*
  name: a
- match: b.*
  name: b
  ttl: 500ms
  observer_type: histogram
  histogram_options:
    buckets: [0.1, 1]
- match: c.*
  name: c
  action: drop
"""
    )
    a = mapper.map("a.x", "ms").rule
    assert (a.ttl, a.observer_type, a.quantiles, a.summary_max_age) == (90.0, "summary", ((0.5, 0.05),), 30.0)
    b = mapper.map("b.x", "ms").rule
    assert (b.ttl, b.observer_type, b.buckets) == (0.5, "histogram", (0.1, 1.0))
    assert mapper.map("c.x", "c").dropped
    unmapped = mapper.map("zzz", "ms")
    assert not unmapped.mapped and unmapped.rule.ttl == 90.0 and unmapped.rule.observer_type == "summary"


def test_timers_default_to_histogram_with_client_golang_buckets() -> None:
    rule = Mapper([]).map("t", "ms").rule
    assert rule.observer_type == "histogram" and rule.buckets == DEFAULT_BUCKETS


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a.b.c", "a_b_c"),
        ("9lives", "_9lives"),
        ("a--b", "a_b"),
        ("a---b", "a_b"),
        ("a-b", "a_b"),
        ("héllo wörld", "h_llo_w_rld"),
        ("ok_name", "ok_name"),
        ("", ""),
    ],
)
def test_escape_metric_name(raw: str, escaped: str) -> None:
    assert escape_metric_name(raw) == escaped


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("mappings:\n- match: a.b\n  nme: x\n", 3, "unknown key 'nme'"),
        ("mappings:\n- match: a..b\n  name: x\n", 2, "invalid glob match"),
        ("mappings:\n- match: a.b*\n  name: x\n", 2, "invalid glob match"),
        ("mappings:\n- match: a\n", 2, "sets no metric 'name'"),
        ("mappings:\n- match: a\n  name: 'bad-name'\n", 3, "not a valid metric name"),
        ("mappings:\n- match: a\n  name: x\n  labels:\n    bad-key: v\n", 5, "invalid label name"),
        ("defaults:\n  ttl: 5\n", 2, "not a duration"),
        ("defaults:\n  ttl: 5 minutes\n", 2, "not a duration"),
        ("mappings:\n- match: '('\n  match_type: regex\n  name: x\n", 2, "invalid regex"),
        ("mappings:\n- match: a\n  name: x\n  observer_type: gauge\n", 4, "observer_type"),
        ("mappings:\n- match: a\n  name: x\n  histogram_options:\n    buckets: [2, 1]\n", 5, "increasing"),
        ("mappings:\n- match: a\n  name: x\n  observer_type: summary\n  histogram_options: {buckets: [1]}\n", 2, "at the same time"),
        ("mappings:\n- match: a\n  name: x\n  name: y\n", 4, "given twice"),
        ("mappings: [\n", 2, "not valid YAML"),
        ("mapings: []\n", 1, "unknown key 'mapings'"),
    ],
)
def test_bad_file_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "bad.yml")
    message = str(caught.value)
    assert message.startswith(f"bad.yml:{line}:"), message
    assert words in message


def test_load_mapping_missing_file_is_clear(tmp_path) -> None:
    with pytest.raises(MappingError, match="cannot read mapping file"):
        load_mapping(tmp_path / "absent.yml")
    (tmp_path / "empty.yml").write_text("")
    assert len(load_mapping(tmp_path / "empty.yml")) == 0


def test_cache_is_bounded_and_consistent() -> None:
    mapper = parse_mapping(README_EXAMPLE)
    mapper.cache_size = 8
    for i in range(100):
        assert mapper.map(f"x{i}.signup.p.ok", "c").labels[2] == ("job", f"x{i}_server")
    assert len(mapper._cache) <= 8
    assert mapper.map("x1.signup.p.ok", "c").labels[2] == ("job", "x1_server")


def test_summary_options_without_observer_type_mean_summary() -> None:
    # Valid for statsd_exporter (its default observer is a summary): must load here too.
    mapper = parse_mapping("mappings:\n- match: a.*\n  name: a\n  summary_options:\n    max_age: 30s\n")
    rule = mapper.map("a.x", "ms").rule
    assert (rule.observer_type, rule.summary_max_age) == ("summary", 30.0)


def test_numbers_in_go_yaml_notation() -> None:
    mapper = parse_mapping("mappings:\n- match: a\n  name: a\n  scale: 1e-6\n  histogram_options: {buckets: [1e-3, 2]}\n")
    rule = mapper.map("a", "ms").rule
    assert (rule.scale, rule.buckets) == (1e-6, (1e-3, 2.0))
