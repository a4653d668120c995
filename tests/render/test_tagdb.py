"""The tag database on its own: graphite's tag rules, the query operators, the SQLite and
Redis stores (several servers over one store), indexing what carbon left on disk, limits."""

from __future__ import annotations

import os
import re
import sqlite3
import time
import uuid

import pytest
import whisper

from django_statsd_push.render import tagdb
from django_statsd_push.render.errors import InputError
from django_statsd_push.render.tagdb import SQLiteStore, TagDB

from ..conftest import require, tcp_reachable


@pytest.fixture
def db(tmp_path):
    d = TagDB(SQLiteStore(str(tmp_path / "tags.sqlite3")))
    yield d
    d.close()


@pytest.mark.parametrize("path, tags", [
    ("a.b;z=1;y=2", {"name": "a.b", "y": "2", "z": "1"}),
    ("~a.b;k=v=w", {"name": "a.b", "k": "v=w"}),  # graphite: leading ~ dropped from the name, = allowed in values
    ('cpu{host="a\\"b",dc="x"}', {"name": "cpu", "host": 'a"b', "dc": "x"}),
    ("plain.name", {"name": "plain.name"}),
])
def test_parse_follows_graphite(path, tags):
    assert tagdb.parse_path(path) == tags


@pytest.mark.parametrize("path, problem", [
    ("a;k=", "empty value"), ("a;=v", "not tag=value"), ("a;k", "not tag=value"), ("a;k!x=v", "'!'"),
    ("a;k=~v", "'~'"), (";k=v", "no metric name"), ("~;k=v", "no metric name"), ("a;k^=v", "'^'"),
    ("a/../../etc;k=v", "'/'"), ("a;k=v\0", "NUL"), ("x" * 2000 + ";k=v", "longer than"),
    ("a;" + ";".join(f"t{i}=v" for i in range(70)), "more than 64 tags"),
])
def test_malformed_paths_are_refused_by_name(path, problem):
    with pytest.raises(InputError, match=re.escape(problem)):
        tagdb.parse_path(path)


def test_canonical_sorts_tags_and_hashes_like_carbon(tmp_path):
    from carbon.util import TaggedSeries

    path = "web.hits;zone=b;env=prod"
    assert tagdb.canonical(path) == "web.hits;env=prod;zone=b" == TaggedSeries.parse(path).path
    hashed, readable = tagdb.whisper_paths("/w", tagdb.canonical(path))
    assert readable == "/w/" + TaggedSeries.encode(tagdb.canonical(path), os.sep, hash_only=False) + ".wsp"
    assert hashed == "/w/" + TaggedSeries.encode(tagdb.canonical(path), os.sep, hash_only=True) + ".wsp"


def test_operators_and_the_positive_rule(db):
    db.tag_multi_series(["m;a=1;b=x", "m;a=2", "m;a=3;b=y", "n;b=x"])
    assert db.find_series(["name=m"]) == ["m;a=1;b=x", "m;a=2", "m;a=3;b=y"]
    assert db.find_series(["name=m", "b=x"]) == ["m;a=1;b=x"]
    assert db.find_series(["name=m", "b!=x"]) == ["m;a=2", "m;a=3;b=y"]  # missing tag counts as ''
    assert db.find_series(["name=m", "b="]) == ["m;a=2"]
    assert db.find_series(["b!="]) == ["m;a=1;b=x", "m;a=3;b=y", "n;b=x"]
    assert db.find_series(["a=~[12]"]) == ["m;a=1;b=x", "m;a=2"]
    assert db.find_series(["name=m", "a!=~[12]"]) == ["m;a=3;b=y"]
    assert db.find_series(["b=~x|y", "name=~^m"]) == ["m;a=1;b=x", "m;a=3;b=y"]
    assert db.find_series(["name=m", "b=~.*"]) == db.find_series(["name=m"])  # matches '' -> a filter
    assert db.find_series(["name=m", "b!=~.*"]) == []  # graphite: a regex matching "" negated is positive
    for exprs in (["b!=x"], ["b=~.*"], ["b="], ["b!=~x"]):
        with pytest.raises(InputError, match="at least one tag expression"):
            db.find_series(exprs)
    for bad in ("nonsense", "a==b;c", "=v"):
        with pytest.raises(InputError, match="invalid tag expression"):
            db.find_series([bad])
    with pytest.raises(InputError, match="invalid regular expression"):
        db.find_series(["a=~("])


