"""render/regex.py: client expressions answer as Python's ``re`` (graphite-web's engine)
would, but none can run unbounded or hold the GIL."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from django_statsd_push.render import deadline
from django_statsd_push.render.errors import InputError, OverBudget
from django_statsd_push.render.finder import Finder, compile_part
from django_statsd_push.render.regex import user_regex

NAMES = ["stats.timers.api.GET.mean", "servers.web-01.cpu.user", "a.b1.c", "sumSeries(a.*)", "",
         "caf\u00e9.gr\u00fc\u00dfe.\u00e9t\u00e9", "x.y.z;tag=v", "aaa.bbb"]
PATTERNS = [r"^stats\.timers\.", r"(\w+)\.(\w+)", r"(?P<host>web-\d+)", r"\.mean$", r"x*", r"^$", r"(?i)API",
            r"\w+", r"[^.]+$", r"(a)|(b)", r"(?!stats)^\w+", r"(\w)\1", r"(?<=\.)c", r"\d\Z", r"\bb"]
TEMPLATES = [r"\1", r"<\g<0>>", "-", r"\2\1", "\u00e9\u20ac", r"\\", r"\n", r"\07", r"\g<1>0", r"$1", r"\.", ""]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_search_and_sub_answer_as_python_re(pattern):
    regex = user_regex(pattern, "test")
    for name in NAMES:
        assert regex.search(name) == (re.search(pattern, name) is not None), (pattern, name)
        for template in TEMPLATES:
            try:
                expected = re.sub(pattern, template, name)
            except (re.error, IndexError):
                with pytest.raises(InputError, match="invalid replacement"):
                    regex.sub(template, name)
            else:
                assert regex.sub(template, name) == expected, (pattern, template, name)


@pytest.mark.parametrize("template", [r"\q", r"\x41", r"\3", r"\g<zz>", r"\g<1", r"\g<a-b>", "\\", r"\777", r"\99"])
def test_bad_templates_are_errors_as_in_python_re(template):
    with pytest.raises((re.error, IndexError)):
        re.sub(r"(a)(b)", template, "ab")
    with pytest.raises(InputError, match="invalid replacement"):
        user_regex(r"(a)(b)", "aliasSub").sub(template, "ab")


def test_engines_chosen():
    assert user_regex(r"^(\w+\.?)+X$", "t").linear
    assert not user_regex(r"(?!x)a", "t").linear  # look-around: backtracking engine, under a budget


def test_catastrophic_pattern_is_linear():
    """Python's re never finishes this (the issue's server freeze); RE2 answers at once."""
    name = "stats." + "abcdefgh." * 200 + "end"
    regex = user_regex(r"^(\w+\.?)+X$", "aliasSub")
    started = time.perf_counter()
    assert regex.sub("x", name) == name
    assert not regex.search(name)
    assert time.perf_counter() - started < 2.0  # typically well under 1 ms


def _ticks_while(work) -> tuple[int, BaseException | None]:
    """Run ``work`` and count how often another thread got to run meanwhile."""
    ticks = 0
    done = threading.Event()

    def tick():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    error = None
    try:
        work()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        error = exc
    finally:
        done.set()
        thread.join()
    return ticks, error


def test_backtracking_pattern_over_its_budget_is_a_400_naming_it_and_frees_the_gil():
    regex = user_regex(r"^(?=a)(a|aa)+$", "grep")
    with deadline.scope(60, regex_seconds=0.3):
        started = time.monotonic()
        ticks, error = _ticks_while(lambda: regex.search("a" * 60 + "b"))
        took = time.monotonic() - started
    assert isinstance(error, InputError), error
    assert "'^(?=a)(a|aa)+$' in grep" in str(error) and "0.3 s (--regex-budget)" in str(error)
    assert took < 20, took  # stopped by the budget, not by finishing
    assert ticks >= 10, ticks  # the other thread ran (a GIL-holding match gives 0 or 1)


def test_request_deadline_bounds_a_regex_too():
    regex = user_regex(r"^(?=a)(a|aa)+$", "exclude")
    with deadline.scope(0.2, regex_seconds=30):
        with pytest.raises(OverBudget, match=r"time budget of 0.2 s \(--time-budget\) while matching"):
            regex.search("a" * 60 + "b")


def test_non_ascii_names_use_python_semantics_for_class_escapes():
    """RE2's \\w is ASCII-only; Python's (graphite-web's) is Unicode."""
    regex = user_regex(r"^\w+$", "grep")
    assert regex.linear
    assert regex.search("caf\u00e9") and regex.sub("x", "caf\u00e9") == "x"


def test_invalid_and_oversized_patterns():
    with pytest.raises(InputError, match=r"invalid regular expression '\(unclosed' in aliasSub"):
        user_regex("(unclosed", "aliasSub")
    with pytest.raises(InputError, match="longer than 2000 characters"):
        user_regex("a" * 2001, "grep")


def test_find_globs_compile_to_the_linear_engine():
    part = "*a" * 40 + "*b"
    regex = compile_part(part)
    assert regex.linear
    name = "a" * 250
    started = time.perf_counter()
    assert not regex.fullmatch(name)
    assert time.perf_counter() - started < 2.0
    assert compile_part("{web,db}-[0-9]?").fullmatch("db-07")
    assert not compile_part("{web,db}-[0-9]?").fullmatch("db-07x")


def test_names_that_are_not_utf8_are_matched_as_python_re_would(root):
    """A file name that is not UTF-8 reaches Python as surrogate escapes, which RE2 cannot take."""
    name = "ab\udcff"
    assert user_regex("a.", "aliasSub").sub("x", name) == re.sub("a.", "x", name)
    assert user_regex(r"\w+$", "grep").search(name) == (re.search(r"\w+$", name) is not None)
    os.makedirs(os.fsencode(root / "d"))
    open(os.path.join(os.fsencode(root / "d"), b"\xff.wsp"), "wb").close()
    assert [node.name for node in Finder(str(root)).find("d.?")] == ["\udcff"]
