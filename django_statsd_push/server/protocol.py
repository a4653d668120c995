"""The statsd line protocol, parsed exactly once: raw datagram -> records.

This is the only parser of the wire format on the daemon side (the client side
formats with pystatsd); ``serve`` and ``bridge`` share it. Its records are ``Sample``
(one value of one metric), ``Event`` and ``ServiceCheck`` (DogStatsD), and
``Rejected`` (why something was not used, for the per-reason counts).

Where the peers disagree, ``Rules`` says whose reading wins. ``Rules()`` (``ETSY``,
what ``serve`` uses) follows etsy statsd 0.9's ``stats.js`` so that the same packets
give the same numbers in Carbon; ``Rules(exporter=True)`` (``EXPORTER``, what
``bridge`` uses) follows prometheus/statsd_exporter's ``pkg/line``. Both read the
DogStatsD protocol as the Datadog agent does (versions 1.0 to 1.3).

Common to both:

* a datagram holds lines separated by ``\\n``; empty lines are skipped, every other
  line counts as one *metric received* (``lines``);
* a line is ``name:value|type`` followed by DogStatsD fields in any order:
  ``@rate``, ``#tag,tag`` (several ``#`` fields add up), ``c:<container-id>``,
  ``card:<cardinality>``, ``e:<external-data>`` and ``T<unix-ts>``. Container id and
  cardinality are dropped unless ``Rules.origin_tags`` keeps them as the tags
  ``container_id:<id>`` and ``cardinality:<card>``; external data is dropped; the
  timestamp is not read: the value lands in the flush that is open when it arrives
  (statsd_exporter drops it too; the agent reads it only without aggregation).
  An empty ``c:`` field, an empty field or any other field makes the line bad;
* ``name:v1:v2:v3|type`` (DogStatsD 1.1 packing) is one sample per value;
  ``name:1|c:2|ms`` (etsy's several values per name) is one sample per ``value|type``;
* ``_e{<title bytes>,<text bytes>}:title|text|d:..|h:..|k:..|p:..|s:..|t:..|#..`` is an
  ``Event``, ``_sc|name|status|d:..|h:..|#..|m:..`` a ``ServiceCheck`` (status 0-3);
  optional fields the agent would warn about are ignored, as the agent does;
* gauges starting with ``+``/``-`` are deltas; values and rates that are not finite
  are bad (both peers would store NaN or Infinity; we never do);
* a bad value is counted in ``bad_lines``, recorded as ``Rejected(reason)`` and
  skipped, never raised.

``ETSY`` only: DogStatsD tags are split off at the first ``|#`` before anything else
(etsy's order), numbers follow JavaScript's ``Number()`` (whitespace trimmed, ``0x``
hex allowed), timers must be ``>= 0``, any type other than ``ms``, ``g`` and ``s`` is
a counter, a rate etsy cannot read (``@x``, ``@0``, ``@+0.5`` which kills etsy's
process) is a bad line, bytes that are not UTF-8 become U+FFFD, a line without ``:``
means value ``1`` without a type (a bad line). A set member containing ``:`` is
read as etsy reads it (``s:a:b|s``: one bad value, member ``b``).

``EXPORTER`` only: the name must be non-empty and the line valid UTF-8 (else the line
is dropped as ``malformed_line``/``invalid_utf8``), the type one of ``c g ms h d s``
(else ``illegal_event``), numbers are Go's ``ParseFloat`` decimals (spaces around
them allowed), timers may be negative, packing is only for ``ms``/``h``/``d``
(``invalid_extended_aggregate_type``), a line with DogStatsD tags holds one value,
more than six fields is ``malformed_component``, and an unreadable rate (``@bar``) or
``@0`` means rate 1 (``@bar`` is still counted as ``invalid_sample_factor``).

The names stay RAW: etsy's sanitising (``my metric/x`` -> ``my_metric-x``) is a
Graphite concern done by the Carbon sink, because the Prometheus bridge needs the
original names and tags.

``Sample`` fields:

``name``   raw metric name (``str``)
``tags``   tuple of raw DogStatsD tag strings in the order sent (``()`` if none)
``value``  ``float`` for counters, timers and gauges; ``str`` for sets
``type``   the raw type (``"c"``, ``"ms"``, ``"g"``, ``"s"``, ``"h"``, ...; ``ETSY`` strips
           surrounding whitespace); use ``kind`` for etsy's meaning
``rate``   sample rate (``1.0`` when absent)
``delta``  ``True`` for a gauge written as ``+N``/``-N`` (add to the current value)
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple, Union

from django_statsd_push.server.js import js_number

COUNTER = "c"
TIMER = "ms"
GAUGE = "g"
SET = "s"
#: a service check ``_sc|name|status`` becomes the gauge ``service_check.<name>`` = status
SERVICE_CHECK_PREFIX = "service_check."

_INF = math.inf
# Go's strconv.ParseFloat decimals (its hex floats and Inf/NaN spellings are refused
# here): the same grammar as JavaScript's StrDecimalLiteral (``js._JS_DECIMAL``).
_GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_RATE_DIGITS = re.compile(r"[0-9.]+")
_EXPORTER_TYPES = frozenset(("c", "g", "ms", "h", "d", "s"))
_PACKABLE_BY_EXPORTER = frozenset(("ms", "h", "d"))
_EXPORTER_MAX_FIELDS = 6
_EVENT_PRIORITIES = frozenset(("normal", "low"))
_EVENT_ALERT_TYPES = frozenset(("error", "warning", "info", "success"))
_SERVICE_CHECK_STATUSES = {"0": 0.0, "1": 1.0, "2": 2.0, "3": 3.0}


class Rules(NamedTuple):
    """Whose reading wins where the peers disagree (see the module docstring).

    ``exporter``: statsd_exporter's rules (``bridge``) instead of etsy's (``serve``).
    ``origin_tags``: keep DogStatsD's container id and cardinality as tags.
    """

    exporter: bool = False
    origin_tags: bool = False


ETSY = Rules()
EXPORTER = Rules(exporter=True)


class Sample(NamedTuple):
    name: str
    tags: tuple[str, ...]
    value: float | str
    type: str
    rate: float = 1.0
    delta: bool = False

    @property
    def kind(self) -> str:
        """etsy's meaning of the type: ``c``, ``ms``, ``g`` or ``s``."""
        return kind_of(self.type)


