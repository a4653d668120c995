"""One render request reads each Whisper file once, so every expression in it sees the
same data: the dashboard's cache hit ratio once showed 1.8k %, its hits read after Carbon
had written the newest step and its total (hits + misses) read before."""

from __future__ import annotations

import json
from pathlib import Path

import whisper

from django_statsd_push.render import reader
from django_statsd_push.render.app import RenderApp

from .conftest import NOW, Client, write_metric

PANELS = Path(reader.__file__).parent / "static" / "panels.json"


def panel_targets(panel_id: str) -> list[str]:
    (panel,) = [p for p in json.loads(PANELS.read_text()) if p["id"] == panel_id]
    return panel["targets"]


class CarbonFlushingMidRequest:
    """carbon-cache's side of the race, played step by step (a real carbon-cache cannot be
    made to flush at one chosen instant): the newest hits sit in its cache for the first
    query; then its writer moves them to disk between the render API's next file read and
    its cache query, so that read sees them in neither place."""

    def __init__(self, hit_file: str) -> None:
        self.hit_file = hit_file
        self.queries = 0

    def query(self, metrics: list[str]) -> dict:
        self.queries += 1
        if self.queries == 1:
            return {m: [(NOW, 18.0)] for m in metrics if m.endswith(".hit")}
        if self.queries == 2:
            whisper.update(self.hit_file, 18.0, NOW, now=NOW)  # after this read's disk read
        return {}


def test_carbon_flushing_mid_request_cannot_push_the_hit_ratio_past_100(root):
    hit = write_metric(root, "stats_counts.cache.default.get.hit", [5, 5, 5, None])
    write_metric(root, "stats_counts.cache.default.get.miss", [5, 5, 5, 1])
    client = Client(RenderApp(str(root), static_dir=None, clock=lambda: NOW,
                              carbonlink=CarbonFlushingMidRequest(hit)))
    (target,) = panel_targets("cache-hit-ratio")
    values = client.values(target, **{"from": "-40s"})
    assert values[:3] == [50.0, 50.0, 50.0]
    assert all(v is None or 0 <= v <= 100 for v in values), values  # was 1800.0 for the newest step


def test_targets_of_one_request_share_their_reads(root, client, monkeypatch):
    write_metric(root, "a.x", [1, 2, 3])
    write_metric(root, "a.y", [4, 5, 6])
    real_fetch_many = reader.fetch_many
    read: list[str] = []

    def counting(paths, *args, **kwargs):
        read.extend(paths)
        return real_fetch_many(paths, *args, **kwargs)

    monkeypatch.setattr(reader, "fetch_many", counting)
    doc = client.render("sumSeries(a.*)", "a.x", "asPercent(a.x, sumSeries(a.{x,y}))", **{"from": "-30s"})
    assert [v for v, _ in doc[0]["datapoints"]] == [5.0, 7.0, 9.0]
    assert sorted(Path(p).name for p in read) == ["x.wsp", "y.wsp"]
