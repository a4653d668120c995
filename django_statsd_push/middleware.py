"""Request metrics, sent in one packed datagram per request.

Put ``django_statsd_push.middleware.StatsdMiddleware`` FIRST in ``MIDDLEWARE``: it makes
a batch current for the whole request, so metrics from the other middleware, the view
and the hooks are buffered and leave together, with the request's own metrics, when
the response is finished (for streaming responses: when the server closes it).

Works under WSGI and ASGI without a thread hop: Django calls ``__call__`` directly
for a sync chain and awaits ``__acall__`` for an async one.
"""

from __future__ import annotations

import logging
from time import perf_counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase

from django_statsd_push import names
from django_statsd_push.client import (
    TIMING_VALUE, Batch, State, activate_batch, deactivate_batch, statsd,
)

logger = logging.getLogger("django_statsd_push")

# Raised on purpose to produce a 404/403 response: not errors of the application.
NOT_EXCEPTIONS = (Http404, PermissionDenied)


def view_name(request: HttpRequest) -> str:
    """URL route name (with namespaces), else ``module.func``; ``unresolved`` if none."""
    match = getattr(request, "resolver_match", None)
    # ResolverMatch.view_name is already "ns:route" or the dotted view path.
    return match.view_name if match is not None else "unresolved"


class StatsdMiddleware:
    """Times each request and sends its metrics, and those emitted while it ran, together.

    Put it first::

        MIDDLEWARE = [
            "django_statsd_push.middleware.StatsdMiddleware",
            "django.middleware.security.SecurityMiddleware",
            ...
        ]

    Sends ``request.<view>.<METHOD>`` (and ``.request_bytes``, ``.response_bytes``,
    with the DB hook ``.db_queries``, ``.db_time``), ``response.<status>``,
    ``response.<N>xx`` and ``request.exception.<Class>``; nothing for requests matched
    by ``STATSD_EXCLUDE_PATHS`` / ``STATSD_EXCLUDE_VIEWS``.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    # Django turns exceptions into responses inside get_response, so it does not raise
    # here; the batch only has to stop being current whatever happens.

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        batch = Batch()
        token = activate_batch(batch)
        start = perf_counter()
        try:
            response = self.get_response(request)
        finally:
            deactivate_batch(token)
        self.finish(request, response, start, batch)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        batch = Batch()
        token = activate_batch(batch)
        start = perf_counter()
        try:
            response = await self.get_response(request)
        finally:
            deactivate_batch(token)
        self.finish(request, response, start, batch)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # Called by Django inside the request (so into the current batch); returning
        # None lets Django's own handling produce the 500.
        if not isinstance(exception, NOT_EXCEPTIONS):
            statsd.incr(names.request_exception(type(exception).__name__))

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, start: float, batch: Batch
    ) -> None:
        """Emit the request's metrics and send the batch now, or when a stream closes."""
        try:
            if not response.streaming:
                self.emit(request, response, start, batch, len(response.content))
                return
            size = StreamSize(response, batch)
            close = response.close

            def close_and_emit() -> None:
                try:
                    close()
                finally:
                    self.emit(request, response, start, batch, size.total(response))

            # Servers must close a response (PEP 3333; Django's ASGI handler does too),
            # and FileResponse under wsgi.file_wrapper never iterates
            # streaming_content, so closing is the one moment every stream reaches.
            response.close = close_and_emit  # type: ignore[method-assign]
        except Exception:
            logger.debug("statsd: request metrics dropped", exc_info=True)

    def emit(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        start: float,
        batch: Batch,
        response_bytes: int,
    ) -> None:
        elapsed_ms = (perf_counter() - start) * 1000.0
        state = statsd.fast
        try:
            exclusions = (state or statsd.state).exclusions
            if exclusions is not None and exclusions.excludes(request):
                return  # the batch goes unsent, with what the view and hooks put in it
            request_bytes = _request_bytes(request)
        except Exception:
            logger.debug("statsd: request metrics dropped", exc_info=True)
            return
        if state is not None:
            # The usual case: this route's heads and constant lines are known.
            try:
                key = (view_name(request), request.method, response.status_code)
                head, tail, sizes, responses, db = (
                    state.heads.memo.get(key) or _route(state, *key)
                )
                lines = batch.lines
                lines.append(head + TIMING_VALUE % elapsed_ms + tail)
                lines.append(sizes[0] + TIMING_VALUE % request_bytes + sizes[1])
                lines.append(sizes[2] + TIMING_VALUE % response_bytes + sizes[3])
                lines += responses
                if db:
                    lines.append(db[0] + TIMING_VALUE % batch.db_queries + db[1])
                    lines.append(db[2] + TIMING_VALUE % batch.db_time + db[3])
            except Exception:
                logger.debug("statsd: request metrics dropped", exc_info=True)
            finally:
                statsd.send_batch(batch)
            return
        token = activate_batch(batch)
        try:
            state = statsd.state
            view, method = view_name(request), request.method
            statsd.timing(names.request(view, method), elapsed_ms)
            statsd.timing(names.request(view, method, "request_bytes"), request_bytes)
            statsd.timing(names.request(view, method, "response_bytes"), response_bytes)
            for metric in names.responses(response.status_code, state.tag_format is not None):
                statsd.incr(metric)
            if "db" in state.hooks:
                statsd.timing(names.request(view, method, "db_queries"), batch.db_queries)
                statsd.timing(names.request(view, method, "db_time"), batch.db_time)
        except Exception:
            logger.debug("statsd: request metrics dropped", exc_info=True)
        finally:
            deactivate_batch(token)
            statsd.send_batch(batch)


