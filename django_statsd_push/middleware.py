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
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase

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
                self.emit(request, response, start, batch)
                return
            close = response.close

            def close_and_emit() -> None:
                try:
                    close()
                finally:
                    self.emit(request, response, start, batch)

            # Servers must close a response (PEP 3333; Django's ASGI handler does too),
            # and FileResponse under wsgi.file_wrapper never iterates
            # streaming_content, so closing is the one moment every stream reaches.
            response.close = close_and_emit  # type: ignore[method-assign]
        except Exception:
            logger.debug("statsd: request metrics dropped", exc_info=True)

    def emit(
        self, request: HttpRequest, response: HttpResponseBase, start: float, batch: Batch
    ) -> None:
        elapsed_ms = (perf_counter() - start) * 1000.0
        state = statsd.fast
        if state is not None:
            # The usual case: this route's heads and constant lines are known.
            try:
                key = (view_name(request), request.method, response.status_code)
                head, tail, responses, db = state.heads.memo.get(key) or _route(state, *key)
                lines = batch.lines
                lines.append(head + TIMING_VALUE % elapsed_ms + tail)
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


ROUTES_MAXLEN = 4096


def _route(state: State, view: str, method: str | None, status: int) -> tuple:
    """One (view, method, status)'s line heads and constant lines, kept in the heads' memo.

    The same metrics, in the same order, as the general path of ``emit``: the timer's
    head and tail, the response counters (whole lines: always 1), then the heads and
    tails of the two DB figures if that hook is on.
    """
    heads = state.heads
    responses = names.responses(status, state.tag_format is not None)
    db: tuple[str, ...] = ()
    if "db" in state.hooks:
        db = heads[names.request(view, method, "db_queries")][:2]
        db += heads[names.request(view, method, "db_time")][:2]
    counters = tuple(heads[metric][2] for metric in responses)
    route = (*heads[names.request(view, method)][:2], counters, db)
    if len(heads.memo) >= ROUTES_MAXLEN:
        heads.memo.clear()
    heads.memo[(view, method, status)] = route
    return route
