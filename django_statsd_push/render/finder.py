"""Pattern -> nodes over a Whisper tree (``a.b.c`` is ``a/b/c.wsp``), never leaving the root.

Globs work at any node: ``*``, ``?``, ``[a-z]``/``[!a]``, ``{a,b}`` (alternatives may
themselves hold globs). Safety comes from construction rather than from checking
strings afterwards: a node part may not be empty, ``.``-led, or hold ``/`` or NUL;
directory entries starting with ``.`` are never listed; and every symlink met on the
way is resolved and must stay under the resolved root.
"""

from __future__ import annotations

import os
import re
import stat
import time
from typing import NamedTuple
from functools import lru_cache

from . import deadline
from .errors import InputError
from .regex import UserRegex, user_regex

GLOB_CHARS = frozenset("*?[{")
SUFFIX = ".wsp"


class Node(NamedTuple):
    path: str  # dotted metric path
    fs_path: str  # directory, or the .wsp file for a leaf
    is_leaf: bool
    name: str  # last node of the path


def _translate(part: str, i: int = 0, stop: str = "") -> tuple[str, int]:
    """Glob part -> regex source; returns (regex, index after the consumed text)."""
    out: list[str] = []
    n = len(part)
    while i < n:
        c = part[i]
        if stop and c in stop:
            return "".join(out), i
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = part.find("]", i + 2 if part[i + 1 : i + 2] in ("!", "^") else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = part[i + 1 : j]
                neg = body[:1] in ("!", "^")
                body = body[1:] if neg else body
                out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "{":
            alternatives: list[str] = []
            j = i + 1
            while True:
                alt, j = _translate(part, j, stop=",}")
                alternatives.append(alt)
                if j >= n:  # unbalanced brace: take it literally
                    alternatives = []
                    break
                if part[j] == "}":
                    break
                j += 1
            if alternatives:
                out.append("(?:" + "|".join(alternatives) + ")")
                i = j
            else:
                out.append(re.escape(c))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out), i


@lru_cache(maxsize=256)
def compile_part(part: str) -> UserRegex:
    """A glob part as a regular expression on the linear-time engine: ``*a*a*a...``
    would backtrack polynomially, with the exponent the client's to choose."""
    return user_regex("(?s)" + _translate(part)[0], f"metric pattern node {part!r}")


def _check_part(part: str, pattern: str) -> None:
    if not part:
        raise InputError(f"invalid metric pattern {pattern!r}: empty node")
    if part.startswith(".") or "/" in part or "\\" in part or "\0" in part:
        raise InputError(f"invalid metric pattern {pattern!r}: node {part!r} not allowed")


