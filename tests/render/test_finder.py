"""Finding nodes: globs at any node, and no way out of the Whisper root."""

from __future__ import annotations

import os

import pytest

from django_statsd_push.render.errors import InputError
from django_statsd_push.render.finder import Finder

from .conftest import write_metric


@pytest.fixture
def finder(root):
    for path in ["a.b1.c", "a.b2.c", "a.b3.d", "a.x.c", "a.bb.c", "a.b1.cpu", "top", "z.y"]:
        write_metric(root, path, [1])
    return Finder(str(root))


def paths(nodes):
    return [n.path for n in nodes]


@pytest.mark.parametrize("pattern,expected", [
    ("a.*.c", ["a.b1.c", "a.b2.c", "a.bb.c", "a.x.c"]),
    ("a.b?.c", ["a.b1.c", "a.b2.c", "a.bb.c"]),
    ("a.b[1-2].c", ["a.b1.c", "a.b2.c"]),
    ("a.b[!1].c", ["a.b2.c", "a.bb.c"]),
    ("a.{b1,x}.c", ["a.b1.c", "a.x.c"]),
    ("a.{b*,x}.{c,d}", ["a.b1.c", "a.b2.c", "a.b3.d", "a.bb.c", "a.x.c"]),
    ("a.b1.c*", ["a.b1.c", "a.b1.cpu"]),
    ("*.*.c", ["a.b1.c", "a.b2.c", "a.bb.c", "a.x.c"]),
    ("a.b1.c", ["a.b1.c"]),
    ("a.nope.c", []),
    ("*", ["a", "top", "z"]),
])
def test_globs(finder, pattern, expected):
    assert paths(finder.find(pattern)) == expected


def test_leaf_and_branch_flags(finder):
    nodes = {n.path: n.is_leaf for n in finder.find("*")}
    assert nodes == {"a": False, "top": True, "z": False}
    assert paths(finder.find("*", leaves_only=True)) == ["top"]


@pytest.mark.parametrize("pattern", ["..", "a...c", "../etc", "a/../../etc", ".hidden", "a..b", "a.\0"])
def test_traversal_patterns_are_rejected(finder, pattern):
    with pytest.raises(InputError):
        finder.find(pattern)


def test_symlink_out_of_root_is_invisible(root, tmp_path, finder):
    outside = tmp_path / "outside"
    outside.mkdir()
    write_metric(outside, "secret", [1])
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret.wsp", root / "leak.wsp")
    assert "link" not in paths(finder.find("*"))
    assert finder.find("link.secret") == []
    assert finder.find("leak") == []
    assert finder.find("*.secret") == []


def test_symlink_inside_root_is_followed(root, finder):
    os.symlink(root / "a", root / "alias")
    assert paths(finder.find("alias.b1.c")) == ["alias.b1.c"]


def test_hidden_entries_never_listed(root, finder):
    write_metric(root, "a.b1.x", [1])
    os.rename(root / "a" / "b1" / "x.wsp", root / "a" / "b1" / ".x.wsp")
    assert paths(finder.find("a.b1.*")) == ["a.b1.c", "a.b1.cpu"]


def test_node_limit(root):
    for i in range(6):
        write_metric(root, f"m.s{i}", [1])
    with pytest.raises(InputError, match="more than 5"):
        Finder(str(root), max_nodes=5).find("m.*")


def test_index(finder):
    assert finder.index() == ["a.b1.c", "a.b1.cpu", "a.b2.c", "a.b3.d", "a.bb.c", "a.x.c", "top", "z.y"]


def test_settled_directory_answers_are_reused_until_it_changes(root):
    import time

    for i in range(3):
        write_metric(root, f"s.m{i}", [1])
    old = time.time() - 60
    os.utime(root / "s", (old, old))
    finder = Finder(str(root))
    assert paths(finder.find("s.*")) == ["s.m0", "s.m1", "s.m2"]
    assert finder._listings  # kept: the directory is settled
    write_metric(root, "s.m3", [1])  # a new file changes the directory's mtime
    assert paths(finder.find("s.*")) == ["s.m0", "s.m1", "s.m2", "s.m3"]
    os.utime(root / "s", (old, old + 1))
    finder.find("s.*")
    (root / "s" / "m0.wsp").unlink()
    assert paths(finder.find("s.*")) == ["s.m1", "s.m2", "s.m3"]


def test_a_fresh_directory_is_not_cached(root):
    write_metric(root, "fresh.m", [1])
    finder = Finder(str(root))
    finder.find("fresh.*")
    assert not finder._listings
