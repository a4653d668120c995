"""The tag database: which tagged series exist, and which of them a tag query selects.

Speaks graphite-web 1.1.8's TagDB semantics (carbon-cache with ``ENABLE_TAGS`` posts
every new ``name;k=v`` series to ``/tags/tagMultiSeries``). Two parts:

* a *path store* that only keeps canonical series paths (``name;a=1;b=2``, tags
  sorted): an SQLite file beside the Whisper root, or Redis when several render
  servers share one store (``tagdb_redis.py``). A path holds all its tags, so nothing
  else needs storing, and the store cannot disagree with itself;
* an in-memory *index* (tag -> value -> paths) built from the store and rebuilt when
  the store's version moves (another process wrote), so queries never touch disk.

Queries follow graphite-web's rules: ``tag=spec``, ``tag!=spec``, ``tag=~regex``,
``tag!=~regex``; an expression that matches the empty value also matches series
without that tag; at least one expression must require a non-empty value; regexes
are anchored at the start of the value.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable
from typing import Protocol

from .errors import InputError
from .finder import Finder, Node
from .regex import UserRegex, user_regex

log = logging.getLogger(__name__)

MAX_PATH_LENGTH = 1024  # whisper file names past ~250 bytes cannot be created anyway
MAX_TAGS_PER_SERIES = 64
MAX_SERIES = 1_000_000  # series one store holds; tagging past it is refused
MAX_EXPRESSIONS = 32  # expressions in one query
SQLITE_NAME = "tagdb.sqlite3"
TAGGED_DIR = "_tagged"
_EXPR = re.compile(r"^([^;!=]+)(!?=~?)([^;]*)$")


def compile_regex(pattern: str, where: str = "a tag expression") -> UserRegex:
    """Every user regex of the tag database goes through the render API's one regex
    engine (linear time, or a time budget): a tag query must not stall the server either."""
    return user_regex(pattern, where)


# -- names --------------------------------------------------------------------------------------

def _check_tag(tag: str, value: str, path: str) -> None:
    if not tag:
        raise InputError(f"invalid tagged series {path!r}: empty tag name")
    if not value:
        raise InputError(f"invalid tagged series {path!r}: tag {tag!r} has an empty value")
    for char in ";!^=":
        if char in tag:
            raise InputError(f"invalid tagged series {path!r}: character {char!r} not allowed in tag {tag!r}")
    if value.startswith("~"):
        raise InputError(f"invalid tagged series {path!r}: value of tag {tag!r} may not start with '~'")


def parse_path(path: str) -> dict[str, str]:
    """The tags of ``name;k=v;...`` (``name`` included), by graphite's rules; InputError if malformed.

    OpenMetrics-style ``name{k="v"}`` is accepted too, as graphite-web does."""
    if len(path) > MAX_PATH_LENGTH:
        raise InputError(f"series path longer than {MAX_PATH_LENGTH} characters")
    if "\0" in path or "\n" in path or "/" in path:
        raise InputError(f"invalid tagged series {path!r}: NUL, newline or '/' not allowed")
    if path.endswith('"}') and "{" in path:
        return _parse_openmetrics(path)
    metric, *segments = path.split(";")
    tags: dict[str, str] = {}
    for segment in segments:
        tag, sep, value = segment.partition("=")
        if not sep or not tag:
            raise InputError(f"invalid tagged series {path!r}: segment {segment!r} is not tag=value")
        _check_tag(tag, value, path)
        tags[tag] = value
    return _with_name(tags, metric, path)


def _with_name(tags: dict[str, str], metric: str, path: str) -> dict[str, str]:
    name = metric.lstrip("~")
    if not name:
        raise InputError(f"invalid tagged series {path!r}: no metric name")
    if len(tags) >= MAX_TAGS_PER_SERIES:
        raise InputError(f"invalid tagged series {path!r}: more than {MAX_TAGS_PER_SERIES} tags")
    tags["name"] = name
    return tags


_OPENMETRICS_TAG = re.compile(r'([^=]+)="((?:\\["\\]|[^"\\])+)"(?:,|$)')


def _parse_openmetrics(path: str) -> dict[str, str]:
    metric, _, rest = path[:-1].partition("{")
    tags: dict[str, str] = {}
    while rest:
        m = _OPENMETRICS_TAG.match(rest)
        if not m:
            raise InputError(f"invalid tagged series {path!r}: cannot read {rest!r}")
        value = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
        _check_tag(m.group(1), value, path)
        tags[m.group(1)] = value
        rest = rest[m.end():]
    return _with_name(tags, metric, path)


def format_path(tags: dict[str, str]) -> str:
    """The canonical path: the name, then ``;tag=value`` sorted (what carbon stores)."""
    return tags.get("name", "") + "".join(sorted(f";{k}={v}" for k, v in tags.items() if k != "name"))


def canonical(path: str) -> str:
    return format_path(parse_path(path))


def whisper_paths(root: str, path: str) -> tuple[str, str]:
    """Where carbon keeps a canonical tagged path: (hashed file, readable file), in the
    order graphite-web looks for them.

    ``_tagged/<sha256[0:3]>/<sha256[3:6]>/`` then the whole hash (carbon's default) or
    the name with ``.`` written ``_DOT_`` (``TAG_HASH_FILENAMES = False``)."""
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()
    folder = os.path.join(root, TAGGED_DIR, digest[:3], digest[3:6])
    return os.path.join(folder, digest + ".wsp"), os.path.join(folder, path.replace(".", "_DOT_") + ".wsp")


def tagged_nodes(root: str, paths: list[str]) -> list[Node]:
    """Finder nodes for canonical tagged paths that have a whisper file (either naming)."""
    nodes = []
    for path in paths:
        for fs_path in whisper_paths(root, path):
            if os.path.isfile(fs_path):
                nodes.append(Node(path, fs_path, True, path.rsplit(".", 1)[-1]))  # as graphite-web names it
                break
    return nodes


def find_nodes(finder: Finder, pattern: str, leaves_only: bool = False) -> list[Node]:
    """A path expression's nodes, where ``name;k=v`` names one tagged series by its file.

    A tagged path is no glob: its dots belong to the name, and carbon keeps it under
    ``_tagged/`` (graphite-web's finders look it up the same way, for /metrics/find and
    /render alike). The tags may come in any order (graphite-web finds only the order
    carbon wrote). ``_tagged.…`` patterns are plain globs over those files."""
    if ";" in pattern and not pattern.startswith(TAGGED_DIR + "."):
        return tagged_nodes(finder.root, [canonical(pattern)])
    return finder.find(pattern, leaves_only=leaves_only)


def scan_whisper(root: str) -> tuple[list[str], int]:
    """Tagged series already on disk (readable names), and how many hashed names were skipped.

    Carbon only posts series it creates, so a render server started over an existing
    store indexes what is there. Hashed file names cannot be turned back into paths."""
    found: list[str] = []
    hashed = 0
    top = os.path.join(root, TAGGED_DIR)
    if not os.path.isdir(top):
        return found, 0
    for directory, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            if not filename.endswith(".wsp"):
                continue
            stem = filename[:-4]
            if re.fullmatch(r"[0-9a-f]{64}", stem):
                hashed += 1
                continue
            try:
                found.append(canonical(stem.replace("_DOT_", ".")))
            except InputError as exc:
                log.warning("tag database: skipping %s: %s", os.path.join(directory, filename), exc)
    return found, hashed


# -- expressions --------------------------------------------------------------------------------

class Expression:
    """One ``tag<op>spec`` term; ``positive`` when it cannot match a missing tag."""

    __slots__ = ("tag", "op", "spec", "regex", "positive")

    def __init__(self, text: str) -> None:
        m = _EXPR.match(text)
        if m is None:
            raise InputError(f"invalid tag expression {text!r} (tag=value, tag!=value, tag=~regex or tag!=~regex)")
        self.tag, self.op, self.spec = m.groups()
        self.regex = None
        if self.op in ("=~", "!=~"):
            spec = self.spec if self.spec.startswith("^") else "^(" + self.spec + ")"
            self.regex = compile_regex(spec)
        if self.op == "=":
            self.positive = self.spec != ""
        elif self.op == "!=":
            self.positive = self.spec == ""
        elif self.op == "=~":
            self.positive = not self.regex.search("")
        else:
            self.positive = self.regex.search("")

    def accepts(self, value: str) -> bool:
        """Whether a series whose tag has ``value`` ('' when missing) is selected."""
        if self.op == "=":
            return value == self.spec
        if self.op == "!=":
            return value != self.spec
        if self.op == "=~":
            return self.regex.search(value)
        return not self.regex.search(value)


def parse_expressions(texts: Iterable[str]) -> list[Expression]:
    exprs = [Expression(t) for t in texts]
    if not exprs:
        raise InputError("no tag expressions given")
    if len(exprs) > MAX_EXPRESSIONS:
        raise InputError(f"more than {MAX_EXPRESSIONS} tag expressions")
    if not any(e.positive for e in exprs):
        raise InputError("at least one tag expression must require a non-empty value")
    return exprs


# -- stores -------------------------------------------------------------------------------------

class PathStore(Protocol):
    """Durable set of canonical paths; ``version()`` moves whenever anyone changes it."""

    def add(self, paths: list[str]) -> None: ...
    def remove(self, paths: list[str]) -> None: ...
    def paths(self) -> list[str]: ...
    def count(self) -> int: ...
    def version(self) -> tuple: ...
    def close(self) -> None: ...


class SQLiteStore:
    """Paths in one SQLite table; other processes' writes show up through ``data_version``."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._db = sqlite3.connect(filename, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS series (path TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")
        self._lock = threading.Lock()

    def add(self, paths: list[str]) -> None:
        self._change("INSERT OR IGNORE INTO series (path) VALUES (?)", paths)

    def remove(self, paths: list[str]) -> None:
        self._change("DELETE FROM series WHERE path = ?", paths)

    def _change(self, sql: str, paths: list[str]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one transaction (one fsync) per batch
            try:
                self._db.executemany(sql, [(p,) for p in paths])
                self._bump()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _bump(self) -> None:
        # data_version tells *other* connections about a commit; this counter tells us too
        self._db.execute("INSERT INTO meta (k, v) VALUES ('writes', 1) "
                         "ON CONFLICT(k) DO UPDATE SET v = v + 1")

    def paths(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT path FROM series")]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM series").fetchone()[0]

    def version(self) -> tuple:
        """(changes by other connections, writes by anyone): the last element counts writes."""
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = 'writes'").fetchone()
            return (self._db.execute("PRAGMA data_version").fetchone()[0], row[0] if row else 0)

    def close(self) -> None:
        self._db.close()


# -- the database -------------------------------------------------------------------------------

class TagDB:
    """Index over a path store: graphite-web's TagDB operations."""

    def __init__(self, store: PathStore, max_series: int = MAX_SERIES) -> None:
        self.store = store
        self.max_series = max_series
        self._lock = threading.RLock()
        self._version: tuple | None = None
        self._tags: dict[str, dict[str, set[str]]] = {}  # tag -> value -> paths
        self._series: dict[str, dict[str, str]] = {}  # path -> tags

    # -- keeping the index current
    def _refresh(self) -> None:
        version = self.store.version()
        if version == self._version:
            return
        with self._lock:
            version = self.store.version()
            if version == self._version:
                return
            self._tags, self._series = {}, {}
            for path in self.store.paths():
                try:
                    self._index(path, parse_path(path))
                except InputError:
                    log.warning("tag database: ignoring stored path %r", path)
            self._version = version

    def _index(self, path: str, tags: dict[str, str]) -> None:
        self._series[path] = tags
        for tag, value in tags.items():
            self._tags.setdefault(tag, {}).setdefault(value, set()).add(path)

    def _unindex(self, path: str) -> None:
        tags = self._series.pop(path, None)
        for tag, value in (tags or {}).items():
            paths = self._tags[tag][value]
            paths.discard(path)
            if not paths:
                del self._tags[tag][value]
                if not self._tags[tag]:
                    del self._tags[tag]

    def _write(self, change, paths: list[str]) -> None:
        """Apply a change to the store; the index stays current only if no one else wrote
        since it was built (the store's write counter moved by exactly our one write)."""
        before = self.store.version()
        change(paths)
        after = self.store.version()
        expected = (*before[:-1], before[-1] + 1)
        self._version = after if self._version == before and after == expected else None

    # -- writing
    def tag_multi_series(self, paths: list[str]) -> list[str]:
        """Add series; returns their canonical paths (InputError, nothing stored, if one is bad)."""
        parsed = [(format_path(tags), tags) for tags in map(parse_path, paths)]
        self._refresh()
        with self._lock:
            new = [(p, t) for p, t in dict(parsed).items() if p not in self._series]
            if new:
                if len(self._series) + len(new) > self.max_series:
                    raise InputError(f"tag database holds {len(self._series)} series; "
                                     f"adding {len(new)} would pass its limit of {self.max_series}")
                self._write(self.store.add, [p for p, _ in new])
                for path, tags in new:
                    self._index(path, tags)
        return [p for p, _ in parsed]

    def tag_series(self, path: str) -> str:
        return self.tag_multi_series([path])[0]

    def del_multi_series(self, paths: list[str]) -> bool:
        canon = [canonical(p) for p in paths]
        self._refresh()
        with self._lock:
            self._write(self.store.remove, canon)
            for path in canon:
                self._unindex(path)
        return True

    # -- reading
    def find_series(self, texts: Iterable[str], limit: int | None = None) -> list[str]:
        """Sorted paths selected by every expression; InputError past ``limit`` matches."""
        exprs = parse_expressions(texts)
        self._refresh()
        with self._lock:
            candidates: set[str] | None = None
            for expr in sorted((e for e in exprs if e.positive), key=lambda e: e.op != "="):
                chosen = self._positive(expr, candidates)
                candidates = chosen if candidates is None else candidates & chosen
                if not candidates:
                    return []
            assert candidates is not None
            rest = [e for e in exprs if not e.positive]
            found = sorted(p for p in candidates if all(e.accepts(self._series[p].get(e.tag, "")) for e in rest))
        if limit is not None and len(found) > limit:
            raise InputError(f"tag query {list(texts)!r} matches {len(found)} series, more than {limit}")
        return found

    def _positive(self, expr: Expression, within: set[str] | None) -> set[str]:
        values = self._tags.get(expr.tag, {})
        if expr.op == "=":
            return set(values.get(expr.spec, ()))
        out: set[str] = set()
        for value, paths in values.items():
            if expr.accepts(value):
                out.update(paths if within is None else paths & within)
        return out

    def list_tags(self, tag_filter: str | None = None, limit: int | None = None) -> list[dict]:
        self._refresh()
        regex = _anchored(tag_filter)
        with self._lock:
            names = sorted(t for t in self._tags if regex is None or regex.search(t))
        return [{"tag": t} for t in names[:limit]]

    def get_tag(self, tag: str, value_filter: str | None = None, limit: int | None = None) -> dict | None:
        self._refresh()
        if tag not in self._tags:
            return None
        return {"tag": tag, "values": self.list_values(tag, value_filter, limit)}

    def list_values(self, tag: str, value_filter: str | None = None, limit: int | None = None) -> list[dict]:
        self._refresh()
        regex = _anchored(value_filter)
        with self._lock:
            values = sorted((v, len(p)) for v, p in self._tags.get(tag, {}).items()
                            if regex is None or regex.search(v))
        return [{"value": v, "count": n} for v, n in values[:limit]]

    def auto_complete_tags(self, texts: list[str], prefix: str | None = None, limit: int = 100) -> list[str]:
        if not texts:
            self._refresh()
            with self._lock:
                names = sorted(t for t in self._tags if not prefix or t.startswith(prefix))
            return names[:limit]
        searched = {Expression(t).tag for t in texts}
        found: set[str] = set()
        for path in self.find_series(texts):
            found.update(t for t in self._series.get(path, ()) if t not in searched
                         and (not prefix or t.startswith(prefix)))
        return sorted(found)[:limit]

    def auto_complete_values(self, texts: list[str], tag: str, prefix: str | None = None,
                             limit: int = 100) -> list[str]:
        if not texts:
            self._refresh()
            with self._lock:
                values = sorted(v for v in self._tags.get(tag, {}) if not prefix or v.startswith(prefix))
            return values[:limit]
        found: set[str] = set()
        for path in self.find_series([*texts, tag + "!="]):
            value = self._series.get(path, {}).get(tag)
            if value is not None and (not prefix or value.startswith(prefix)):
                found.add(value)
        return sorted(found)[:limit]

    def index_whisper(self, root: str) -> int:
        """Add tagged series found under ``root/_tagged``; returns how many were new."""
        found, hashed = scan_whisper(root)
        if hashed:
            log.info("tag database: %d tagged whisper files have hashed names (TAG_HASH_FILENAMES) "
                     "and are indexed only when carbon posts them", hashed)
        self._refresh()
        new = [p for p in found if p not in self._series]
        for start in range(0, len(new), 1000):
            self.tag_multi_series(new[start:start + 1000])
        return len(new)

    def close(self) -> None:
        self.store.close()


def _anchored(pattern: str | None) -> UserRegex | None:
    if not pattern:
        return None
    return compile_regex(pattern if pattern.startswith("^") else "^(" + pattern + ")")


def open_tagdb(whisper_root: str, url: str | None = None, max_series: int = MAX_SERIES) -> TagDB:
    """``url``: None for ``<whisper_root>/../tagdb.sqlite3`` beside the Whisper root, a file
    path for SQLite elsewhere, or ``redis://host:port/db`` for a store shared by servers."""
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        from .tagdb_redis import RedisStore

        return TagDB(RedisStore(url), max_series)
    filename = url or os.path.join(os.path.dirname(os.path.abspath(whisper_root.rstrip(os.sep))), SQLITE_NAME)
    try:
        return TagDB(SQLiteStore(filename), max_series)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot open the tag database {filename!r}: {exc}") from None
