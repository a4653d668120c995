"""Output formats for /render: json (+jsonp), csv, raw, pickle; maxDataPoints; noNullPoints."""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import re
from datetime import datetime, tzinfo

import msgpack
import numpy as np

from .errors import InputError
from .series import Series

FORMATS = ("json", "csv", "raw", "pickle", "msgpack")
_JSONP = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\Z")


def apply_max_data_points(data: list[Series], max_points: int) -> list[Series]:
    """Consolidate as graphite-web's JSON renderer does, including its start "nudge" so the
    buckets stay put between refreshes."""
    if not data or max_points <= 0:
        return data
    start = min(s.start for s in data)
    end = max(s.end for s in data)
    time_range = end - start
    out = []
    for s in data:
        if max_points == 1:
            s = s.copy(values_per_point=max(len(s), 1))
        else:
            n_points = time_range / s.step
            if max_points < n_points:
                per_point = math.ceil(float(n_points) / float(max_points))
                seconds_per_point = int(per_point * s.step)
                nudge = seconds_per_point + (s.start % s.step) - (s.start % seconds_per_point)
                lose = int(nudge / s.step)
                values = s.values[max(lose - 1, 0):]  # graphite-web drops lose-1 values
                s = s.copy(start=s.start + nudge, values=values, values_per_point=per_point)
        out.append(s)
    return out


def datapoints(s: Series) -> tuple[list, range]:
    values = s.points().tolist()
    stamps = s.timestamps()
    n = min(len(values), len(stamps))
    return values[:n], stamps[:n]


def _json_value(v: float) -> str:
    if v != v:
        return "null"
    if v in (math.inf, -math.inf):
        return "1e9999" if v > 0 else "-1e9999"
    return repr(v)


def render_json(data: list[Series], no_null_points: bool = False) -> str:
    parts = []
    for s in data:
        values, stamps = datapoints(s)
        if no_null_points:
            pairs = [(v, t) for v, t in zip(values, stamps) if v == v]
            if not pairs:
                continue
        else:
            pairs = zip(values, stamps)
        points = ",".join(f"[{_json_value(v)},{t}]" for v, t in pairs)
        tags = json.dumps({str(k): _jsonable(v) for k, v in s.tags.items()}, allow_nan=False, separators=(",", ":"))
        parts.append(f'{{"target":{json.dumps(s.name)},"tags":{tags},"datapoints":[{points}]}}')
    return "[" + ",".join(parts) + "]"


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def render_csv(data: list[Series], tz: tzinfo) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, dialect="excel")
    for s in data:
        values, stamps = datapoints(s)
        for v, t in zip(values, stamps):
            stamp = datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow((s.name, stamp, "" if v != v else v))
    return buf.getvalue()


def render_raw(data: list[Series]) -> str:
    lines = []
    for s in data:
        values, _ = datapoints(s)
        body = ",".join("None" if v != v else repr(v) for v in values)
        lines.append("%s,%d,%d,%d|%s\n" % (s.name, s.start, s.end, s.step * s.values_per_point, body))
    return "".join(lines)


def render_pickle(data: list[Series]) -> bytes:
    return pickle.dumps(series_infos(data), protocol=2)


def render_msgpack(data: list[Series]) -> bytes:
    """The cluster protocol's other encoding (graphite-web's format=msgpack): the same
    records as pickle, and what a federating render API asks its peers for."""
    return msgpack.packb(series_infos(data), use_bin_type=True)


def series_infos(data: list[Series]) -> list[dict]:
    """graphite-web's seriesInfo records, as its pickle and msgpack renderers write them."""
    infos = []
    for s in data:
        points = s.points()[: len(s.timestamps())]
        values = points.astype(object)  # NaN -> None in one vectorised step: a federating
        values[np.isnan(points)] = None  # front asks for thousands of these at a time
        infos.append({
            "name": s.name, "start": s.start, "end": s.end, "step": s.step * s.values_per_point,
            "values": values.tolist(), "pathExpression": s.path_expression,
            "valuesPerPoint": 1, "consolidationFunc": s.consolidation, "xFilesFactor": s.xff,
        })
    return infos


def check_jsonp(callback: str) -> str:
    if not _JSONP.match(callback) or len(callback) > 200:
        raise InputError("invalid jsonp callback name")
    return callback


def count_points(data: list[Series]) -> int:
    """Points the response will hold, without consolidating (the renderer does that once):
    ``points()`` makes one point of every ``values_per_point`` values, the last one partial."""
    return sum(-(-len(s) // s.values_per_point) for s in data)


def strict_json(obj) -> str:
    """JSON that any parser accepts: infinities become 1e9999 (as graphite-web), NaN null."""
    try:
        return json.dumps(obj, default=_default, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), default=_default, allow_nan=False).replace(
            f'"{_INF}"', "1e9999").replace(f'"-{_INF}"', "-1e9999")


_INF = "@@render-inf-7f3a9c@@"  # a marker no real string in these documents holds


def _finite(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None if o != o else (_INF if o > 0 else "-" + _INF)
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
