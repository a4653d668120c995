"""Graphite's events (deploy markers and the like) in an embedded SQLite file.

An event is ``when`` (epoch seconds), ``what`` (a headline), ``data`` (free text) and
``tags`` (words). graphite-web keeps them in its Django database through
django-tagging; here one table holds the events and one their tags, so a tag query
is an indexed lookup. Bounded: at most ``max_events`` are kept and none older than
``retention_seconds`` (the oldest go first), and each field has a length limit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable

from .errors import InputError

SQLITE_NAME = "events.sqlite3"
MAX_BODY = 64 * 1024
MAX_WHAT = 255  # graphite-web's column width
MAX_DATA = 32 * 1024
MAX_TAGS = 32
MAX_TAG_LENGTH = 128
MAX_ANSWER = 10_000  # events in one get_data answer (the newest are kept)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, "when" INTEGER NOT NULL,
    what TEXT NOT NULL, data TEXT NOT NULL, tags TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_when ON events ("when");
CREATE TABLE IF NOT EXISTS event_tags (
    event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE, tag TEXT NOT NULL,
    PRIMARY KEY (tag, event_id)) WITHOUT ROWID;
"""


def split_tags(tags) -> list[str]:
    """graphite-web's forms: a list, or one space-separated string; duplicates dropped."""
    if tags is None:
        return []
    if isinstance(tags, str):
        words = tags.split()
    elif isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        words = [w for t in tags for w in t.split()]
    else:
        raise InputError('"tags" must be an array of strings or a space-separated string')
    words = list(dict.fromkeys(words))
    if len(words) > MAX_TAGS:
        raise InputError(f'"tags" holds more than {MAX_TAGS} tags')
    for word in words:
        if len(word) > MAX_TAG_LENGTH or "\0" in word:
            raise InputError(f"event tag {word[:40]!r}... is longer than {MAX_TAG_LENGTH} characters or holds NUL")
    return words


def parse_event(body: bytes, now: float) -> dict:
    """A POSTed JSON event body -> a checked event dict; InputError naming the problem."""
    if len(body) > MAX_BODY:
        raise InputError(f"event body larger than {MAX_BODY} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("event body is not valid JSON (expected {\"what\": ..., \"tags\": ..., \"data\": ...})") \
            from None
    if not isinstance(doc, dict):
        raise InputError("event body must be a JSON object")
    what = doc.get("what")
    if not isinstance(what, str) or not what.strip():
        raise InputError('event needs "what", a non-empty string')
    if len(what) > MAX_WHAT:
        raise InputError(f'"what" is longer than {MAX_WHAT} characters')
    data = doc.get("data", "")
    if not isinstance(data, str):
        data = json.dumps(data)  # graphite-web stores what it is given as text
    if len(data) > MAX_DATA:
        raise InputError(f'"data" is longer than {MAX_DATA} characters')
    when = doc.get("when", now)
    if isinstance(when, str):
        try:
            when = float(when)
        except ValueError:
            raise InputError(f'"when" must be epoch seconds, got {when!r}') from None
    if isinstance(when, bool) or not isinstance(when, (int, float)) or not 0 <= when < 2 ** 34:
        raise InputError(f'"when" must be epoch seconds, got {when!r}')
    if "\0" in what or "\0" in data:
        raise InputError("event text may not hold NUL characters")
    return {"when": int(when), "what": what, "data": data, "tags": split_tags(doc.get("tags"))}


class EventStore:
    def __init__(self, filename: str, retention_seconds: float = 365 * 86400, max_events: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.filename = filename
        self.retention_seconds = retention_seconds
        self.max_events = max_events
        self.clock = clock
        self._db = sqlite3.connect(filename, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, event: dict) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute('INSERT INTO events ("when", what, data, tags) VALUES (?, ?, ?, ?)',
                                       (event["when"], event["what"], event["data"], " ".join(event["tags"])))
                event_id = cur.lastrowid
                self._db.executemany("INSERT INTO event_tags (event_id, tag) VALUES (?, ?)",
                                     [(event_id, t) for t in event["tags"]])
                self._expire()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return int(event_id)

    def _expire(self) -> None:
        oldest = int(self.clock() - self.retention_seconds)
        self._db.execute('DELETE FROM events WHERE "when" < ?', (oldest,))
        self._db.execute("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY \"when\" DESC, id DESC "
                         "LIMIT -1 OFFSET ?)", (self.max_events,))

    def get(self, event_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute('SELECT id, "when", what, data, tags FROM events WHERE id = ?',
                                   (event_id,)).fetchone()
        return _as_dict(row) if row else None

    def delete(self, event_id: int) -> bool:
        with self._lock:  # one statement: autocommit is its transaction
            return self._db.execute("DELETE FROM events WHERE id = ?", (event_id,)).rowcount > 0

    def find(self, start: int, end: int, tags: Iterable[str] | None = None, set_operation: str | None = None,
             limit: int = MAX_ANSWER) -> list[dict]:
        """Events with ``start <= when <= end``, oldest first. With tags: carrying all of
        them (``intersection``, graphite's default) or any (``union``)."""
        sql = 'SELECT id, "when", what, data, tags FROM events WHERE "when" BETWEEN ? AND ?'
        params: list = [start, end]
        wanted = list(dict.fromkeys(tags)) if tags is not None else None
        if wanted is not None:
            if not wanted:
                return []
            marks = ",".join("?" * len(wanted))
            need = 1 if set_operation == "union" else len(wanted)
            sql += (f" AND id IN (SELECT event_id FROM event_tags WHERE tag IN ({marks}) "
                    "GROUP BY event_id HAVING COUNT(*) >= ?)")
            params += [*wanted, need]
        sql += ' ORDER BY "when" DESC, id DESC LIMIT ?'
        params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_as_dict(r) for r in reversed(rows)]

    def close(self) -> None:
        self._db.close()


def _as_dict(row) -> dict:
    event_id, when, what, data, tags = row
    return {"when": when, "what": what, "data": data, "tags": tags.split(), "id": event_id}


def open_events(whisper_root: str, filename: str | None = None, retention_seconds: float = 365 * 86400) -> EventStore:
    """The event store: ``filename``, else ``events.sqlite3`` beside the Whisper root."""
    filename = filename or os.path.join(os.path.dirname(os.path.abspath(whisper_root.rstrip(os.sep))), SQLITE_NAME)
    try:
        return EventStore(filename, retention_seconds)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot open the event store {filename!r}: {exc}") from None