def test_sql_metacharacters_are_plain_text(db, tmp_path):
    evil = "m;q=x' OR 1=1 -- DROP TABLE series;r=%_\\\""
    assert db.tag_series(evil) == evil
    assert db.find_series(["q=x' OR 1=1 -- DROP TABLE series"]) == [evil]
    assert db.find_series(["r=%_\\\""]) == [evil]
    assert db.find_series(["r=%"]) == []  # no LIKE wildcards
    again = TagDB(SQLiteStore(str(tmp_path / "tags.sqlite3")))
    try:
        assert again.find_series(["name=m"]) == [evil]
    finally:
        again.close()


def test_a_bad_path_in_a_batch_stores_nothing(db):
    with pytest.raises(InputError, match="empty value"):
        db.tag_multi_series(["ok;a=1", "bad;a="])
    assert db.list_tags() == []


def test_delete_and_counts(db):
    db.tag_multi_series(["m;a=1", "m;a=2", "m;a=2;b=3"])
    assert db.get_tag("a") == {"tag": "a", "values": [{"value": "1", "count": 1}, {"value": "2", "count": 2}]}
    assert db.del_multi_series(["m;b=3;a=2"])  # any tag order
    assert db.get_tag("b") is None
    assert db.list_values("a") == [{"value": "1", "count": 1}, {"value": "2", "count": 1}]
    assert db.list_tags("^(a|n)") == [{"tag": "a"}, {"tag": "name"}]


def test_two_servers_over_one_sqlite_file_see_each_others_writes(tmp_path):
    one = TagDB(SQLiteStore(str(tmp_path / "shared.sqlite3")))
    two = TagDB(SQLiteStore(str(tmp_path / "shared.sqlite3")))
    try:
        one.tag_series("m;host=a")
        assert two.find_series(["name=m"]) == ["m;host=a"]
        two.tag_series("m;host=b")
        assert one.find_series(["name=m"]) == ["m;host=a", "m;host=b"]
        one.del_multi_series(["m;host=a"])
        assert two.find_series(["name=m"]) == ["m;host=b"]
    finally:
        one.close()
        two.close()


def test_series_limit_refuses_and_keeps_what_is_there(tmp_path):
    db = TagDB(SQLiteStore(str(tmp_path / "t.sqlite3")), max_series=3)
    try:
        db.tag_multi_series(["m;a=1", "m;a=2"])
        with pytest.raises(InputError, match="limit of 3"):
            db.tag_multi_series(["m;a=3", "m;a=4"])
        db.tag_multi_series(["m;a=1", "m;a=3"])  # known series do not count twice
        assert db.find_series(["name=m"]) == ["m;a=1", "m;a=2", "m;a=3"]
        with pytest.raises(InputError, match="more than 2"):
            db.find_series(["name=m"], limit=2)
    finally:
        db.close()


def test_ten_thousand_series_query_is_fast_and_bounded(db):
    db.tag_multi_series([f"app.req;host=h{i};dc=dc{i % 10};shard=s{i % 100}" for i in range(10_000)])
    started = time.perf_counter()
    found = db.find_series(["name=app.req", "dc=dc3", "shard=~s[0-4]3"])
    assert len(found) == 400 and found == sorted(found)  # shards s13, s23, s33, s43
    assert all(";dc=dc3;" in p for p in found)
    assert time.perf_counter() - started < 5  # generous: the bench measures speed; this catches a blow-up
    with pytest.raises(InputError, match="matches 10000 series, more than 5000"):
        db.find_series(["name=app.req"], limit=5000)


