"""Cache hook: time every operation on every alias in ``CACHES`` as ``cache.<alias>.<op>``.

How: ``django.core.cache.caches`` creates one backend object per alias (and thread);
the hook wraps that handler's ``create_connection`` and replaces, on each backend
object it returns, the public operations by timed ones (instance attributes, so the
backend class, its other attributes such as ``default_timeout`` and ``key_prefix``,
and every other instance are left alone). Backend objects created before the hook was
installed are wrapped at install time (those of the installing thread).

Choices:

* ``aget`` and the other async forms are reported under the sync name (``get``): a
  dashboard wants one series per operation, whichever API the view used.
* Operations that Django implements through others (``get_many`` calling ``get`` on
  LocMem, ``get_or_set`` calling ``get`` and ``add``, ``aget`` running ``get`` in a
  thread) are recorded once, under the operation the caller asked for.
* ``get`` hits and misses are told apart with a private sentinel default, so a cached
  ``None`` is a hit; ``get_many`` sends the number of keys found and missed.
"""

from __future__ import annotations

import contextvars
import weakref
from time import perf_counter
from typing import Any

from django.core.cache import caches

from django_statsd_push import names
from django_statsd_push.client import statsd

OPS = (
    "get", "set", "add", "delete", "get_many", "set_many", "delete_many", "incr", "decr",
    "touch", "get_or_set", "has_key", "clear", "incr_version", "decr_version",
)

_MISSING = object()
# True while an instrumented operation runs in this context: the operations it makes
# internally pass through untimed. contextvars, so sync_to_async threads see it.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "django_statsd_push_cache_op", default=False
)
# backend object -> the attributes this hook set on it
_instrumented: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


# The wrappers below are on the hot path of every cache call: they bind what they use
# as locals of the closure, and the sync and async forms differ only by ``await``.


def _timed(alias: str, op: str, method: Any) -> Any:
    timer, timing, inside = names.cache_op(alias, op), statsd.timing, _inside

    def timed(*args: Any, **kwargs: Any) -> Any:
        if inside.get():
            return method(*args, **kwargs)
        token = inside.set(True)
        start = perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            inside.reset(token)
            timing(timer, (perf_counter() - start) * 1000.0)

    return timed


def _atimed(alias: str, op: str, method: Any) -> Any:
    timer, timing, inside = names.cache_op(alias, op), statsd.timing, _inside

    async def atimed(*args: Any, **kwargs: Any) -> Any:
        if inside.get():
            return await method(*args, **kwargs)
        token = inside.set(True)
        start = perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            inside.reset(token)
            timing(timer, (perf_counter() - start) * 1000.0)

    return atimed


def _names(alias: str, op: str) -> tuple[Any, Any, Any]:
    """Timer, hit and miss names of an operation that reports hits and misses."""
    return (
        names.cache_op(alias, op),
        names.cache_result(alias, op, "hit"),
        names.cache_result(alias, op, "miss"),
    )


def _timed_get(alias: str, op: str, method: Any) -> Any:
    (timer, hit, miss), timing, incr, inside = _names(alias, op), statsd.timing, statsd.incr, _inside

    def get(key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
        if inside.get():
            return method(key, default, *args, **kwargs)
        token = inside.set(True)
        start = perf_counter()
        try:
            value = method(key, _MISSING, *args, **kwargs)
        finally:
            inside.reset(token)
            timing(timer, (perf_counter() - start) * 1000.0)
        if value is _MISSING:
            incr(miss)
            return default
        incr(hit)
        return value

    return get


def _atimed_get(alias: str, op: str, method: Any) -> Any:
    (timer, hit, miss), timing, incr, inside = _names(alias, op), statsd.timing, statsd.incr, _inside

    async def aget(key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
        if inside.get():
            return await method(key, default, *args, **kwargs)
        token = inside.set(True)
        start = perf_counter()
        try:
            value = await method(key, _MISSING, *args, **kwargs)
        finally:
            inside.reset(token)
            timing(timer, (perf_counter() - start) * 1000.0)
        if value is _MISSING:
            incr(miss)
            return default
        incr(hit)
        return value

    return aget


def _count_many(hit: Any, miss: Any, found: Any, keys: list[Any]) -> None:
    hits, asked = len(found), len(set(keys))
    if hits:
        statsd.incr(hit, hits)
    if asked > hits:
        statsd.incr(miss, asked - hits)


def _timed_get_many(alias: str, op: str, method: Any) -> Any:
    (timer, hit, miss), timing, inside = _names(alias, op), statsd.timing, _inside

    def get_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        if inside.get():
            return method(keys, *args, **kwargs)
        keys = list(keys)  # a generator could be read only once
        token = inside.set(True)
        start = perf_counter()
        try:
            found = method(keys, *args, **kwargs)
        finally:
            inside.reset(token)
            timing(timer, (perf_counter() - start) * 1000.0)
        _count_many(hit, miss, found, keys)
        return found

    return get_many


def _atimed_get_many(alias: str, op: str, method: Any) -> Any:
    (timer, hit, miss), timing, inside = _names(alias, op), statsd.timing, _inside

    async def aget_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        if inside.get():
            return await method(keys, *args, **kwargs)
        keys = list(keys)
        token = inside.set(True)
        start = perf_counter()
        try:
            found = await method(keys, *args, **kwargs)
        finally:
            inside.reset(token)
            timing(timer, (perf_counter() - start) * 1000.0)
        _count_many(hit, miss, found, keys)
        return found

    return aget_many


_SPECIAL = {
    "get": (_timed_get, _atimed_get),
    "get_many": (_timed_get_many, _atimed_get_many),
}


def instrument(backend: Any, alias: str) -> Any:
    """Replace the operations of one backend object by timed ones (once); returns it."""
    if backend in _instrumented:
        return backend
    cls, replaced = type(backend), []
    for op in OPS:
        sync_wrap, async_wrap = _SPECIAL.get(op, (_timed, _atimed))
        for attribute, wrap in ((op, sync_wrap), ("a" + op, async_wrap)):
            if callable(getattr(cls, attribute, None)) and attribute not in vars(backend):
                setattr(backend, attribute, wrap(alias, op, getattr(backend, attribute)))
                replaced.append(attribute)
    _instrumented[backend] = replaced
    return backend


def restore(backend: Any) -> None:
    """Remove the timed operations from one backend object."""
    for attribute in _instrumented.pop(backend, ()):
        vars(backend).pop(attribute, None)


def _create_connection(alias: str) -> Any:
    return instrument(type(caches).create_connection(caches, alias), alias)


def install() -> None:
    if vars(caches).get("create_connection") is not _create_connection:
        caches.create_connection = _create_connection  # type: ignore[method-assign]
    for alias in caches:
        if hasattr(caches._connections, alias):  # created already, in this thread
            instrument(caches[alias], alias)


def uninstall() -> None:
    vars(caches).pop("create_connection", None)
    for backend in list(_instrumented):
        restore(backend)
