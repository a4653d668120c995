"""The WSGI application: routes, request parsing, and the 400-not-500 promise.

A plain WSGI callable (no Django), so it runs under the bundled threaded server
(``statsd-push render``) or any WSGI server (see :mod:`.wsgi`).
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import time
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from operator import attrgetter, itemgetter
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import deadline, formats, graph, reader, registry
from .carbonlink import CarbonLink
from .errors import InputError, OverBudget
from .evaluator import Context, evaluate_target
from .events import EventStore, open_events
from .finder import Finder
from .settings import Limits, RenderSettings
from .tagdb import TagDB, open_tagdb
from .tagviews import EventViews, TagViews, ViewError
from .timeparse import parse_time

log = logging.getLogger(__name__)

GRAPHITE_VERSION = "1.1.8"  # the graphite-web API this one answers like (Grafana reads it)
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
MAX_BODY = 1 << 20


class Request:
    def __init__(self, environ: dict) -> None:
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.params: dict[str, list[str]] = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.body = b""
        if self.method == "POST":
            ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise InputError("invalid Content-Length") from None
            if length > MAX_BODY:
                raise InputError(f"request body larger than {MAX_BODY} bytes")
            body = self.body = environ["wsgi.input"].read(length) if length > 0 else b""
            if ctype in ("application/x-www-form-urlencoded", ""):
                try:
                    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise InputError("request body is not UTF-8") from None
                for key, values in form.items():
                    self.params.setdefault(key, []).extend(values)
            elif ctype == "multipart/form-data":  # what carbon's tag client (urllib3) sends
                for key, value in multipart_form(environ.get("CONTENT_TYPE", ""), body):
                    self.params.setdefault(key, []).append(value)
            elif ctype == "application/json" and body and not self.path.startswith("/events"):
                # (an event is a JSON body read by the events view, which names what is wrong with it)
                try:
                    doc = json.loads(body)
                except ValueError:
                    raise InputError("request body is not valid JSON") from None
                if isinstance(doc, dict):
                    for key, value in doc.items():
                        values = value if isinstance(value, list) else [value]
                        self.params.setdefault(key, []).extend(str(v) for v in values)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return self.params.get(name, [])

    def flag(self, name: str) -> bool:
        value = self.get(name)
        return value is not None and value.lower() not in ("0", "false", "")

    def integer(self, name: str, default: int) -> int:
        value = self.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InputError(f"parameter {name!r} must be an integer, got {value!r}") from None


def multipart_form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """(name, value) of each field of a multipart/form-data body (files are not accepted)."""
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart() or msg.defects:
        raise InputError("malformed multipart/form-data body")
    fields = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename() is not None:
            raise InputError("multipart/form-data body has a part without a field name, or a file")
        try:
            fields.append((str(name), (part.get_payload(decode=True) or b"").decode("utf-8")))
        except UnicodeDecodeError:
            raise InputError(f"form field {name!r} is not UTF-8") from None
    return fields


class Response:
    def __init__(self, body: bytes | str, content_type: str = "application/json", status: str = "200 OK",
                 headers: Iterable[tuple[str, str]] = ()) -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.status = status
        self.headers = [("Content-Type", content_type), ("Content-Length", str(len(self.body))), *headers]


def json_response(obj, request: Request | None = None) -> Response:
    return json_text_response(formats.strict_json(obj), request)


def json_text_response(body: str, request: Request | None = None) -> Response:
    callback = request.get("jsonp") if request else None
    if callback:
        return Response(f"{formats.check_jsonp(callback)}({body})", "text/javascript")
    return Response(body, "application/json")


def text(body: str, status: str = "200 OK") -> Response:
    return Response(body, "text/plain; charset=utf-8", status)


class RenderApp:
    """The render API over one Whisper root."""

    def __init__(self, whisper_root: str, limits: Limits | None = None, static_dir: str | None = STATIC_DIR,
                 clock: Callable[[], float] = time.time, carbonlink: CarbonLink | None = None,
                 tagdb: TagDB | None = None, events: EventStore | None = None) -> None:
        if not os.path.isdir(whisper_root):
            raise ValueError(f"whisper root {whisper_root!r} is not a directory")
        self.limits = limits or Limits()
        self.finder = Finder(whisper_root, max_nodes=self.limits.max_series)
        self.static_dir = static_dir
        self.clock = clock
        self.carbonlink = carbonlink
        self.tagdb, self.events = tagdb, events
        self.routes: dict[str, Callable[[Request], Response]] = {
            "/render": self.render,
            "/metrics/find": self.find,
            "/metrics": self.find,
            "/metrics/expand": self.expand,
            "/metrics/index.json": self.index,
            "/version": lambda r: text(GRAPHITE_VERSION + "\n"),
            "/functions": self.functions,
        }
        # /tags/* and /events/*: graphite-web's TagDB and events APIs (tagviews.py)
        self.tag_views = TagViews(tagdb, self.limits.max_series) if tagdb is not None else None
        self.event_views = EventViews(events, clock) if events is not None else None
        for views in (self.tag_views, self.event_views):
            for route, view in (views.routes() if views is not None else {}).items():
                self.routes[route] = self._json_view(view)
        for route in ("/tags/autoComplete/tags", "/tags/autoComplete/values", "/tags", "/events/get_data"):
            self.routes.setdefault(route, lambda r: json_response([], r))  # no store: nothing to list

    def _json_view(self, view: Callable, *args) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            try:
                return json_response(view(request, *args), request)
            except ViewError as exc:
                return text(f"{exc}\n", exc.status)
        return handle

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        try:
            with deadline.scope(self.limits.time_budget, self.limits.regex_budget):
                response = self.dispatch(environ)
        except InputError as exc:
            response = text(f"Bad request: {exc}\n", "400 Bad Request")
        except OverBudget as exc:
            log.warning("render API: %s (%s?%.200s)", exc, environ.get("PATH_INFO"), environ.get("QUERY_STRING"))
            response = text(f"Service unavailable: {exc}\n", "503 Service Unavailable")
        except Exception:  # a bug, not bad input: log it, never show a trace to the client
            log.exception("render API error for %s", environ.get("PATH_INFO"))
            response = text("Internal error (logged by the server)\n", "500 Internal Server Error")
        start_response(response.status, response.headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [response.body]

    def dispatch(self, environ: dict) -> Response:
        request = Request(environ)
        if request.method not in ("GET", "POST", "HEAD", "DELETE"):
            return text("Method not allowed\n", "405 Method Not Allowed")
        path = request.path.rstrip("/") or "/"
        handler = self.routes.get(path)
        if handler is None and path.startswith("/tags/") and self.tag_views is not None:
            handler = self._json_view(self.tag_views.tag_details, path[len("/tags/"):])
        if handler is None and path.startswith("/events/") and self.event_views is not None:
            handler = self._json_view(self.event_views.detail, path[len("/events/"):])
        if request.method == "DELETE" and not path.startswith("/events/"):
            return text("Method not allowed\n", "405 Method Not Allowed")
        if handler is not None:
            return handler(request)
        if path.startswith("/functions/"):
            return self.function_detail(request, path[len("/functions/"):])
        if path == "/" or path.startswith("/static/"):
            return self.static(path)
        return text(f"Not found: {request.path}\n", "404 Not Found")

    # -- /render ---------------------------------------------------------------------
    def _tz(self, request: Request):
        name = request.get("tz")
        if not name:
            return timezone.utc
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {name!r}") from None

    def _times(self, request: Request):
        tz = self._tz(request)
        now = datetime.fromtimestamp(self.clock(), tz)
        if request.get("now"):
            now = parse_time(request.get("now"), now, tz)
        until = parse_time(request.get("until") or "now", now, tz)
        start = parse_time(request.get("from") or "-1d", now, tz)
        start, end = min(start, until), max(start, until)
        if int(start.timestamp()) == int(end.timestamp()):
            raise InputError("empty time range: from and until are the same time")
        return tz, int(start.timestamp()), int(end.timestamp()), int(now.timestamp())

    def render(self, request: Request) -> Response:
        targets = request.getlist("target") or request.getlist("target[]")
        fmt = request.get("format")
        if fmt is None:
            fmt = "pickle" if "pickle" in request.params else "raw" if "rawData" in request.params else "png"
        if fmt not in formats.FORMATS + graph.FORMATS:
            raise InputError(f"unsupported format {fmt!r} (supported: {', '.join(formats.FORMATS + graph.FORMATS)})")
        graph_params = graph.parse_graph_params({k: v[-1] for k, v in request.params.items()}) \
            if fmt in graph.FORMATS else None
        tz, start, end, now = self._times(request)
        try:
            xff = float(request.get("xFilesFactor") or 0)
        except ValueError:
            raise InputError("xFilesFactor must be a number") from None
        if not 0 <= xff <= 1:
            raise InputError("xFilesFactor must be between 0 and 1")
        max_data_points = request.integer("maxDataPoints", 0)
        ctx = Context(self.finder, start, end, now, tz=tz, xff=xff, limits=self.limits, carbonlink=self.carbonlink,
                      tagdb=self.tagdb, events=self.events)
        data = []
        for target in targets:
            if target.strip():
                data.extend(evaluate_target(ctx, target))
        if fmt == "json" and max_data_points > 0:
            data = formats.apply_max_data_points(data, max_data_points)
        points = formats.count_points(data)
        if points > self.limits.max_points:
            raise InputError(f"response would hold {points} points, more than {self.limits.max_points} "
                             "(narrow the range or use maxDataPoints)")
        if graph_params is not None:
            try:
                image = graph.render_image(data, graph_params, fmt, tz)
            except graph.ImageUnavailable as exc:
                return text(f"{exc}\n", "501 Not Implemented")
            if fmt == "svg" and request.get("jsonp"):  # graphite-web: the SVG as a JSON string
                return json_text_response(json.dumps(image.decode("utf-8")), request)
            return Response(image, graph.CONTENT_TYPES[fmt])
        if fmt == "json":
            # graphite-web reads noNullPoints by its presence alone (even "=false")
            body = formats.render_json(data, no_null_points="noNullPoints" in request.params)
            return json_text_response(body, request)
        if fmt == "csv":
            return Response(formats.render_csv(data, tz), "text/csv")
        if fmt == "raw":
            return Response(formats.render_raw(data), "text/plain")
        return Response(formats.render_pickle(data), "application/pickle")

    # -- /metrics --------------------------------------------------------------------
    def find(self, request: Request) -> Response:
        query = request.get("query")
        if query is None:
            raise InputError("missing required parameter 'query'")
        if not query:
            raise InputError("required parameter 'query' is empty")
        fmt = request.get("format", "treejson")
        if fmt == "completer":
            query = query.replace("..", "*.")
            if not query.endswith("*"):
                query += "*"
        leaves_only = request.flag("leavesOnly")
        nodes = self.finder.find(query, leaves_only=leaves_only)
        nodes.sort(key=attrgetter("name"))
        base = query.rsplit(".", 1)[0] + "." if "." in query else ""
        if fmt == "treejson":
            return json_text_response(tree_json(nodes, base, wildcards=request.flag("wildcards")), request)
        if fmt == "completer":
            metrics = [{"path": n.path + ("" if n.is_leaf else "."), "name": n.name, "is_leaf": str(int(n.is_leaf))}
                       for n in nodes]
            if len(metrics) > 1 and request.flag("wildcards"):
                metrics.append({"name": "*"})
            return json_response({"metrics": metrics}, request)
        if fmt == "json":
            return json_response(sorted((self._node_info(n) for n in nodes), key=itemgetter("path")), request)
        if fmt == "nodelist":
            position = request.integer("position", -1)
            try:
                return json_response({"nodes": sorted({n.path.split(".")[position] for n in nodes})}, request)
            except IndexError:
                raise InputError(f"position {position} is past the last node of a match") from None
        raise InputError(f"invalid value for 'format': {fmt!r} (treejson, completer, json or nodelist)")

    def _node_info(self, node) -> dict:
        """graphite-web's json find entry: a leaf carries the interval its file can hold data
        for (from now minus its longest retention to its last modification)."""
        info: dict = {"path": node.path, "is_leaf": node.is_leaf}
        if node.is_leaf:
            try:
                retention = reader.read_header(node.fs_path).max_retention
                modified = os.stat(node.fs_path).st_mtime
            except (OSError, reader.CorruptWhisperFile):
                info["intervals"] = []
                return info
            start = self.clock() - retention
            info["intervals"] = [{"start": start, "end": max(modified, start)}]
        return info

    def expand(self, request: Request) -> Response:
        queries = request.getlist("query")
        if not queries:
            raise InputError("missing required parameter 'query'")
        leaves_only = request.flag("leavesOnly")
        results = {q: sorted({n.path for n in self.finder.find(q) if n.is_leaf or not leaves_only}) for q in queries}
        if request.flag("groupByExpr"):
            return json_response({"results": results}, request)
        return json_response({"results": sorted(set().union(*results.values()))}, request)

    def index(self, request: Request) -> Response:
        return json_response(self.finder.index(), request)

    # -- /functions ------------------------------------------------------------------
    def functions(self, request: Request) -> Response:
        return json_response(registry.catalogue(request.get("group"), request.flag("grouped")), request)

    def function_detail(self, request: Request, name: str) -> Response:
        info = registry.FUNCTIONS.get(name)
        if info is None:
            return text(f"Function not found: {name}\n", "404 Not Found")
        return json_response(info.to_json(name), request)

    # -- static dashboard --------------------------------------------------------------
    def static(self, path: str) -> Response:
        rel = "index.html" if path == "/" else path[len("/static/"):]
        full = None
        if self.static_dir and os.path.isdir(self.static_dir):
            root = os.path.realpath(self.static_dir)
            candidate = os.path.realpath(os.path.join(root, rel))
            if candidate.startswith(root + os.sep) and os.path.isfile(candidate):
                full = candidate
        if full is None:
            if path == "/":
                return text("django-statsd-push render API (Graphite-compatible). Try /render, /metrics/find.\n")
            return text("Not found\n", "404 Not Found")
        with open(full, "rb") as fh:
            body = fh.read()
        ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        return Response(body, ctype)


_BRANCH = ', "allowChildren": 1, "expandable": 1, "leaf": 0}'
_LEAF = ', "allowChildren": 0, "expandable": 0, "leaf": 1}'


def tree_json(nodes, base_path: str, wildcards: bool = False) -> str:
    """graphite-web's treejson document (branches first, then leaves, one entry per name),
    written directly: for a 1000-node answer this is several times faster than building
    dicts for ``json.dumps``, and the bytes are the same."""
    head: list[str] = []
    if len(nodes) > 1 and wildcards:
        kind = _BRANCH if any(not n.is_leaf for n in nodes) else _LEAF
        head.append('{"text": "*", "id": ' + encode_basestring_ascii(base_path + "*") + kind)
    seen: set[str] = set()
    branches: list[str] = []
    leaves: list[str] = []
    for node in nodes:
        if node.name in seen:
            continue
        seen.add(node.name)
        entry = '{"text": ' + encode_basestring_ascii(node.name) + ', "id": ' + encode_basestring_ascii(
            base_path + node.name)
        if node.is_leaf:
            leaves.append(entry + _LEAF)
        else:
            branches.append(entry + _BRANCH)
    return "[" + ", ".join(head + branches + leaves) + "]"


def create_app(settings: RenderSettings) -> RenderApp:
    """The app for these settings: one construction for the CLI and for :mod:`.wsgi`.

    The tag database (an SQLite file or ``redis://`` URL, default ``tagdb.sqlite3`` beside
    the Whisper root) indexes the tagged series already on disk at start; carbon only
    posts new ones. Events live in their own SQLite file (default ``events.sqlite3``).
    """
    whisper_root = settings.whisper_root
    if not os.path.isdir(whisper_root):
        raise ValueError(f"whisper root {whisper_root!r} is not a directory")
    address = settings.carbonlink_address
    tags = open_tagdb(whisper_root, settings.tagdb)
    indexed = tags.index_whisper(whisper_root)
    if indexed:
        log.info("tag database: indexed %d tagged series found under %s", indexed, whisper_root)
    events = open_events(whisper_root, settings.events_db, settings.events_retention_days * 86400)
    return RenderApp(whisper_root, settings.limits, settings.static_dir or STATIC_DIR,
                     carbonlink=CarbonLink(*address) if address else None, tagdb=tags, events=events)