def test_index_whisper_reads_readable_names_and_skips_the_rest(tmp_path, db):
    root = tmp_path / "whisper"
    for path in ("a.b;k=v", "c;x=1.5;y=2"):
        hashed, readable = tagdb.whisper_paths(str(root), tagdb.canonical(path))
        os.makedirs(os.path.dirname(readable), exist_ok=True)
        whisper.create(readable, [(10, 10)])
    hashed, _ = tagdb.whisper_paths(str(root), "h;k=v")
    os.makedirs(os.path.dirname(hashed), exist_ok=True)
    whisper.create(hashed, [(10, 10)])
    bad = root / "_tagged" / "000" / "000" / "broken;k=.wsp"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"")
    assert db.index_whisper(str(root)) == 2
    assert db.find_series(["name=~."]) == ["a.b;k=v", "c;x=1.5;y=2"]
    assert db.index_whisper(str(root)) == 0
    assert tagdb.tagged_nodes(str(root), ["h;k=v", "a.b;k=v", "missing;k=v"])[0].fs_path == hashed


def test_open_tagdb_default_sits_beside_the_whisper_root(tmp_path):
    (tmp_path / "whisper").mkdir()
    db = tagdb.open_tagdb(str(tmp_path / "whisper"))
    try:
        db.tag_series("m;a=1")
        assert (tmp_path / "tagdb.sqlite3").exists()
        with sqlite3.connect(tmp_path / "tagdb.sqlite3") as raw:
            assert raw.execute("SELECT path FROM series").fetchall() == [("m;a=1",)]
    finally:
        db.close()


@pytest.fixture
def redis_store():
    require(tcp_reachable("127.0.0.1", 6379), "Redis is not reachable on 127.0.0.1:6379")
    from django_statsd_push.render.tagdb_redis import RedisStore

    prefix = f"test-{uuid.uuid4().hex}:"
    stores = []

    def make():
        stores.append(RedisStore("redis://127.0.0.1:6379/11", prefix=prefix))
        return stores[-1]

    yield make
    stores[0].client.delete(stores[0].paths_key, stores[0].version_key)
    for store in stores:
        store.close()


def test_redis_store_is_shared_by_two_servers(redis_store):
    one, two = TagDB(redis_store()), TagDB(redis_store())
    one.tag_multi_series(["m;host=a;x=1", "m;host=b"])
    assert two.find_series(["name=m", "x="]) == ["m;host=b"]
    two.tag_series("m;host=c")
    assert one.find_series(["host=~[ac]"]) == ["m;host=a;x=1", "m;host=c"]
    one.del_multi_series(["m;x=1;host=a"])
    assert two.find_series(["name=m"]) == ["m;host=b", "m;host=c"]
    assert two.store.count() == 2


def test_open_tagdb_reports_an_unreachable_redis(tmp_path):
    with pytest.raises(ValueError, match="cannot reach the tag database"):
        tagdb.open_tagdb(str(tmp_path), "redis://127.0.0.1:1/0")


def test_open_tagdb_with_a_redis_url(tmp_path):
    require(tcp_reachable("127.0.0.1", 6379), "Redis is not reachable on 127.0.0.1:6379")
    from django_statsd_push.render.tagdb_redis import PATHS_KEY, VERSION_KEY

    url = "redis://127.0.0.1:6379/10"
    root = tmp_path / "whisper"
    root.mkdir()
    one, two = tagdb.open_tagdb(str(root), url), tagdb.open_tagdb(str(root), url)
    try:
        one.store.client.delete(PATHS_KEY, VERSION_KEY)
        one.tag_series("r;k=v")
        assert two.find_series(["k=v"]) == ["r;k=v"]
        assert not (tmp_path / tagdb.SQLITE_NAME).exists()
    finally:
        one.store.client.delete(PATHS_KEY, VERSION_KEY)
        one.close()
        two.close()
