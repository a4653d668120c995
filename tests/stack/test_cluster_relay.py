"""Real carbon-relay (consistent hashing) in front of two real carbon-caches, each on its own
loopback address: every series lands on exactly one cache, the one our ring names, and the
render API's carbonlink reads points neither cache has written yet from the right cache."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
import whisper

from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.carbonlink import CarbonLink, CarbonLinkPool, HashRing, parse_hosts
from django_statsd_push.render.cluster import Cluster
from django_statsd_push.render.httpserver import BackgroundServer
from django_statsd_push.stack.carbon_cache import CarbonCache
from django_statsd_push.stack.relay import INSTANCE, CarbonRelay, carbonlink_hosts
from tests.conftest import require

HOSTS = ("127.0.0.2", "127.0.0.3")
NAMES = [f"stats.cluster.m{i:02d}" for i in range(40)]


def loopback_alias_usable(host: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


def wait_for(check, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def relayed(tmp_path):
    require(all(map(loopback_alias_usable, HOSTS)), "127.0.0.2/127.0.0.3 cannot be bound")
    # timesorted + MIN_TIMESTAMP_LAG hold fresh points in the caches: only carbonlink shows them
    hold = {"CACHE_WRITE_STRATEGY": "timesorted", "MIN_TIMESTAMP_LAG": "3600"}
    caches = [CarbonCache(tmp_path / f"cache{i}", host=host, settings=hold) for i, host in enumerate(HOSTS)]
    started: list[CarbonCache] = []
    try:
        for cache in caches:
            started.append(cache.start(timeout=60))
        relay = CarbonRelay(tmp_path / "relay", [(c.host, c.pickle_port) for c in caches])
        started.append(relay.start(timeout=60))
        yield caches, relay
    finally:
        for part in reversed(started):
            part.stop(timeout=15, flush=False)


def test_relay_places_each_series_once_and_carbonlink_reads_the_right_cache(relayed):
    caches, relay = relayed
    ring = HashRing([(c.host, INSTANCE) for c in caches])
    owner = {name: HOSTS.index(ring.node(name)[0]) for name in NAMES}
    assert 5 < sum(owner.values()) < 35  # both caches get a share
    now = int(time.time())
    stamp = now - now % 10
    for name in NAMES:  # the files exist (empty) where the ring says: the points do not
        path = caches[owner[name]].whisper_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(10, 360)])
    with socket.create_connection((relay.host, relay.line_port), timeout=10) as s:
        s.sendall("".join(f"{name} {i + 1} {stamp}\n" for i, name in enumerate(NAMES)).encode())

    # carbon-relay's own ring put each name on one cache, the one ours names
    def share(i: int) -> dict | None:
        points = {name: p for name, p in CarbonLink(HOSTS[i], caches[i].query_port).query(NAMES).items() if p}
        return points if len(points) == sum(1 for n in NAMES if owner[n] == i) else None

    held = [wait_for(lambda i=i: share(i), f"cache {HOSTS[i]} to hold its share") for i in range(2)]
    for i, points in enumerate(held):
        assert sorted(points) == sorted(n for n in NAMES if owner[n] == i)
    assert set(held[0]).isdisjoint(held[1])

    pool = CarbonLinkPool(parse_hosts(carbonlink_hosts([(c.host, c.query_port) for c in caches])))
    got = pool.query(NAMES)
    assert {name: points[-1][1] for name, points in got.items()} == {n: float(i + 1) for i, n in enumerate(NAMES)}

    # read back through one front over two render servers, each with every cache's carbonlink
    apps = [RenderApp(str(c.whisper_dir), static_dir=None, carbonlink=pool) for c in caches]
    with BackgroundServer(apps[0]) as one, BackgroundServer(apps[1]) as two:
        root = caches[0].root.parent / "front"
        root.mkdir()
        front = RenderApp(str(root), static_dir=None, cluster=Cluster([one, two]))
        with BackgroundServer(front) as url:
            query = "/render?target=sumSeries(stats.cluster.*)&from=-5min&format=json"
            with urllib.request.urlopen(url + query, timeout=30) as response:
                doc = json.loads(response.read())
                assert "X-Cluster-Failed-Peers" not in response.headers
    values = [v for v, _ in doc[0]["datapoints"] if v is not None]
    assert values == [sum(range(1, 41))]  # 820: every point once, none of them written yet
    for name in NAMES:
        assert set(whisper.fetch(str(caches[owner[name]].whisper_file(name)), stamp - 60)[1]) == {None}
