"""The HTTP views of ``/tags/*`` (graphite-web's TagDB API, which carbon's tag client
calls) and ``/events/*`` (graphite-web's events API, which Grafana's annotations call).

Each view takes the request and returns what is sent as JSON; bad input is an
InputError (HTTP 400), a wrong method or a missing object a ``ViewError``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from .errors import InputError
from .events import EventStore, parse_event
from .tagdb import TagDB
from .timeparse import parse_time



class Request(Protocol):
    """What these views read of the app's request (``app.Request`` is one); a protocol so
    the views need not import the app that routes to them."""

    method: str
    path: str
    body: bytes

    def get(self, name: str, default: str | None = None) -> str | None: ...

    def getlist(self, name: str) -> list[str]: ...

    def integer(self, name: str, default: int) -> int: ...

AUTOCOMPLETE_LIMIT = 100  # graphite-web's TAGDB_AUTOCOMPLETE_LIMIT
MAX_PATHS = 10_000  # paths in one tagMultiSeries / delSeries request


class ViewError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _method(request: Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise ViewError("405 Method Not Allowed", f"{request.path} accepts {' or '.join(allowed)}")


def _list(request: Request, name: str) -> list[str]:
    """``name=a&name=b`` or the ``name[]=`` form jQuery and PHP send."""
    return request.getlist(name) or request.getlist(name + "[]")


def _limit(request: Request, default: int | None) -> int | None:
    value = request.integer("limit", default or 0)
    if value < 0:
        raise InputError("parameter 'limit' must not be negative")
    return value or default


class TagViews:
    def __init__(self, tagdb: TagDB, max_series: int) -> None:
        self.tagdb = tagdb
        self.max_series = max_series

    def routes(self) -> dict[str, Callable[[Request], object]]:
        return {
            "/tags/tagSeries": self.tag_series, "/tags/tagMultiSeries": self.tag_multi_series,
            "/tags/delSeries": self.del_series, "/tags/findSeries": self.find_series,
            "/tags/autoComplete/tags": self.auto_complete_tags,
            "/tags/autoComplete/values": self.auto_complete_values, "/tags": self.list_tags,
        }

    def tag_series(self, request: Request) -> object:
        _method(request, "POST")
        path = request.get("path")
        if not path:
            raise InputError("no path specified")
        return self.tagdb.tag_series(path)

    def _paths(self, request: Request) -> list[str]:
        paths = _list(request, "path")
        if not paths:
            raise InputError("no paths specified")
        if len(paths) > MAX_PATHS:
            raise InputError(f"more than {MAX_PATHS} paths in one request")
        return paths

    def tag_multi_series(self, request: Request) -> object:
        _method(request, "POST")
        return self.tagdb.tag_multi_series(self._paths(request))

    def del_series(self, request: Request) -> object:
        _method(request, "POST")
        return self.tagdb.del_multi_series(self._paths(request))

    def find_series(self, request: Request) -> object:
        exprs = _list(request, "expr")
        if not exprs:
            raise InputError("no tag expressions specified")
        return self.tagdb.find_series(exprs, limit=self.max_series)

    def list_tags(self, request: Request) -> object:
        _method(request, "GET", "HEAD")
        return self.tagdb.list_tags(request.get("filter"), _limit(request, None))

    def tag_details(self, request: Request, tag: str) -> object:
        _method(request, "GET", "HEAD")
        found = self.tagdb.get_tag(tag, request.get("filter"), _limit(request, None))
        if found is None:
            raise ViewError("404 Not Found", f"tag {tag!r} not found")
        return found

    def auto_complete_tags(self, request: Request) -> object:
        return self.tagdb.auto_complete_tags(_list(request, "expr"), request.get("tagPrefix"),
                                             _limit(request, AUTOCOMPLETE_LIMIT))

    def auto_complete_values(self, request: Request) -> object:
        tag = request.get("tag")
        if not tag:
            raise InputError("no tag specified")
        return self.tagdb.auto_complete_values(_list(request, "expr"), tag, request.get("valuePrefix"),
                                               _limit(request, AUTOCOMPLETE_LIMIT))


class EventViews:
    def __init__(self, store: EventStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def routes(self) -> dict[str, Callable[[Request], object]]:
        return {"/events": self.events, "/events/get_data": self.get_data, "/events/get_dat": self.get_data}

    def events(self, request: Request) -> object:
        """POST: record one event (``{"what", "tags", "data", "when"}``); GET: list them."""
        if request.method == "POST":
            event = parse_event(request.body, self.clock())
            return {"id": self.store.add(event)}
        return self.get_data(request)

    def get_data(self, request: Request) -> object:
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        start = parse_time(request.get("from"), now, timezone.utc) if request.get("from") else None
        end = parse_time(request.get("until"), now, timezone.utc) if request.get("until") else now
        tags = request.get("tags")
        set_operation = request.get("set")
        if set_operation not in (None, "", "union", "intersection"):
            raise InputError(f"parameter 'set' must be union or intersection, got {set_operation!r}")
        return self.store.find(int(start.timestamp()) if start else 0, int(end.timestamp()),
                               tags.split() if tags is not None else None, set_operation)

    def detail(self, request: Request, event_id: str) -> object:
        if not event_id.isdigit() or len(event_id) > 18:
            raise ViewError("404 Not Found", f"no event {event_id!r}")
        if request.method == "DELETE":
            if not self.store.delete(int(event_id)):
                raise ViewError("404 Not Found", f"no event {event_id}")
            return {"deleted": int(event_id)}
        _method(request, "GET", "HEAD")
        event = self.store.get(int(event_id))
        if event is None:
            raise ViewError("404 Not Found", f"no event {event_id}")
        return event
