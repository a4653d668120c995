"""The WSGI application: routes, request parsing, and the 400-not-500 promise.

A plain WSGI callable (no Django), so it runs under the bundled threaded server
(``statsd-push render``) or any WSGI server::

    gunicorn 'django_statsd_push.render.app:create_app(whisper_root="/var/lib/graphite/whisper")'
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import time
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from operator import attrgetter
from datetime import datetime, timezone
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import formats, graph, registry
from .carbonlink import CarbonLink
from .errors import InputError
from .evaluator import Context, Limits, evaluate_target
from .finder import Finder
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
        if self.method == "POST":
            ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise InputError("invalid Content-Length") from None
            if length > MAX_BODY:
                raise InputError(f"request body larger than {MAX_BODY} bytes")
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            if ctype in ("application/x-www-form-urlencoded", ""):
                try:
                    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise InputError("request body is not UTF-8") from None
                for key, values in form.items():
                    self.params.setdefault(key, []).extend(values)
            elif ctype == "application/json" and body:
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
                 clock: Callable[[], float] = time.time, carbonlink: CarbonLink | None = None) -> None:
        if not os.path.isdir(whisper_root):
            raise ValueError(f"whisper root {whisper_root!r} is not a directory")
        self.limits = limits or Limits()
        self.finder = Finder(whisper_root, max_nodes=self.limits.max_series)
        self.static_dir = static_dir
        self.clock = clock
        self.carbonlink = carbonlink
        self.routes: dict[str, Callable[[Request], Response]] = {
            "/render": self.render,
            "/metrics/find": self.find,
            "/metrics": self.find,
            "/metrics/expand": self.expand,
            "/metrics/index.json": self.index,
            "/version": lambda r: text(GRAPHITE_VERSION + "\n"),
            "/functions": self.functions,
            "/tags/autoComplete/tags": lambda r: json_response([], r),
            "/tags/autoComplete/values": lambda r: json_response([], r),
            "/tags": lambda r: json_response([], r),
            "/events/get_data": lambda r: json_response([], r),
        }

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        try:
            response = self.dispatch(environ)
        except InputError as exc:
            response = text(f"Bad request: {exc}\n", "400 Bad Request")
        except Exception:  # a bug, not bad input: log it, never show a trace to the client
            log.exception("render API error for %s", environ.get("PATH_INFO"))
            response = text("Internal error (logged by the server)\n", "500 Internal Server Error")
        start_response(response.status, response.headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [response.body]

    def dispatch(self, environ: dict) -> Response:
        request = Request(environ)
        if request.method not in ("GET", "POST", "HEAD"):
            return text("Method not allowed\n", "405 Method Not Allowed")
        path = request.path.rstrip("/") or "/"
        handler = self.routes.get(path)
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
        ctx = Context(self.finder, start, end, now, tz=tz, xff=xff, limits=self.limits, carbonlink=self.carbonlink)
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
            return json_response({"metrics": metrics}, request)
        if fmt == "json":
            return json_response({"metrics": [{"path": n.path, "name": n.name, "is_leaf": n.is_leaf}
                                              for n in sorted(nodes, key=lambda n: n.path)]}, request)
        raise InputError(f"invalid value for 'format': {fmt!r} (treejson, completer or json)")

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


def create_app(whisper_root: str, max_series: int = Limits.max_series, max_points: int = Limits.max_points,
               static_dir: str | None = STATIC_DIR, carbonlink: str | None = None) -> RenderApp:
    """Factory for WSGI servers (gunicorn's ``module:create_app(...)`` syntax).

    ``carbonlink``: ``HOST:PORT`` of carbon-cache's cache-query port, to merge unwritten points.
    """
    link = None
    if carbonlink:
        host, sep, port = carbonlink.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--carbonlink must be HOST:PORT, got {carbonlink!r}")
        link = CarbonLink(host or "127.0.0.1", int(port))
    return RenderApp(whisper_root, Limits(max_series=max_series, max_points=max_points), static_dir,
                     carbonlink=link)
