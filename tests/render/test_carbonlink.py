"""Merging carbon's cached points (graphite-web's merge_with_cache), and a hostile answer."""

from __future__ import annotations

import math
import pickle
import socket
import struct
import threading

import numpy as np
import pytest

from django_statsd_push.render.carbonlink import CarbonLink, merge

NAN = float("nan")


def clean(values):
    return [None if math.isnan(v) else v for v in values.tolist()]


def test_merge_at_the_raw_step_overwrites_slots():
    values = np.array([1.0, NAN, NAN])
    out = merge(values, 100, 10, [(110, 5.0), (125, 7.0), (90, 99.0), (200, 1.0)], "average", 10)
    assert clean(out) == [1.0, 5.0, 7.0]  # 125 -> its 120 slot; before start / past end ignored
    assert clean(values) == [1.0, None, None]  # the input is not edited


def test_merge_into_a_coarser_archive_uses_the_aggregation_method():
    values = np.array([NAN, NAN])
    cached = [(60, 1.0), (70, 2.0), (75, 4.0), (130, 3.0)]  # raw step 10: 75 replaces 70's slot
    assert clean(merge(values, 60, 60, cached, "sum", 10)) == [5.0, 3.0]
    assert clean(merge(values, 60, 60, cached, "max", 10)) == [4.0, 3.0]
    assert clean(merge(values, 60, 60, cached, "average", 10)) == [2.5, 3.0]


def test_a_pickle_with_classes_is_refused(caplog):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    body = pickle.dumps({"datapointsByMetric": {"m": Evil()}}, protocol=2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def answer():
            conn, _ = server.accept()
            with conn:
                size = struct.unpack("!L", conn.recv(4))[0]
                request = b""
                while len(request) < size:
                    request += conn.recv(size - len(request))
                assert pickle.loads(request) == {"type": "cache-query-bulk", "metrics": ["m"]}
                conn.sendall(struct.pack("!L", len(body)) + body)

        thread = threading.Thread(target=answer)
        thread.start()
        assert CarbonLink("127.0.0.1", server.getsockname()[1]).query(["m"]) == {}
        thread.join(5)
    assert "refusing to load" in caplog.text


def test_hash_ring_places_names_as_carbons_own_ring():
    """carbon-relay's consistent hashing (carbon.hashing, the real one) is the oracle."""
    from carbon.hashing import ConsistentHashRing

    from django_statsd_push.render.carbonlink import HashRing

    for nodes in ([("127.0.0.2", "a"), ("127.0.0.3", "a")], [("10.0.0.1", None)],
                  [(f"10.0.0.{i}", "x") for i in range(7)]):
        theirs, ours = ConsistentHashRing(nodes), HashRing(nodes)
        names = [f"stats.app.m{i}.count" for i in range(3000)]
        assert [ours.node(n) for n in names] == [theirs.get_node(n) for n in names]
    assert len({ours.node(n) for n in names}) == 7


def test_carbonlink_hosts_are_parsed_as_graphite_webs():
    from django_statsd_push.render.carbonlink import parse_hosts

    assert parse_hosts("127.0.0.2:7002:a, 127.0.0.3:7002:a") == [("127.0.0.2", 7002, "a"), ("127.0.0.3", 7002, "a")]
    assert parse_hosts(":7002") == [("127.0.0.1", 7002, None)]
    for bad in ("host", "host:port", "a:1:b:c", ""):
        with pytest.raises(ValueError, match="carbonlink"):
            parse_hosts(bad)
