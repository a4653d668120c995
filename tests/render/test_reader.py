"""The Whisper reader agrees with ``whisper.fetch`` (the reference) on real files."""

from __future__ import annotations

import math
import random

import pytest
import whisper

from django_statsd_push.render import reader

from .conftest import NOW, write_metric


def _same(ours, theirs):
    assert (ours is None) == (theirs is None)
    if ours is None:
        return
    (info, values), (their_info, their_values) = ours, theirs
    assert tuple(info) == tuple(their_info)
    assert [None if math.isnan(v) else v for v in values.tolist()] == their_values


@pytest.fixture
def wsp(root):
    rng = random.Random(7)
    values = [rng.choice([None, rng.uniform(-100, 100)]) for _ in range(2000)]
    return write_metric(root, "a.b", values, retentions=((10, 720), (60, 1440), (3600, 100)))


@pytest.mark.parametrize("frm,until", [
    (NOW - 3600, NOW), (NOW - 3605, NOW - 7), (NOW - 60, NOW + 600),  # until clipped to now
    (NOW - 7200, NOW - 3600),  # beyond the first archive: the 60 s archive serves the whole range
    (NOW - 86400 * 2, NOW),  # beyond the second: hourly
    (NOW - 86400 * 500, NOW - 86400 * 400),  # beyond all retention
    (NOW + 10, NOW + 100),  # in the future
    (NOW - 10, NOW - 10),  # zero-length range still yields one point
])
def test_matches_whisper_fetch(wsp, frm, until):
    _same(reader.fetch(wsp, frm, until, NOW), whisper.fetch(wsp, frm, until, now=NOW))


def test_from_is_exclusive_and_step_aligned(root):
    path = write_metric(root, "x", [1, 2, 3, 4, 5, 6])
    (start, end, step), values = reader.fetch(path, NOW - 60, NOW, NOW)
    assert (start, end, step) == (NOW - 50, NOW + 10, 10)
    assert values.tolist() == [1, 2, 3, 4, 5, 6]
    (start, _, _), values = reader.fetch(path, NOW - 55, NOW, NOW)
    assert start == NOW - 50 and values.tolist()[0] == 1


def test_wrapped_archive_matches_whisper(root):
    path = write_metric(root, "wrap", list(range(500)), retentions=((10, 120),))
    for frm in (NOW - 1200, NOW - 600, NOW - 33):
        _same(reader.fetch(path, frm, NOW, NOW), whisper.fetch(path, frm, NOW, now=NOW))


def test_stale_slots_are_gaps(root):
    """Points older than one archive cycle sit in slots the range maps to: they are nulls."""
    path = write_metric(root, "stale", [1.0] * 10, end=NOW - 1200, retentions=((10, 120),))
    (_, _, _), values = reader.fetch(path, NOW - 600, NOW, NOW)
    assert all(math.isnan(v) for v in values.tolist())


def test_header_and_corrupt_file(root, tmp_path):
    path = write_metric(root, "h", [1])
    header = reader.read_header(path)
    assert [(a.step, a.points) for a in header.archives] == [(10, 8640), (60, 10080)]
    assert header.aggregation == "average"
    bad = tmp_path / "bad.wsp"
    bad.write_bytes(b"\x00\x01")
    with pytest.raises(reader.CorruptWhisperFile):
        reader.fetch(str(bad), NOW - 60, NOW, NOW)
