"""statsd_exporter's mapping file, read unchanged, and the name -> Prometheus series lookup.

A file that works with prometheus/statsd_exporter must work here with the same result,
so the rules follow that exporter's documented behaviour (glob rules first, in file
order, ``*`` standing for one whole dot-separated component; then regex rules in file
order, unanchored like Go's ``regexp``; ``$n`` / ``${n}`` references; strict keys).
Two deliberate differences, both documented in docs/bridge.rst: timers default to a
*histogram* (statsd_exporter defaults to a summary), and statsd sets, which
statsd_exporter refuses, are matched as gauges.

A bad file must stop the process at startup with the file and line of the problem,
never half-load, so every check raises :class:`MappingError` with that position.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from django_statsd_push.server.config import ConfigError

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_QUANTILES",
    "Mapper",
    "MappingError",
    "Result",
    "Rule",
    "escape_metric_name",
    "load_mapping",
    "parse_mapping",
]

#: client_golang's DefBuckets, which statsd_exporter uses when a mapping names none.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: statsd_exporter's default summary objectives as (quantile, allowed error).
DEFAULT_QUANTILES: tuple[tuple[float, float], ...] = ((0.5, 0.05), (0.9, 0.01), (0.99, 0.001))
DEFAULT_SUMMARY_MAX_AGE = 600.0
DEFAULT_CACHE_SIZE = 10_000


class MappingError(ConfigError):
    """A mapping file statsd_exporter would also refuse; the message names file and line.

    A ``ConfigError`` so that ``statsd-push serve --mapping`` reports it like any bad
    setting, without knowing the bridge."""


# -- names -----------------------------------------------------------------------------

_VALID_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
# A run of dashes becomes one underscore (statsd_exporter keeps "a--b" mappable that way);
# every other invalid code point becomes one underscore.
_INVALID_RUN = re.compile(r"-+|[^a-zA-Z0-9_]")


def escape_metric_name(name: str) -> str:
    """Turn any statsd name into a valid Prometheus name the way statsd_exporter does."""
    if _VALID_NAME.match(name) or not name:
        return name
    escaped = _INVALID_RUN.sub("_", name)
    return "_" + escaped if escaped[0].isdigit() else escaped


# statsd type letter -> the kind statsd_exporter's match_metric_type speaks of.
_KIND_OF_TYPE = {"c": "counter", "g": "gauge", "s": "gauge", "ms": "observer", "h": "observer", "d": "observer"}


# -- templates -------------------------------------------------------------------------

# Go's Expand and statsd_exporter's glob formatter read the longest [A-Za-z0-9_] run after
# "$", so "$1_total" refers to a group named "1_total" (empty); "${1}_total" is the fix.
_TEMPLATE_REF = re.compile(r"\$\{([a-zA-Z0-9_]+)\}|\$([a-zA-Z0-9_]+)")


class _Template:
    """A name or label template split once into literal text (even positions) and group
    references (odd positions: a group number or name, or None for "expands to nothing").

    ``captures`` is the glob rule's number of ``*`` (references past it, ``$0`` and named
    references expand to nothing, as in statsd_exporter); None for a regex rule.
    """

    __slots__ = ("parts", "constant")

    def __init__(self, text: str, captures: int | None) -> None:
        parts: list[str | int | None] = []
        pos = 0
        for ref in _TEMPLATE_REF.finditer(text):
            parts.append(text[pos : ref.start()])
            key = ref.group(1) or ref.group(2)
            if captures is None:
                parts.append(int(key) if key.isdigit() else key)
            else:
                parts.append(int(key) if key.isdigit() and 1 <= int(key) <= captures else None)
            pos = ref.end()
        parts.append(text[pos:])
        self.parts = tuple(parts)
        self.constant = text if len(parts) == 1 else None

    def expand(self, match: re.Match[str], offset: int) -> str:
        """``offset`` is where the rule's own groups start inside a combined glob pattern."""
        if self.constant is not None:
            return self.constant
        out = []
        for index, part in enumerate(self.parts):
            if index % 2 == 0:
                out.append(part)
            elif part is not None:
                try:
                    out.append(match.group(part + offset if isinstance(part, int) else part) or "")
                except IndexError:
                    pass  # Go expands an unknown group to nothing
        return "".join(out)  # type: ignore[arg-type]


