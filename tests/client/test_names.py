"""The names module: sanitising, prefixes and the three tag formats."""

from __future__ import annotations

import pytest

from django_statsd_push import names


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("polls:detail", "polls_detail"),
        ("a.b", "a_b"),
        ("with space", "with_space"),
        ("../../etc/passwd", "______etc_passwd"),
        ("pipe|colon:hash#at@", "pipe_colon_hash_at_"),
        ("ünïcode", "_n_code"),
        ("", "_"),
        ("ok-name_1", "ok-name_1"),
    ],
)
def test_segment(raw, clean):
    assert names.segment(raw) == clean


def test_every_dimension_is_one_segment():
    m = names.request("shop.views.Cart/Checkout", "post", "db_time")
    assert names.render(m, None, None).name == "request.shop_views_Cart_Checkout.POST.db_time"


def test_unknown_methods_collapse():
    assert names.request("v", "brew") == names.request("v", "OTHER")
    assert names.render(names.request("v", "get"), None, None).name == "request.v.GET"


def test_a_request_without_a_method_is_other():
    # HttpRequest().method is None until a handler sets it.
    assert names.request("v", None) == names.request("v", "OTHER")


@pytest.mark.parametrize(
    "tag_format, name, tail",
    [
        (None, "pre.cache.default.get.hit", ""),
        ("dogstatsd", "pre.cache.hit", "|#alias:default,op:get"),
        ("graphite", "pre.cache.hit;alias=default;op=get", ""),
    ],
)
def test_render(tag_format, name, tail):
    rendered = names.render(names.cache_result("default", "get", "hit"), "pre", tag_format)
    assert (rendered.name, rendered.tail) == (name, tail)


def test_plain_strings_keep_dots_but_lose_wire_characters():
    assert names.render("shop.orders", None, None).name == "shop.orders"
    assert names.render("a b:c|d", "x.", None).name == "x.a_b_c_d"
    assert names.render(".edge.", None, None).name == "edge"


def test_families_of_design_md():
    plain = {
        names.request("index", "GET"): "request.index.GET",
        names.request("index", "GET", "db_queries"): "request.index.GET.db_queries",
        names.request_exception("ValueError"): "request.exception.ValueError",
        names.db_query("default", "sqlite", "select"): "db.default.sqlite.select",
        names.db_error("default", "IntegrityError"): "db.default.errors.IntegrityError",
        names.cache_op("default", "get_many"): "cache.default.get_many",
        names.model_event("polls", "question", "insert"): "model.polls.question.insert",
        names.migrations("default", "applied"): "migrations.default.applied",
        names.celery("proj.tasks.add", "runtime"): "celery.proj_tasks_add.runtime",
    }
    for metric, expected in plain.items():
        assert names.render(metric, None, None).name == expected


def test_responses():
    assert [names.render(m, None, None).name for m in names.responses(404, False)] == [
        "response.404", "response.4xx",
    ]
    (tagged,) = names.responses(404, True)
    assert names.render(tagged, None, "dogstatsd").tail == "|#status:404,status_class:4xx"
