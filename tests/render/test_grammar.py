"""Target parsing and its error messages."""

from __future__ import annotations

import pytest

from django_statsd_push.render.errors import InputError
from django_statsd_push.render.grammar import Call, Literal, PathExpr, parse, path_expressions


def test_nested_calls_kwargs_and_literals():
    node = parse('summarize(sumSeries(a.*.c, b.{x,y}), "1h", func="max", alignToFrom=true)')
    assert node == Call("summarize", (Call("sumSeries", (PathExpr("a.*.c"), PathExpr("b.{x,y}"))), Literal("1h")),
                        (("func", Literal("max")), ("alignToFrom", Literal(True))))
    assert path_expressions(node) == ["a.*.c", "b.{x,y}"]


@pytest.mark.parametrize("text,value", [("1", 1), ("-2", -2), ("1.5", 1.5), ("1e3", 1000.0), ("2.5e-1", 0.25),
                                        ("inf", float("inf")), ("none", None), ("false", False), ("'s'", "s")])
def test_literals(text, value):
    assert parse(f"f(a, {text})").args[1] == Literal(value)


def test_pipes_become_first_arguments():
    assert parse("a.b | scale(2) | alias('x')") == parse("alias(scale(a.b, 2), 'x')")


def test_paths_with_unusual_characters():
    assert parse("a-b.c_d.e:f.g@h") == PathExpr("a-b.c_d.e:f.g@h")
    assert parse(r"a.b\(c\)") == PathExpr("a.b(c)")
    assert parse("a.123") == PathExpr("a.123")


@pytest.mark.parametrize("text,fragment", [
    ("sumSeries(a.b", "missing ')'"),
    ("sumSeries(a.b))", "unexpected ')'"),
    ("sumSeries(a.b,,)", "expected a metric path"),
    ("a.b.", "invalid metric path"),
    ("a.{b,c", "unbalanced '{'"),
    ("f(a, 'unterminated)", "unterminated string"),
    ("f(x=1, a)", "positional argument after keyword"),
    ("a.b | 3", "expected a function call after '|'"),
    ("", "empty target"),
    ("f(" * 100 + "a" + ")" * 100, "nested deeper"),
])
def test_errors_name_the_problem(text, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")
                       .replace("|", r"\|")):
        parse(text)