class Finder:
    """Finds nodes under one Whisper root."""

    #: a listing is reused while its directory's mtime is unchanged, but only once that
    #: mtime is this many seconds old: a change in the same clock tick cannot be missed
    SETTLE_SECONDS = 2.0
    MAX_CACHED_NODES = 1_000_000  # bounds the memory kept for answers

    def __init__(self, root: str, max_nodes: int = 10000) -> None:
        self.root = os.path.realpath(root)
        self.max_nodes = max_nodes
        self._listings: dict[tuple, tuple[int, list]] = {}
        self._cached_nodes = 0

    def _list(self, directory: str, part: str, last: bool) -> list[tuple[str, str, bool]]:
        """(metric name, fs path, is_dir) of a directory's entries matching one glob part.

        Listing and matching a 1000-entry directory dominates /metrics/find; for a settled
        directory (carbon adds no files to it) the answer is kept and then only its
        mtime is checked. Answers involving symlinks are never kept (their targets may
        change without the directory changing)."""
        try:
            st = os.stat(directory)
        except OSError:
            return []
        key = (directory, part, last)
        cached = self._listings.get(key)
        if cached is not None and cached[0] == st.st_mtime_ns:
            return cached[1]
        entries = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.name[0] == ".":
                        continue
                    try:
                        entries.append((entry.name, entry.path, entry.is_dir(follow_symlinks=False),
                                        entry.is_symlink()))
                    except OSError:
                        continue
        except OSError:
            return []
        match = None if part == "*" else compile_part(part).fullmatch
        found = []
        for name, path, is_dir, is_link in entries:
            leaf = name.endswith(SUFFIX)
            if leaf and not last:
                continue
            if match is not None and not match(name[: -len(SUFFIX)] if leaf else name):
                continue
            accepted = self._accept(name, path, is_dir, is_link)
            if accepted is not None:
                found.append(accepted)
        if time.time() - st.st_mtime > self.SETTLE_SECONDS and not any(link for *_, link in entries):
            if self._cached_nodes + len(found) > self.MAX_CACHED_NODES:
                self._listings.clear()
                self._cached_nodes = 0
            self._listings[key] = (st.st_mtime_ns, found)
            self._cached_nodes += len(found)
        return found

    def _inside(self, path: str) -> str | None:
        real = os.path.realpath(path)
        if real == self.root or real.startswith(self.root + os.sep):
            return real
        return None

    def find(self, pattern: str, leaves_only: bool = False) -> list[Node]:
        """Matching nodes sorted by path; an InputError past ``max_nodes``."""
        pattern = pattern.strip()
        if len(pattern) > 2000:
            raise InputError("metric pattern longer than 2000 characters")
        parts = pattern.split(".")
        for part in parts:
            _check_part(part, pattern)
        dirs: list[tuple[str, str]] = [("", self.root)]  # (dotted prefix, real directory)
        found: list[Node] = []
        last = len(parts) - 1
        step = f"finding {pattern!r}"
        for depth, part in enumerate(parts):
            next_dirs: list[tuple[str, str]] = []
            for prefix, directory in dirs:
                deadline.check(step)
                children = self._children(directory, part, depth == last)
                if depth < last:
                    next_dirs.extend((prefix + name + ".", path) for name, path, is_dir in children if is_dir)
                    if len(next_dirs) > self.max_nodes:
                        raise InputError(f"pattern {pattern!r} matches more than {self.max_nodes} nodes")
                    continue
                for name, path, is_dir in children:
                    if not (is_dir and leaves_only):
                        found.append(Node(prefix + name, path, not is_dir, name))
                if len(found) > self.max_nodes:
                    raise InputError(f"pattern {pattern!r} matches more than {self.max_nodes} nodes")
            dirs = next_dirs
        found.sort()
        return found

    def _children(self, directory: str, part: str, last: bool):
        """(metric name, fs path, is_dir) for entries matching one pattern part.

        Directories are only offered, leaves only on the last part; a symlink is
        followed only when its target stays under the root and is of the right kind.
        Names are filtered before anything is asked of the file system: that is what
        keeps a 1000-entry ``*`` cheap.
        """
        if GLOB_CHARS.isdisjoint(part):
            for name in ([part, part + SUFFIX] if last else [part]):
                path = os.path.join(directory, name)
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue
                found = self._accept(name, path, stat.S_ISDIR(mode), stat.S_ISLNK(mode))
                if found is not None:
                    yield found
            return
        yield from self._list(directory, part, last)

    def _accept(self, name: str, path: str, is_dir: bool, is_link: bool):
        if name.startswith("."):
            return None
        leaf = name.endswith(SUFFIX)
        if is_link:
            real = self._inside(path)
            if real is None:
                return None
            path, is_dir = real, os.path.isdir(real)
            if not is_dir and not (leaf and os.path.isfile(real)):
                return None
        if leaf == is_dir:  # "x.wsp" directories and non-.wsp files are not metrics
            return None
        return (name[: -len(SUFFIX)] if leaf else name), path, is_dir

    def index(self) -> list[str]:
        """Every leaf metric path, sorted (``/metrics/index.json``)."""
        out: list[str] = []
        for directory, dirnames, filenames in os.walk(self.root):
            deadline.check("listing every metric")
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(directory, self.root)
            prefix = "" if rel == "." else rel.replace(os.sep, ".") + "."
            out.extend(prefix + f[: -len(SUFFIX)] for f in filenames if f.endswith(SUFFIX) and not f.startswith("."))
            if len(out) > self.max_nodes * 100:
                raise InputError("index too large")
        out.sort()
        return out
