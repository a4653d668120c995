"""Cache hook: time every operation on every alias in ``CACHES`` as ``cache.<alias>.<op>``.

How: ``django.core.cache.caches`` creates one backend object per alias (and thread).
With the hook on, the handler hands out a :class:`TimedCache` around that object
instead: the public operations (and their async ``a*`` forms) are timed, everything
else (``default_timeout``, ``key_prefix``, ``make_key``, ``_cache``...) is read from
and written to the backend object itself, and ``isinstance(cache, RedisCache)`` still
holds. The backend object and its class are never modified.

Why a handle and not patched methods: operations that a backend implements through
others (``get_or_set`` calling ``get`` and ``add``, LocMem's ``get_many`` calling
``get``, ``aget`` running ``get`` in a thread, DatabaseCache's ``get`` calling
``get_many``) run inside the backend, past the handle, so each call is recorded once,
under the operation the caller asked for, with no per-call bookkeeping.

Choices:

* ``aget`` and the other async forms are reported under the sync name (``get``): a
  dashboard wants one series per operation, whichever API the view used.
* ``get`` hits and misses are told apart with a private sentinel default, so a cached
  ``None`` is a hit; ``get_many`` sends the number of distinct keys found and missed.
* A failing operation (server down) is timed and its exception reaches the caller.
* Handles already created when the hook is installed are replaced in the installing
  thread; a reference taken before (``c = caches["x"]``) stays untimed.
"""

from __future__ import annotations

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

# The wrappers below are on the hot path of every cache call: they bind what they use
# as locals of the closure; the sync and async forms differ only by ``await``.


def _timed(alias: str, op: str, method: Any) -> Any:
    timer, timing = names.cache_op(alias, op), statsd.timing

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            timing(timer, (perf_counter() - start) * 1000.0)

    return timed


def _atimed(alias: str, op: str, method: Any) -> Any:
    timer, timing = names.cache_op(alias, op), statsd.timing

    async def atimed(*args: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
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
    (timer, hit, miss), timing, incr = _names(alias, op), statsd.timing, statsd.incr

    def get(key: Any, default: Any = None, version: Any = None, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            # Django's signature; a third-party backend's extra options pass through.
            value = (
                method(key, _MISSING, version, **kwargs) if kwargs
                else method(key, _MISSING, version)
            )
        finally:
            timing(timer, (perf_counter() - start) * 1000.0)
        if value is _MISSING:
            incr(miss)
            return default
        incr(hit)
        return value

    return get


def _atimed_get(alias: str, op: str, method: Any) -> Any:
    (timer, hit, miss), timing, incr = _names(alias, op), statsd.timing, statsd.incr

    async def aget(key: Any, default: Any = None, version: Any = None, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            value = await method(key, _MISSING, version, **kwargs)
        finally:
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
    (timer, hit, miss), timing = _names(alias, op), statsd.timing

    def get_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        keys = list(keys)  # a generator could be read only once
        start = perf_counter()
        try:
            found = method(keys, *args, **kwargs)
        finally:
            timing(timer, (perf_counter() - start) * 1000.0)
        _count_many(hit, miss, found, keys)
        return found

    return get_many


def _atimed_get_many(alias: str, op: str, method: Any) -> Any:
    (timer, hit, miss), timing = _names(alias, op), statsd.timing

    async def aget_many(keys: Any, *args: Any, **kwargs: Any) -> Any:
        keys = list(keys)
        start = perf_counter()
        try:
            found = await method(keys, *args, **kwargs)
        finally:
            timing(timer, (perf_counter() - start) * 1000.0)
        _count_many(hit, miss, found, keys)
        return found

    return aget_many


_SPECIAL = {
    "get": (_timed_get, _atimed_get),
    "get_many": (_timed_get_many, _atimed_get_many),
}


class TimedCache:
    """The handle ``caches[alias]`` returns with the hook on; see the module docstring."""

    __slots__ = ("_backend", "_alias", "__dict__")  # __dict__ holds the timed operations

    def __init__(self, backend: Any, alias: str) -> None:
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_alias", alias)
        timed, cls = self.__dict__, type(backend)
        for op in OPS:
            sync_wrap, async_wrap = _SPECIAL.get(op, (_timed, _atimed))
            for attribute, wrap in ((op, sync_wrap), ("a" + op, async_wrap)):
                if callable(getattr(cls, attribute, None)):
                    timed[attribute] = wrap(alias, op, getattr(backend, attribute))

    def __getattr__(self, name: str) -> Any:  # whatever is not a timed operation
        return getattr(self._backend, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._backend, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._backend, name)

    def __contains__(self, key: Any) -> bool:
        return self.has_key(key)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(handle, LocMemCache) keeps working
        return type(self._backend)

    def __repr__(self) -> str:
        return f"<TimedCache {self._alias!r} {self._backend!r}>"


def unwrap(cache: Any) -> Any:
    """The backend object behind a handle (the object itself if it is not one)."""
    return object.__getattribute__(cache, "_backend") if type(cache) is TimedCache else cache


# What ``caches.create_connection`` was on the instance before install (another
# library's wrapper), or None for Django's own method.
_previous: Any = None


def _create_connection(alias: str) -> TimedCache:
    if _previous is not None:
        return TimedCache(_previous(alias), alias)
    return TimedCache(type(caches).create_connection(caches, alias), alias)


def _replace_created(wrap: bool) -> None:
    """Swap the handles already created in this thread (Django's own storage)."""
    for alias in caches:
        if hasattr(caches._connections, alias):
            current = getattr(caches._connections, alias)
            if wrap and type(current) is not TimedCache:
                setattr(caches._connections, alias, TimedCache(current, alias))
            elif not wrap:
                setattr(caches._connections, alias, unwrap(current))


def install() -> None:
    global _previous
    current = vars(caches).get("create_connection")
    if current is not _create_connection:
        _previous = current
        caches.create_connection = _create_connection  # type: ignore[method-assign]
    _replace_created(wrap=True)


def uninstall() -> None:
    global _previous
    if vars(caches).get("create_connection") is _create_connection:
        if _previous is None:
            del caches.create_connection
        else:
            caches.create_connection = _previous  # type: ignore[method-assign]
        _previous = None
    _replace_created(wrap=False)
