"""The target-expression parser: text -> a small tree, with errors that say where.

Follows graphite-web's grammar: calls with positional then keyword arguments,
numbers (int, float, scientific), quoted strings (kept raw, as graphite does),
``true``/``false``/``none``/``inf``, path expressions with ``{a,b}`` groups and
``\\`` escapes, and pipes (``a.b|scale(2)`` is ``scale(a.b,2)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import InputError

MAX_TARGET_LENGTH = 10000
MAX_DEPTH = 64
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?")
_SYMBOLS = set("(){},.'\"\\|")
_KEYWORDS = {"true": True, "false": False, "none": None, "inf": float("inf")}


@dataclass(frozen=True)
class PathExpr:
    path: str


@dataclass(frozen=True)
class Literal:
    value: object


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple = ()
    kwargs: tuple = ()  # ((name, node), ...)
    raw: str = field(default="", compare=False)  # the call as written (seriesByTag's path expression)


Node = PathExpr | Literal | Call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def error(self, message: str, pos: int | None = None) -> InputError:
        pos = self.pos if pos is None else pos
        return InputError(f"invalid target {self.text!r}: {message} at position {pos}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def parse(self) -> Node:
        node = self.expression()
        self.skip()
        if self.pos < len(self.text):
            c = self.text[self.pos]
            if c == ")":
                raise self.error("unbalanced parentheses: unexpected ')'")
            raise self.error(f"unexpected {c!r}")
        return node

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels")
        self.skip()
        start = self.pos
        m = _IDENT.match(self.text, self.pos)
        if m and self.text[m.end() : m.end() + 1] == "(":
            node: Node = self.call()
        else:
            path = self.path()
            if not path:
                c = self.text[start : start + 1]
                raise self.error(f"expected a metric path or function call, found {c!r}" if c else
                                 "expected a metric path or function call, found the end", start)
            node = PathExpr(path)
        while self.peek() == "|":
            self.pos += 1
            self.skip()
            m = _IDENT.match(self.text, self.pos)
            if not m or self.text[m.end() : m.end() + 1] != "(":
                raise self.error("expected a function call after '|'")
            call = self.call()
            node = Call(call.name, (node,) + call.args, call.kwargs)
        self.depth -= 1
        return node

    def call(self) -> Call:
        start = self.pos
        m = _IDENT.match(self.text, self.pos)
        assert m is not None
        name = m.group()
        self.pos = m.end() + 1  # past "("
        args: list[Node] = []
        kwargs: list[tuple[str, Node]] = []
        if self.peek() == ")":
            self.pos += 1
            return Call(name, raw=self.text[start:self.pos])
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.error(f"unbalanced parentheses: missing ')' to close {name}( opened", start)
            km = _IDENT.match(self.text, self.pos)
            after = km and self.text[km.end() :].lstrip(" ")
            if km and after.startswith("=") and not after.startswith("=="):
                self.pos = self.text.index("=", km.end()) + 1
                kwargs.append((km.group(), self.argument()))
            elif kwargs:
                raise self.error(f"positional argument after keyword argument in {name}()")
            else:
                args.append(self.argument())
            c = self.peek()
            if c == ",":
                self.pos += 1
                continue
            if c == ")":
                self.pos += 1
                return Call(name, tuple(args), tuple(kwargs), self.text[start:self.pos])
            if not c:
                raise self.error(f"unbalanced parentheses: missing ')' to close {name}( opened", start)
            raise self.error(f"expected ',' or ')' in {name}(), found {c!r}")

    def _ends_argument(self, end: int) -> bool:
        rest = self.text[end:].lstrip(" \t")
        return not rest or rest[0] in ",)"

    def argument(self) -> Node:
        self.skip()
        text, pos = self.text, self.pos
        c = text[pos : pos + 1]
        if c in ("'", '"'):
            i = pos + 1
            while i < len(text):
                if text[i] == "\\":
                    i += 2
                    continue
                if text[i] == c:
                    self.pos = i + 1
                    return Literal(text[pos + 1 : i])
                i += 1
            raise self.error("unterminated string", pos)
        m = _NUMBER.match(text, pos)
        if m and self._ends_argument(m.end()):
            self.pos = m.end()
            raw = m.group()
            return Literal(int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw))
        m = _IDENT.match(text, pos)
        if m and m.group().lower() in _KEYWORDS and self._ends_argument(m.end()):
            self.pos = m.end()
            return Literal(_KEYWORDS[m.group().lower()])
        return self.expression()

    def path(self) -> str:
        text = self.text
        out: list[str] = []
        brace = 0
        while self.pos < len(text):
            c = text[self.pos]
            if c == "\\" and self.pos + 1 < len(text):
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if c == "{":
                brace += 1
            elif c == "}":
                if not brace:
                    break
                brace -= 1
            elif c == "," and brace:
                pass
            elif c == "." or (c not in _SYMBOLS and not c.isspace()):
                pass
            else:
                break
            out.append(c)
            self.pos += 1
        if brace:
            raise self.error("unbalanced '{' in metric path")
        path = "".join(out)
        if path and (path.startswith(".") or path.endswith(".") or ".." in path):
            raise self.error(f"invalid metric path {path!r}")
        return path


def parse(target: str) -> Node:
    """Parse one target; InputError naming the problem and its position."""
    if len(target) > MAX_TARGET_LENGTH:
        raise InputError(f"target longer than {MAX_TARGET_LENGTH} characters")
    if not target.strip():
        raise InputError("empty target")
    return _Parser(target).parse()


def path_expressions(node: Node) -> list[str]:
    """Every path expression in a tree, in order."""
    if isinstance(node, PathExpr):
        return [node.path]
    if isinstance(node, Call):
        out: list[str] = []
        for arg in list(node.args) + [v for _, v in node.kwargs]:
            out.extend(path_expressions(arg))
        return out
    return []


def first_path_expression(node: Node) -> str | None:
    """The first path met by walking first arguments (graphite's _getFirstPathExpression)."""
    while isinstance(node, Call):
        if not node.args:
            return None
        node = node.args[0]
    return node.path if isinstance(node, PathExpr) else None
