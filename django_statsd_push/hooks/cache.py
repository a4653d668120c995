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


def _timed(alias: str, op: str, method: Any) -> Any:
    timer = names.cache_op(alias, op)

    def timed(*args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return method(*args, **kwargs)
        token = _inside.set(True)
        start = perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            statsd.timing(timer, (perf_counter() - start) * 1000.0)
            _inside.reset(token)

    return timed


def _atimed(alias: str, op: str, method: Any) -> Any:
    timer = names.cache_op(alias, op)

    async def atimed(*args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await method(*args, **kwargs)
        token = _inside.set(True)
        start = perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            statsd.timing(timer, (perf_counter() - start) * 1000.0)
            _inside.reset(token)

    return atimed


class _Counting:
    """Names for an operation that reports hits and misses."""

    def __init__(self, alias: str, op: str) -> None:
        self.timer = names.cache_op(alias, op)
        self.hit = names.cache_result(alias, op, "hit")
        self.miss = names.cache_result(alias, op, "miss")

    def get_done(self, value: Any, default: Any, start: float) -> Any:
        statsd.timing(self.timer, (perf_counter() - start) * 1000.0)
        if value is _MISSING:
            statsd.incr(self.miss)
            return default
        statsd.incr(self.hit)
        return value

    def many_done(self, found: Any, asked: int, start: float) -> None:
        statsd.timing(self.timer, (perf_counter() - start) * 1000.0)
        hits = len(found)
        if hits:
            statsd.incr(self.hit, hits)
        if asked > hits:
            statsd.incr(self.miss, asked - hits)


def _timed_get(alias: str, op: str, method: Any) -> Any:
    names_ = _Counting(alias, op)

    def get(key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return method(key, default, *args, **kwargs)
        token = _inside.set(True)
        start = perf_counter()
        try:
            value = method(key, _MISSING, *args, **kwargs)
        except BaseException:
            statsd.timing(names_.timer, (perf_counter() - start) * 1000.0)
            raise
        finally:
            _inside.reset(token)
        return names_.get_done(value, default, start)

    return get


def _atimed_get(alias: str, op: str, method: Any) -> Any:
    names_ = _Counting(alias, op)

    async def aget(key: Any, default: Any = None, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await method(key, default, *args, **kwargs)
        token = _inside.set(True)
        start = perf_counter()
        try:
            value = await method(key, _MISSING, *args, **kwargs)
        except BaseException:
            statsd.timing(names_.timer, (perf_counter() - start) * 1000.0)
            raise
        finally:
            _inside.reset(token)
        return names_.get_done(value, default, start)

    return aget


def _timed_get_many(alias: str, op: str, method: Any) -> Any:
    names_ = _Counting(alias, op)

    def get_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return method(keys, *args, **kwargs)
        keys = list(keys)  # a generator could be read only once
        token = _inside.set(True)
        start = perf_counter()
        try:
            found = method(keys, *args, **kwargs)
        except BaseException:
            statsd.timing(names_.timer, (perf_counter() - start) * 1000.0)
            raise
        finally:
            _inside.reset(token)
        names_.many_done(found, len(set(keys)), start)
        return found

    return get_many


def _atimed_get_many(alias: str, op: str, method: Any) -> Any:
    names_ = _Counting(alias, op)

    async def aget_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await method(keys, *args, **kwargs)
        keys = list(keys)
        token = _inside.set(True)
        start = perf_counter()
        try:
            found = await method(keys, *args, **kwargs)
        except BaseException:
            statsd.timing(names_.timer, (perf_counter() - start) * 1000.0)
            raise
        finally:
            _inside.reset(token)
        names_.many_done(found, len(set(keys)), start)
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
