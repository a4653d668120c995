"""Every regular expression a client supplies (aliasSub, grep, exclude, find patterns,
...) is compiled here, by :func:`user_regex`, so that none can stall the server.

Why two engines. graphite-web runs them on Python's ``re``, a backtracking engine:
``aliasSub(x, '^(\\w+\\.?)+X$', 'x')`` takes exponential time while holding the GIL, so
one request froze every other one and even SIGTERM's handler (which needs the GIL).

- RE2 (``google-re2``) first: linear time in the text, releases the GIL while it
  matches, and accepts nearly all the syntax Graphite users write (groups, named
  groups, classes, ``(?i)``, non-greedy repeats, alternation, anchors).
- RE2 refuses look-around, back-references, ``\\Z`` and a few other backtracking-only
  constructs. Those patterns run on the ``regex`` module (Python ``re`` syntax and
  semantics) with ``concurrent=True`` (it releases the GIL) and a timeout: the
  smaller of the regex budget (``--regex-budget``) and what is left of the request's
  budget. Over the regex budget the client gets a 400 naming the expression.
- RE2's ``\\w \\d \\s \\b`` (and their negations) are ASCII-only where Python's are
  Unicode; for such a pattern, a non-ASCII name is matched by the ``regex`` engine
  too, so the answer is Python's.

Substitution templates follow Python's ``re.sub`` rules (``\\1``, ``\\g<name>``,
``\\g<0>``, ``\\n``; an unknown letter escape or group is an error), expanded by our
own small parser: RE2's wrapper mis-decodes non-ASCII template text.
"""

from __future__ import annotations

import string
from functools import lru_cache

import re2
import regex as backtracking

from . import deadline
from .errors import InputError
from .settings import Limits

MAX_PATTERN_LENGTH = 2000
#: RE2's memory per expression (program + DFA cache; past it RE2 falls back to its
#: slower, still linear, NFA). With at most CACHED compiled expressions kept, a client
#: sending many distinct expressions cannot make the cache grow past CACHED * RE2_MEMORY.
RE2_MEMORY = 2 << 20
CACHED = 256
_ASCII_ONLY_IN_RE2 = frozenset("wWdDsSbB")
_TEMPLATE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_OCTAL = frozenset("01234567")


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is an answer for us, not a log line
    options.max_mem = RE2_MEMORY
    return options


class UserRegex:
    """A compiled client expression: ``search``, ``fullmatch`` and ``sub`` on str."""

    __slots__ = ("pattern", "where", "_linear", "_slow", "_slow_error", "_unicode_classes", "_groups",
                 "_groupindex")

    def __init__(self, pattern: str, where: str) -> None:
        self.pattern = pattern
        self.where = where
        try:
            self._linear = re2.compile(pattern, _re2_options())
        except (re2.error, ValueError):  # ValueError: a lone surrogate is not UTF-8
            self._linear = None
        try:
            self._slow = backtracking.compile(pattern)
            self._slow_error = None
        except (backtracking.error, ValueError, OverflowError, RecursionError) as exc:
            self._slow = None
            self._slow_error = exc
        if self._linear is None and self._slow is None:
            raise InputError(f"invalid regular expression {pattern!r} in {where}: {self._slow_error}")
        self._unicode_classes = self._linear is not None and self._slow is not None and _uses_unicode_classes(
            pattern)
        compiled = self._linear if self._linear is not None else self._slow
        self._groups = compiled.groups
        self._groupindex = dict(compiled.groupindex)

    @property
    def linear(self) -> bool:
        """True when RE2 runs it (for every ASCII text at least)."""
        return self._linear is not None

    def _timeout(self) -> float:
        current = deadline.current()
        limit = current.regex_seconds if current else Limits.regex_budget
        if current is not None:
            left = current.remaining()
            if left <= 0:
                raise deadline.over_budget(current, f"matching {self.pattern!r} in {self.where}")
            limit = min(limit, left)
        return limit

    def _over(self, timeout: float) -> Exception:
        current = deadline.current()
        if current is not None and current.remaining() <= 0:
            return deadline.over_budget(current, f"matching {self.pattern!r} in {self.where}")
        return InputError(f"regular expression {self.pattern!r} in {self.where} ran past its time budget "
                          f"of {timeout:g} s (--regex-budget): it needs backtracking (look-around or "
                          "back-references); rewrite it without them")

    def _run(self, method: str, text: str):
        """``search``/``fullmatch``/``finditer`` (as a list) on the engine this text needs."""
        if self._linear is not None and not (self._unicode_classes and not text.isascii()):
            try:
                found = getattr(self._linear, method)(text)
                return list(found) if method == "finditer" else found
            except UnicodeEncodeError:  # a surrogate-escaped file name is not UTF-8: RE2 cannot take it
                if self._slow is None:
                    raise InputError(f"regular expression {self.pattern!r} in {self.where} cannot be "
                                     f"matched against the name {text!r} (not UTF-8)") from None
        timeout = self._timeout()
        try:
            found = getattr(self._slow, method)(text, timeout=timeout, concurrent=True)
            return list(found) if method == "finditer" else found
        except TimeoutError:
            raise self._over(timeout) from None

    def search(self, text: str) -> bool:
        return self._run("search", text) is not None

    def fullmatch(self, text: str) -> bool:
        return self._run("fullmatch", text) is not None

    def sub(self, template: str, text: str) -> str:
        """``re.sub(pattern, template, text)``; a bad template is an InputError."""
        pieces = _parse_template(template, self._groups, tuple(sorted(self._groupindex.items())), self.where)
        out: list[str] = []
        end = 0
        for match in self._run("finditer", text):
            out.append(text[end:match.start()])
            out.extend(piece if isinstance(piece, str) else (match.group(piece) or "") for piece in pieces)
            end = match.end()
        out.append(text[end:])
        return "".join(out)