def _request_bytes(request: HttpRequest) -> int:
    """The body size the client declared (reading the body would consume it)."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


class StreamSize:
    """Counts a streaming response's bytes as the server iterates it, with the request's
    batch current while each chunk is produced, so the metrics the stream's code emits
    leave with the request's (and go unsent with an excluded request's).

    A ``FileResponse`` is left alone: under ``wsgi.file_wrapper`` the server sends the
    file without iterating, and replacing its content would lose that; its
    ``Content-Length`` (set from the file's size) is used instead, as it is for any
    stream the server never iterated.
    """

    __slots__ = ("bytes", "iterated", "batch")

    def __init__(self, response: Any, batch: Batch) -> None:
        self.bytes, self.iterated, self.batch = 0, False, batch
        if isinstance(response, FileResponse):
            return
        content = response.streaming_content
        response.streaming_content = (
            self._acount(content) if getattr(response, "is_async", False) else self._count(content)
        )

    def _count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self.iterated = True
        chunks = iter(chunks)
        while True:
            token = activate_batch(self.batch)
            try:
                chunk = next(chunks, None)
            finally:
                deactivate_batch(token)
            if chunk is None:
                return
            self.bytes += len(chunk)
            yield chunk

    async def _acount(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        self.iterated = True
        chunks = aiter(chunks)
        while True:
            token = activate_batch(self.batch)
            try:
                chunk = await anext(chunks, None)
            finally:
                deactivate_batch(token)
            if chunk is None:
                return
            self.bytes += len(chunk)
            yield chunk

    def total(self, response: Any) -> int:
        if self.iterated:
            return self.bytes
        try:
            return int(response.get("Content-Length") or 0)
        except ValueError:
            return 0


ROUTES_MAXLEN = 4096


def _route(state: State, view: str, method: str | None, status: int) -> tuple:
    """One (view, method, status)'s line heads and constant lines, kept in the heads' memo.

    The same metrics, in the same order, as the general path of ``emit``: the timer's
    head and tail, the heads and tails of the two body sizes, the response counters
    (whole lines: always 1), then the heads and tails of the two DB figures if that
    hook is on.
    """
    heads = state.heads
    responses = names.responses(status, state.tag_format is not None)
    sizes = heads[names.request(view, method, "request_bytes")][:2]
    sizes += heads[names.request(view, method, "response_bytes")][:2]
    db: tuple[str, ...] = ()
    if "db" in state.hooks:
        db = heads[names.request(view, method, "db_queries")][:2]
        db += heads[names.request(view, method, "db_time")][:2]
    counters = tuple(heads[metric][2] for metric in responses)
    route = (*heads[names.request(view, method)][:2], sizes, counters, db)
    if len(heads.memo) >= ROUTES_MAXLEN:
        heads.memo.clear()
    heads.memo[(view, method, status)] = route
    return route
