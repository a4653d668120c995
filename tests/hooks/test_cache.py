"""Cache hook on real LocMem, Redis (Django's RedisCache) and memcached (PyMemcacheCache)."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import caches

from django_statsd_push import hooks
from django_statsd_push.hooks import cache as cache_hook
from django_statsd_push.testing import capture_metrics
from tests.conftest import require_import, require_tcp

from .conftest import request_lines

# name -> (cache settings, server it needs, client package it needs)
BACKENDS = {
    "locmem": ({"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, None, None),
    "redis": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache",
         "LOCATION": "redis://127.0.0.1:6379/13"},
        ("127.0.0.1", 6379, "Redis"), "redis",
    ),
    "memcached": (
        {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
         "LOCATION": "127.0.0.1:11211"},
        ("127.0.0.1", 11211, "memcached"), "pymemcache",
    ),
}


def close_backend(backend) -> None:
    """Close the backend's sockets (Django leaves that to request_finished)."""
    pools = getattr(getattr(backend, "_cache", None), "_pools", None)
    if pools is not None:  # RedisCache
        for pool in pools.values():
            pool.disconnect()
    else:
        backend.close()


@pytest.fixture(params=list(BACKENDS))
def hooked(request, settings):
    """``caches["hooks"]`` on the backend under test, with the cache hook on."""
    config, server, package = BACKENDS[request.param]
    if server:
        require_import(package)
        require_tcp(*server)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "hooks": {**config, "KEY_PREFIX": f"hooks-{uuid.uuid4().hex}", "TIMEOUT": 60},
    }
    settings.STATSD_HOOKS = ["cache"]
    backend = caches["hooks"]
    yield backend
    close_backend(backend)
    settings.STATSD_HOOKS = []


# (op, call); each runs after the ones before it on the same cache.
CALLS = [
    ("set", lambda c: c.set("k", 1)),
    ("add", lambda c: c.add("k2", 1)),
    ("get", lambda c: c.get("k")),
    ("get_many", lambda c: c.get_many(["k", "nope"])),
    ("set_many", lambda c: c.set_many({"a": 1, "b": 2})),
    ("delete_many", lambda c: c.delete_many(["a", "b"])),
    ("incr", lambda c: c.incr("k")),
    ("decr", lambda c: c.decr("k")),
    ("touch", lambda c: c.touch("k", 60)),
    ("get_or_set", lambda c: c.get_or_set("k3", 5)),
    ("has_key", lambda c: c.has_key("k")),
    ("incr_version", lambda c: c.incr_version("k")),
    ("decr_version", lambda c: c.decr_version("k", version=2)),
    ("delete", lambda c: c.delete("k")),
    ("clear", lambda c: c.clear()),
]


def timings(metrics) -> list[str]:
    return [r.name for r in metrics.filter(type="ms")]


def test_every_operation_timed_once(hooked):
    for op, call in CALLS:
        with capture_metrics() as metrics:
            call(hooked)
        # Operations Django builds on others (get_or_set -> get + add) count once.
        assert timings(metrics) == [f"cache.hooks.{op}"], op


async def test_every_async_operation_timed_once_under_the_sync_name(hooked):
    for op, call in CALLS:
        method = getattr(hooked, "a" + op)
        args = {
            "set": ("k", 1), "add": ("k2", 1), "get": ("k",), "get_many": (["k", "nope"],),
            "set_many": ({"a": 1, "b": 2},), "delete_many": (["a", "b"],), "incr": ("k",),
            "decr": ("k",), "touch": ("k", 60), "get_or_set": ("k3", 5), "has_key": ("k",),
            "incr_version": ("k",), "decr_version": ("k", 1, 2), "delete": ("k",), "clear": (),
        }[op]
        with capture_metrics() as metrics:
            await method(*args)
        assert timings(metrics) == [f"cache.hooks.{op}"], op
    with capture_metrics() as metrics:
        await hooked.aset("x", "v")
        assert await hooked.aget("x") == "v"
        assert await hooked.aget("missing", "dflt") == "dflt"
    metrics.assert_incr("cache.hooks.get.hit", value=1, count=1)
    metrics.assert_incr("cache.hooks.get.miss", value=1, count=1)