class Event(NamedTuple):
    """A DogStatsD event. Sinks that keep events read them from ``Snapshot.events``."""

    title: str
    text: str
    tags: tuple[str, ...] = ()
    timestamp: int | None = None
    hostname: str = ""
    aggregation_key: str = ""
    priority: str = "normal"
    source_type: str = ""
    alert_type: str = "info"


class ServiceCheck(NamedTuple):
    """A DogStatsD service check; the aggregator stores it as ``gauge()``."""

    name: str
    status: float
    tags: tuple[str, ...] = ()
    timestamp: int | None = None
    hostname: str = ""
    message: str = ""

    def gauge(self) -> Sample:
        return Sample(SERVICE_CHECK_PREFIX + self.name, self.tags, self.status, GAUGE)


class Rejected(NamedTuple):
    """``count`` values (or one line) not used, or a problem tolerated, and why.

    Reasons are statsd_exporter's ``sample_errors_total`` reasons where it has one.
    """

    reason: str
    count: int = 1


Record = Union[Sample, Event, ServiceCheck, Rejected]


class Parsed(NamedTuple):
    records: list[Record]
    lines: int
    bad_lines: int

    @property
    def samples(self) -> list[Sample]:
        return [r for r in self.records if r.__class__ is Sample]

    @property
    def events(self) -> list[Event]:
        return [r for r in self.records if r.__class__ is Event]

    @property
    def service_checks(self) -> list[ServiceCheck]:
        return [r for r in self.records if r.__class__ is ServiceCheck]

    @property
    def rejected(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            if r.__class__ is Rejected:
                out[r.reason] = out.get(r.reason, 0) + r.count  # type: ignore[union-attr]
        return out


def kind_of(type_: str) -> str:
    return type_ if type_ in (TIMER, GAUGE, SET) else COUNTER


def _finite(text: str) -> float | None:
    """A value for a sample: ``Number(text)`` when it is finite, else ``None``.

    The fast path (plain decimal) is one ``float()`` call and two comparisons.
    """
    try:
        value = float(text)
    except ValueError:
        value = js_number(text) if text else None
        if value is None:
            return None
    if "_" in text or not -_INF < value < _INF or not text.isascii():
        value = js_number(text)
        if value is None or not -_INF < value < _INF:
            return None
    return value


def _go_finite(text: str) -> float | None:
    """statsd_exporter's value: a Go decimal (surrounding spaces allowed), finite."""
    text = text.strip()
    if not _GO_DECIMAL.match(text):
        return None
    value = float(text)
    return value if -_INF < value < _INF else None


def _rate(field: str) -> float | None:
    """The sample rate in ``@0.1``; ``None`` when etsy rejects it (or crashes on it)."""
    if len(field) < 2 or field[0] != "@":
        return None
    number = field[1:]
    if number[0] == "-" or js_number(number) is None:
        return None
    match = _RATE_DIGITS.match(number)
    if match is None:
        return None
    rate = js_number(match.group())
    if rate is None or not 0 < rate < _INF:
        return None
    return rate


def _bad(out: list[Record], reason: str, count: int = 1) -> int:
    out.append(Rejected(reason, count))
    return count


def _tags(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def _origin_tag(field: str, rules: Rules) -> str | None:
    """``c:<id>`` / ``card:<x>`` as a tag when ``origin_tags`` keeps them, else None."""
    if not rules.origin_tags:
        return None
    if field[:2] == "c:":
        return "container_id:" + field[2:]
    value = field[5:]
    return "cardinality:" + value if value else None


def parse_line(line: str, out: list[Record], rules: Rules = ETSY) -> int:
    """Append the records of one non-empty line to ``out``; return how many values were bad.

    Every bad value also appends a ``Rejected`` record naming the reason.
    """
    if line[0] == "_":
        if line.startswith("_e{"):
            return _event(line, out, rules)
        if line.startswith("_sc|"):
            return _service_check(line, out, rules)
    tags: tuple[str, ...] = ()
    exporter = rules.exporter
    if exporter:
        name, colon, rest = line.partition(":")
        if not colon or not name:
            return _bad(out, "malformed_line")
    else:
        if "|#" in line:  # etsy takes the tags off before it looks for ":"
            head, _, tail = line.partition("|#")
            tag_text, more, fields_after = tail.partition("|")
            tags = _tags(tag_text)
            line = head + more + fields_after
        name, colon, rest = line.partition(":")
        if not colon:
            return _bad(out, "malformed_line")  # etsy: value 1 without a type
    fields = rest.split("|")
    n = len(fields)
    if (
        n < 2
        or ":" in fields[1]  # "1|c:2|ms"
        or (n > 2 and ":" in rest[rest.find("|@") + 1 or len(rest):]  # cheap test first
            and any(f[:1] == "@" and ":" in f for f in fields[2:]))  # "1|c|@0.5:2|ms"
        or (not exporter and ":" in fields[0] and fields[1].strip() == SET)
    ):
        return _several_values(name, tags, rest, out, rules)
    return _sample(name, tags, fields, out, rules)


def _several_values(name: str, tags: tuple[str, ...], rest: str, out: list[Record], rules: Rules) -> int:
    """etsy's ``name:1|c:2|ms``: each ``:``-separated part is a ``value|type[|fields]``."""
    if rules.exporter:
        if "|" not in rest:
            return _bad(out, "not_enough_parts_after_colon")
        if "|#" in rest:  # statsd_exporter reads a tagged line as one value
            return _bad(out, "malformed_component")
    bad = 0
    for part in rest.split(":"):
        fields = part.split("|")
        if len(fields) < 2:
            bad += _bad(out, "malformed_component")
        else:
            bad += _sample(name, tags, fields, out, rules)
    return bad


def _sample(name: str, tags: tuple[str, ...], fields: list[str], out: list[Record], rules: Rules) -> int:
    """One ``value[:value...]|type|field|field...`` of a line."""
    exporter = rules.exporter
    raw = fields[0]
    values = raw.split(":") if ":" in raw else None  # None: one value, the common case
    count = 1 if values is None else len(values)
    if exporter:
        type_ = fields[1]
        if len(fields) > _EXPORTER_MAX_FIELDS:
            return _bad(out, "malformed_component", count)
        if count > 1 and type_ not in _PACKABLE_BY_EXPORTER:
            return _bad(out, "invalid_extended_aggregate_type")
        if type_ not in _EXPORTER_TYPES:
            return _bad(out, "illegal_event", count)
    else:
        type_ = fields[1].strip()
    rate = 1.0
    if len(fields) > 2:
        options = _options(fields, tags, out, rules, count)
        if options is None:
            return count
        rate, tags = options
    if type_ == SET:
        for member in values or (raw,):
            out.append(Sample(name, tags, member or "0", type_, rate, False))
        return 0
    bad = 0
    for text in values or (raw,):
        value = (_go_finite(text) if exporter else _finite(text)) if text else None
        if value is None or (type_ == TIMER and value < 0 and not exporter):
            bad += _bad(out, "malformed_value")
            continue
        out.append(Sample(name, tags, value, type_, rate, type_ == GAUGE and text[0] in "+-"))
    return bad


def _options(
    fields: list[str], tags: tuple[str, ...], out: list[Record], rules: Rules, count: int
) -> tuple[float, tuple[str, ...]] | None:
    """(rate, tags) from the fields after the type; None (``count`` rejected) if one is bad."""
    exporter = rules.exporter
    rate = 1.0
    extra: list[str] = []
    for field in fields[2:]:
        lead = field[:1]
        if lead == "#":
            tags += _tags(field[1:])
        elif lead == "@":
            if exporter:
                parsed = _go_finite(field[1:])
                if parsed is None:
                    out.append(Rejected("invalid_sample_factor"))  # statsd_exporter goes on with 1
                    parsed = 1.0
                if parsed < 0:
                    _bad(out, "invalid_sample_factor", count)
                    return None
                rate = parsed or 1.0
            else:
                parsed = _rate(field)
                if parsed is None:
                    _bad(out, "invalid_sample_factor", count)
                    return None
                rate = parsed
        elif lead == "T" or field[:2] == "e:":
            pass  # timestamp (not read: see the module docstring), external data
        elif field[:2] == "c:" or field[:5] == "card:":
            if field == "c:":
                _bad(out, "malformed_container_id", count)
                return None
            tag = _origin_tag(field, rules)
            if tag is not None:
                extra.append(tag)
        else:
            _bad(out, "malformed_component" if not field else "malformed_container_id" if lead == "c"
                 else "invalid_sample_factor", count)
            return None
    return rate, tags + tuple(extra) if extra else tags


def _shared_field(field: str, values: dict[str, object], rules: Rules) -> tuple[str, ...] | None:
    """A field events and service checks read alike (tags, ``d:`` timestamp, ``h:`` host,
    the origin fields): the tags it adds (maybe none), with ``values`` filled in; None for
    a field of the record's own kind (or unknown, which both ignore)."""
    prefix, value = field[:2], field[2:]
    if field[:1] == "#":
        return _tags(field[1:])
    if prefix == "d:":
        if value.lstrip("-").isdigit() and value.isascii():
            values["timestamp"] = int(value)
        return ()
    if prefix == "h:":
        values["hostname"] = value
        return ()
    if prefix == "c:" or field[:5] == "card:":
        tag = _origin_tag(field, rules)
        return (tag,) if tag is not None and value else ()
    return None


def _event(line: str, out: list[Record], rules: Rules) -> int:
    """``_e{title_len,text_len}:title|text|fields``; the lengths count UTF-8 bytes."""
    head, colon, body = line.partition(":")
    title_len, comma, text_len = head[3:-1].partition(",")
    if (
        not colon or head[-1:] != "}" or not comma
        or not (title_len.isdigit() and title_len.isascii() and text_len.isdigit() and text_len.isascii())
        or int(title_len) == 0
    ):
        return _bad(out, "malformed_event")
    raw = body.encode("utf-8", "surrogateescape")
    start, end = int(title_len) + 1, int(title_len) + 1 + int(text_len)
    if len(raw) < end:
        return _bad(out, "malformed_event")

    def text(data: bytes) -> str:
        return data.decode("utf-8", "replace").replace("\\n", "\n")

    values: dict[str, object] = {}
    tags: tuple[str, ...] = ()
    for field in raw[end:].decode("utf-8", "replace").split("|")[1:]:
        shared = _shared_field(field, values, rules)
        if shared is not None:
            tags += shared
            continue
        prefix, value = field[:2], field[2:]
        if prefix == "k:":
            values["aggregation_key"] = value
        elif prefix == "p:":
            if value in _EVENT_PRIORITIES:
                values["priority"] = value
        elif prefix == "s:":
            values["source_type"] = value
        elif prefix == "t:":
            if value in _EVENT_ALERT_TYPES:
                values["alert_type"] = value
    out.append(Event(text(raw[: start - 1]), text(raw[start:end]), tags, **values))  # type: ignore[arg-type]
    return 0


def _service_check(line: str, out: list[Record], rules: Rules) -> int:
    """``_sc|name|status|fields``: name non-empty, status 0 (ok) to 3 (unknown)."""
    fields = line.split("|")
    status = _SERVICE_CHECK_STATUSES.get(fields[2]) if len(fields) > 2 else None
    if status is None or not fields[1]:
        return _bad(out, "malformed_service_check")
    values: dict[str, object] = {}
    tags: tuple[str, ...] = ()
    for field in fields[3:]:
        shared = _shared_field(field, values, rules)
        if shared is not None:
            tags += shared
        elif field[:2] == "m:":
            values["message"] = field[2:]
    out.append(ServiceCheck(fields[1], status, tags, **values))  # type: ignore[arg-type]
    return 0


def _lines(datagram: bytes | bytearray | str, rules: Rules) -> list[str | None]:
    """The lines of a datagram; ``None`` for a line that is not UTF-8 under ``EXPORTER``."""
    if isinstance(datagram, str):
        return datagram.split("\n")  # type: ignore[return-value]
    if not rules.exporter:
        return datagram.decode("utf-8", "replace").split("\n")  # type: ignore[return-value]
    try:
        return datagram.decode("utf-8").split("\n")  # type: ignore[return-value]
    except UnicodeDecodeError:
        out: list[str | None] = []
        for chunk in datagram.split(b"\n"):
            try:
                out.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(None)
        return out


def parse(datagram: bytes | bytearray | str, rules: Rules = ETSY) -> Parsed:
    """Parse one datagram (or one newline-framed TCP chunk) into records.

    Never raises on bad input: bad values are counted in ``Parsed.bad_lines``.
    """
    records: list[Record] = []
    lines = bad = 0
    for line in _lines(datagram, rules):
        if line is None:
            lines += 1
            bad += _bad(records, "invalid_utf8")
        elif line:
            lines += 1
            bad += parse_line(line, records, rules)
    return Parsed(records, lines, bad)