@lru_cache(maxsize=CACHED)
def user_regex(pattern: str, where: str) -> UserRegex:
    """The one way to compile a client-supplied expression; ``where`` names the function
    (or parameter) for error messages, e.g. ``"aliasSub"``. A bad pattern is an InputError."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InputError(f"regular expression in {where} is longer than {MAX_PATTERN_LENGTH} characters")
    return UserRegex(pattern, where)


def _uses_unicode_classes(pattern: str) -> bool:
    """Whether the pattern has an escape whose meaning differs between RE2 (ASCII) and Python (Unicode)."""
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] == "\\":
            if pattern[i + 1] in _ASCII_ONLY_IN_RE2:
                return True
            i += 2
        else:
            i += 1
    return False


@lru_cache(maxsize=CACHED)
def _parse_template(template: str, groups: int, groupindex: tuple, where: str) -> tuple[str | int, ...]:
    """Python's ``re.sub`` template rules -> literal strings and group numbers."""
    names = dict(groupindex)
    pieces: list[str | int] = []
    literal: list[str] = []

    def bad(why: str) -> InputError:
        return InputError(f"invalid replacement {template!r} in {where}: {why}")

    def group(ref: int) -> None:
        if ref > groups:
            raise bad(f"invalid group reference {ref}")
        pieces.append("".join(literal))
        literal.clear()
        pieces.append(ref)

    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "\\":
            literal.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise bad("bad escape (end of template)")
        c = template[i + 1]
        i += 2
        if c == "g":
            close = template.find(">", i)
            if template[i:i + 1] != "<" or close < 0:
                raise bad("\\g needs <name> or <number>")
            name = template[i + 1:close]
            i = close + 1
            if name.isdecimal() and name.isascii():
                group(int(name))
            elif name in names:
                group(names[name])
            elif name.isidentifier():
                raise bad(f"unknown group name {name!r}")
            else:
                raise bad(f"bad character in group name {name!r}")
        elif c == "0":
            digits = c
            while len(digits) < 3 and template[i:i + 1] in _OCTAL and template[i:i + 1]:
                digits += template[i]
                i += 1
            literal.append(chr(int(digits, 8)))
        elif c in string.digits:
            following = template[i:i + 2]
            if c in _OCTAL and len(following) == 2 and set(following) <= _OCTAL:
                value = int(c + following, 8)
                if value > 0o377:
                    raise bad(f"octal escape \\{c}{following} outside of range 0-0o377")
                literal.append(chr(value))
                i += 2
            elif following[:1].isdigit() and following[:1].isascii():
                group(int(c + following[0]))
                i += 1
            else:
                group(int(c))
        elif c in _TEMPLATE_ESCAPES:
            literal.append(_TEMPLATE_ESCAPES[c])
        elif c in string.ascii_letters:
            raise bad(f"bad escape \\{c}")
        else:
            literal.append("\\" + c)
    pieces.append("".join(literal))
    return tuple(piece for piece in pieces if piece != "")