# -- rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One mapping entry, defaults already applied; ``line`` points back into the file."""

    match: str = ""
    match_type: str = "glob"
    name: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    honor_labels: bool = False
    match_metric_type: str = ""
    observer_type: str = "histogram"
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    quantiles: tuple[tuple[float, float], ...] = DEFAULT_QUANTILES
    summary_max_age: float = DEFAULT_SUMMARY_MAX_AGE
    summary_buf_cap: int = 500
    ttl: float = 0.0
    action: str = "map"
    help: str = ""
    scale: float | None = None
    line: int = 0
    # compiled forms, filled by the Mapper
    name_template: _Template | None = field(default=None, compare=False, repr=False)
    label_templates: tuple[tuple[str, _Template], ...] = field(default=(), compare=False, repr=False)
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Result:
    """Where one statsd name lands: Prometheus name, mapping labels, and the rule used.

    ``rule`` is never None: unmapped names get the defaults rule, so TTL, buckets and
    observer type always come from one place. ``mapped`` says whether a rule matched.
    """

    name: str
    labels: tuple[tuple[str, str], ...]
    rule: Rule
    mapped: bool

    @property
    def dropped(self) -> bool:
        return self.rule.action == "drop"


# -- YAML with line numbers ------------------------------------------------------------


class _Node(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Node:
    loader.flatten_mapping(node)
    result = _Node()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in result:
            raise _Problem(line, f"key {key!r} given twice")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = line
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


_TOP_KEYS = {"defaults", "mappings"}
_DEFAULT_KEYS = {"observer_type", "match_type", "glob_disable_ordering", "ttl", "summary_options", "histogram_options"}
_RULE_KEYS = {
    "match", "name", "labels", "honor_labels", "observer_type", "match_type", "help", "action",
    "match_metric_type", "ttl", "summary_options", "histogram_options", "scale",
}  # fmt: skip
_HISTOGRAM_KEYS = {"buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets"}
_SUMMARY_KEYS = {"quantiles", "max_age", "age_buckets", "buf_cap"}
_CHOICES = {
    "observer_type": ("", "histogram", "summary"),
    "match_type": ("", "glob", "regex"),
    "action": ("", "map", "drop"),
    "match_metric_type": ("", "counter", "gauge", "observer"),
}

# statsd_exporter's own checks on a glob match line, a name template and a label key.
_GLOB_LINE = re.compile(r"(\*|[a-zA-Z_][a-zA-Z0-9_\-]*)(\.\*|\.[a-zA-Z0-9_][a-zA-Z0-9_\-]*)*\Z")
_NAME_TEMPLATE = re.compile(r"([a-zA-Z_]|\$\{?\d+\}?)([a-zA-Z0-9_]|\$\{?\d+\}?)*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, line: int, key: str) -> float:
    """A Go duration ("1m30s", "500ms", 0) in seconds."""
    if value in (0, "0", None):
        return 0.0
    text = str(value).strip() if isinstance(value, str) else None
    if text is None:
        raise _Problem(line, f"{key}: {value!r} is not a duration; write it with a unit, e.g. '90s' or '1m30s'")
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.lstrip("+"))
    total, pos = 0.0, 0
    for part in _DURATION_PART.finditer(body):
        if part.start() != pos:
            break
        total += float(part.group(1)) * _DURATION_UNIT[part.group(2)]
        pos = part.end()
    if pos != len(body) or not body:
        raise _Problem(line, f"{key}: {value!r} is not a duration; write it with a unit, e.g. '90s' or '1m30s'")
    if sign < 0:
        raise _Problem(line, f"{key}: a negative duration ({value!r}) makes no sense")
    return total


def _check_keys(node: Any, allowed: set[str], where: str, line: int) -> _Node:
    if not isinstance(node, _Node):
        raise _Problem(line, f"{where} must be a mapping of keys, not {type(node).__name__}")
    for key in node:
        if key not in allowed:
            raise _Problem(
                node.key_lines.get(str(key), node.line),
                f"unknown key {key!r} in {where} (allowed: {', '.join(sorted(allowed))})",
            )
    return node


def _line_of(node: _Node, key: str) -> int:
    return node.key_lines.get(key, node.line)


def _choice(node: _Node, key: str, default: str) -> str:
    value = node.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or value not in _CHOICES[key]:
        raise _Problem(
            _line_of(node, key), f"{key}: {value!r} is not one of {', '.join(repr(c) for c in _CHOICES[key] if c)}"
        )
    return value or default


_GO_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\Z")


def _float(value: Any, line: int, what: str) -> float:
    # PyYAML (YAML 1.1) reads "1e-6" as a string; Go's yaml reads it as a number.
    if isinstance(value, str) and _GO_FLOAT.match(value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Problem(line, f"{what}: {value!r} is not a number")
    return float(value)


def _histogram(node: Any, line: int, base: tuple[float, ...]) -> tuple[float, ...]:
    options = _check_keys(node, _HISTOGRAM_KEYS, "histogram_options", line)
    buckets = options.get("buckets")
    if not buckets:
        return base
    if not isinstance(buckets, list):
        raise _Problem(_line_of(options, "buckets"), "buckets must be a list of numbers")
    values = tuple(_float(b, _line_of(options, "buckets"), "buckets") for b in buckets)
    if any(math.isnan(b) for b in values) or list(values) != sorted(set(values)):
        raise _Problem(_line_of(options, "buckets"), f"buckets {list(values)} must be distinct and increasing")
    return tuple(b for b in values if b != math.inf)


def _summary(node: Any, line: int) -> dict[str, Any]:
    options = _check_keys(node, _SUMMARY_KEYS, "summary_options", line)
    out: dict[str, Any] = {}
    quantiles = options.get("quantiles")
    if quantiles:
        if not isinstance(quantiles, list):
            raise _Problem(_line_of(options, "quantiles"), "quantiles must be a list of {quantile, error}")
        parsed = []
        for item in quantiles:
            item_line = getattr(item, "line", _line_of(options, "quantiles"))
            item = _check_keys(item, {"quantile", "error"}, "a quantile", item_line)
            q = _float(item.get("quantile"), item_line, "quantile")
            if not 0.0 <= q <= 1.0:
                raise _Problem(item_line, f"quantile {q} must be between 0 and 1")
            parsed.append((q, _float(item.get("error", 0.0), item_line, "error")))
        out["quantiles"] = tuple(parsed)
    if options.get("max_age"):
        out["summary_max_age"] = parse_duration(options["max_age"], _line_of(options, "max_age"), "max_age")
    if options.get("buf_cap"):
        out["summary_buf_cap"] = int(_float(options["buf_cap"], _line_of(options, "buf_cap"), "buf_cap"))
    if options.get("age_buckets") is not None:
        _float(options["age_buckets"], _line_of(options, "age_buckets"), "age_buckets")
    return out


def _observer_options(node: _Node, rule: Rule) -> Rule:
    """``rule`` with the node's ``histogram_options``/``summary_options`` on top: a mapping
    entry reads them exactly as the ``defaults`` block does (unset buckets keep ``rule``'s)."""
    if node.get("histogram_options") is not None:
        rule = replace(rule, buckets=_histogram(node["histogram_options"], _line_of(node, "histogram_options"), rule.buckets))
    if node.get("summary_options") is not None:
        rule = replace(rule, **_summary(node["summary_options"], _line_of(node, "summary_options")))
    return rule


def _defaults(node: Any) -> tuple[Rule, bool]:
    if node is None:
        return Rule(), False
    node = _check_keys(node, _DEFAULT_KEYS, "defaults", getattr(node, "line", 1))
    base = Rule(
        match_type=_choice(node, "match_type", "glob"),
        observer_type=_choice(node, "observer_type", "histogram"),
        ttl=parse_duration(node.get("ttl"), _line_of(node, "ttl"), "ttl"),
    )
    base = _observer_options(node, base)
    ordering_disabled = node.get("glob_disable_ordering", False)
    if not isinstance(ordering_disabled, bool):
        raise _Problem(_line_of(node, "glob_disable_ordering"), "glob_disable_ordering must be true or false")
    return base, ordering_disabled


def _rule(node: Any, base: Rule) -> Rule:
    line = getattr(node, "line", 0)
    node = _check_keys(node, _RULE_KEYS, "a mapping", line)
    match = node.get("match")
    if not isinstance(match, str) or not match:
        raise _Problem(line, "mapping has no 'match'")
    action = _choice(node, "action", "map")
    match_type = _choice(node, "match_type", base.match_type)
    name = node.get("name", "")
    name = "" if name is None else str(name)
    if action == "map":
        if not name:
            raise _Problem(line, f"mapping for {match!r} sets no metric 'name'")
        if not _NAME_TEMPLATE.match(name):
            raise _Problem(
                _line_of(node, "name"),
                f"name {name!r} is not a valid metric name template (letters, digits, _ and $1/${{1}})",
            )
    if match_type == "glob":
        if not _GLOB_LINE.match(match):
            raise _Problem(
                _line_of(node, "match"),
                f"invalid glob match {match!r}: dot-separated components, each '*' or a name",
            )
        regex = None
    else:
        try:
            regex = re.compile(match)
        except re.error as exc:
            raise _Problem(_line_of(node, "match"), f"invalid regex {match!r}: {exc}") from None
    labels = node.get("labels") or {}
    if not isinstance(labels, dict):
        raise _Problem(_line_of(node, "labels"), "labels must be a mapping of label name to value template")
    for key in labels:
        if not isinstance(key, str) or not _LABEL_NAME.match(key):
            raise _Problem(
                labels.key_lines.get(str(key), _line_of(node, "labels")) if isinstance(labels, _Node) else line,
                f"invalid label name {key!r}",
            )
    observer_type = _choice(node, "observer_type", base.observer_type)
    if not node.get("observer_type") and node.get("summary_options") is not None:
        observer_type = "summary"  # statsd_exporter files rely on its summary default here
    if observer_type == "histogram" and node.get("summary_options") is not None:
        raise _Problem(line, "cannot use histogram observer and summary_options at the same time")
    if observer_type == "summary" and node.get("histogram_options") is not None:
        raise _Problem(line, "cannot use summary observer and histogram_options at the same time")
    honor = node.get("honor_labels", False)
    if not isinstance(honor, bool):
        raise _Problem(_line_of(node, "honor_labels"), "honor_labels must be true or false")
    scale = node.get("scale")
    rule = replace(
        base,
        match=match,
        match_type=match_type,
        name=name,
        labels=tuple((k, "" if v is None else str(v)) for k, v in labels.items()),
        honor_labels=honor,
        match_metric_type=_choice(node, "match_metric_type", ""),
        observer_type=observer_type,
        ttl=parse_duration(node["ttl"], _line_of(node, "ttl"), "ttl") if node.get("ttl") else base.ttl,
        action=action,
        help=str(node.get("help") or ""),
        scale=None if scale is None else _float(scale, _line_of(node, "scale"), "scale"),
        line=line,
        regex=regex,
    )
    rule = _observer_options(node, rule)
    captures = None if match_type == "regex" else match.split(".").count("*")
    return replace(
        rule,
        name_template=_Template(name, captures),
        label_templates=tuple((k, _Template(v, captures)) for k, v in rule.labels),
    )


def parse_mapping(text: str, source: str = "<mapping>") -> Mapper:
    """Build a :class:`Mapper` from YAML text; any problem is a :class:`MappingError`."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except _Problem as problem:
        raise MappingError(f"{source}:{problem.line}: {problem.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise MappingError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{source}: not valid YAML: {exc}") from None
    try:
        if document is None:
            document = _Node()
            document.line, document.key_lines = 1, {}
        document = _check_keys(document, _TOP_KEYS, "the mapping file", 1)
        base, ordering_disabled = _defaults(document.get("defaults"))
        entries = document.get("mappings") or []
        if not isinstance(entries, list):
            raise _Problem(_line_of(document, "mappings"), "'mappings' must be a list")
        rules = [_rule(entry, base) for entry in entries]
    except _Problem as problem:
        raise MappingError(f"{source}:{problem.line}: {problem.message}") from None
    return Mapper(rules, defaults=base, glob_disable_ordering=ordering_disabled)


def load_mapping(path: str | Path | None) -> Mapper:
    """Read a mapping file; ``None`` gives the empty mapping (every name escaped as is)."""
    if path is None:
        return Mapper([])
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read mapping file: {exc}") from None
    return parse_mapping(text, str(path))


# -- matching --------------------------------------------------------------------------


class _GlobTable:
    """All glob rules for one metric kind as one alternation: ``re`` tries branches in
    order, so the first branch that matches is the first rule in file order."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.offsets: list[int] = []
        branches, group = [], 1
        for index, rule in enumerate(rules):
            parts = [r"([^.]*)" if c == "*" else re.escape(c) for c in rule.match.split(".")]
            branches.append(f"(?P<r{index}>" + r"\.".join(parts) + ")")
            self.offsets.append(group)  # the rule's own group; its captures follow it
            group += 1 + rule.match.split(".").count("*")
        self.pattern = re.compile("(?:" + "|".join(branches) + r")\Z") if branches else None

    def match(self, name: str) -> tuple[Rule, re.Match[str], int] | None:
        if self.pattern is None:
            return None
        m = self.pattern.match(name)
        if m is None:
            return None
        index = int(m.lastgroup[1:])  # type: ignore[index]
        return self.rules[index], m, self.offsets[index]


class Mapper:
    """Maps (statsd name, statsd type) to a :class:`Result`, caching per name.

    The cache is bounded (oldest entry goes first) so a flood of unique names costs
    at most ``cache_size`` entries.
    """

    def __init__(
        self,
        rules: list[Rule],
        defaults: Rule | None = None,
        glob_disable_ordering: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.rules = rules
        self.defaults = defaults or Rule()
        self.cache_size = cache_size
        self._cache: dict[tuple[str, str], Result] = {}
        globs = [r for r in rules if r.match_type == "glob"]
        if glob_disable_ordering:
            # "at each level the most specific match wins": concrete before "*", left to right
            globs.sort(key=lambda r: tuple(c == "*" for c in r.match.split(".")))
        self._globs = {
            kind: _GlobTable([r for r in globs if r.match_metric_type in ("", kind)])
            for kind in ("counter", "gauge", "observer")
        }
        self._regexes = [r for r in rules if r.match_type == "regex"]

    def __len__(self) -> int:
        return len(self.rules)

    def map(self, name: str, statsd_type: str) -> Result:
        kind = _KIND_OF_TYPE.get(statsd_type, "gauge")
        key = (name, kind)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._lookup(name, kind)
        cache = self._cache
        if len(cache) >= self.cache_size:
            del cache[next(iter(cache))]
        cache[key] = result
        return result

    def _lookup(self, name: str, kind: str) -> Result:
        found = self._globs[kind].match(name)
        if found is None:
            for rule in self._regexes:
                if rule.match_metric_type not in ("", kind):
                    continue
                m = rule.regex.search(name)  # type: ignore[union-attr]
                if m is not None:
                    found = (rule, m, 0)
                    break
        if found is None:
            return Result(escape_metric_name(name), (), self.defaults, False)
        rule, m, offset = found
        labels = tuple((key, template.expand(m, offset)) for key, template in rule.label_templates)
        metric = escape_metric_name(rule.name_template.expand(m, offset)) if rule.name_template else ""
        return Result(metric, labels, rule, True)