def test_hits_and_misses(hooked):
    hooked.set("none", None)
    hooked.set("one", 1)
    with capture_metrics() as metrics:
        assert hooked.get("none", "dflt") is None  # a cached None is a hit
        assert hooked.get("one") == 1
        assert hooked.get("absent") is None
        assert hooked.get("absent", "dflt") == "dflt"
        assert hooked.get_many(["one", "absent", "gone"]) == {"one": 1}
    metrics.assert_incr("cache.hooks.get.hit", value=1, count=2)
    metrics.assert_incr("cache.hooks.get.miss", value=1, count=2)
    metrics.assert_incr("cache.hooks.get_many.hit", value=1, count=1)
    metrics.assert_incr("cache.hooks.get_many.miss", value=2, count=1)
    metrics.assert_timing("cache.hooks.get", count=4)
    metrics.assert_timing("cache.hooks.get_many", count=1)


def test_backend_object_untouched_and_attributes_pass_through(hooked):
    backend = cache_hook.unwrap(hooked)
    assert backend is not hooked
    fresh = type(caches).create_connection(caches, "hooks")  # Django's, never wrapped
    assert type(backend) is type(fresh) and set(vars(backend)) == set(vars(fresh))
    assert type(backend).__module__.startswith("django.core.cache.backends.")
    assert isinstance(hooked, type(backend))
    # Non-method attributes are the backend's own, read and written through.
    assert hooked.default_timeout == 60 and hooked.key_prefix.startswith("hooks-")
    hooked.default_timeout = 30
    assert backend.default_timeout == 30 and "default_timeout" not in hooked.__dict__
    assert hooked.make_key("k") == backend.make_key("k")  # helpers untouched
    assert set(hooked.__dict__) <= {name for op in cache_hook.OPS for name in (op, "a" + op)}
    hooked.set("k", 1)
    with capture_metrics() as metrics:
        assert "k" in hooked
    assert timings(metrics) == ["cache.hooks.has_key"]


def test_installing_twice_counts_once(hooked):
    hooks.install_enabled()
    cache_hook.install()
    cache_hook.install()
    with capture_metrics() as metrics:
        hooked.get("k")
    assert timings(metrics) == ["cache.hooks.get"]


def test_handle_created_before_install_is_replaced(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    early = caches["default"]
    assert type(early) is not cache_hook.TimedCache
    settings.STATSD_HOOKS = ["cache"]
    assert cache_hook.unwrap(caches["default"]) is early
    with capture_metrics() as metrics:
        caches["default"].get("k")
    metrics.assert_timing("cache.default.get", count=1)
    settings.STATSD_HOOKS = []
    assert caches["default"] is early  # uninstall puts the backend object back
    with capture_metrics() as metrics:
        caches["default"].get("k")
    assert metrics.records == []


def test_errors_propagate_and_are_timed(hooked):
    with capture_metrics() as metrics, pytest.raises(ValueError):
        hooked.incr("no-such-key")
    assert timings(metrics) == ["cache.hooks.incr"]


def test_request_sends_cache_metrics_in_one_datagram(udp, settings, client):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.STATSD_HOOKS = ["cache"]
    lines = request_lines(client, udp, settings, "/cached/")
    assert sum(line.startswith("cache.default.get:") for line in lines) == 2
    assert sum(line.startswith("cache.default.set:") for line in lines) == 1
    assert "cache.default.get.hit:1|c" in lines
    assert "cache.default.get.miss:1|c" in lines
    settings.STATSD_HOOKS = []


def test_another_librarys_create_connection_wrapper_is_kept(settings):
    made = []

    def theirs(alias):
        made.append(alias)
        return type(caches).create_connection(caches, alias)

    settings.STATSD_HOOKS = []
    caches.create_connection = theirs
    try:
        settings.STATSD_HOOKS = ["cache"]
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        with capture_metrics() as metrics:
            caches["default"].get("k")
        assert made == ["default"]
        metrics.assert_timing("cache.default.get", count=1)
        settings.STATSD_HOOKS = []
        assert caches.create_connection is theirs
    finally:
        del caches.create_connection
