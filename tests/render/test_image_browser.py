"""Graph images in a real browser: headless Chromium loads a page with
``<img src="/render?...">`` from the render API, and the dashboard's PNG links."""

from __future__ import annotations

import html
import io
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from django_statsd_push.render.app import STATIC_DIR, RenderApp
from django_statsd_push.render.evaluator import Limits
from django_statsd_push.render.httpserver import BackgroundServer
from tests.conftest import require_program
from tests.stack.dashboard_page import CHROMIUM_FLAGS, panels

from .conftest import NOW, write_metric

pytestmark = pytest.mark.slow


def chromium(*args: str, profile: Path) -> str:
    return subprocess.run([require_program("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=True).stdout


def test_an_img_tag_shows_the_graph(tmp_path, root):
    write_metric(root, "five", [5] * 360)
    static = tmp_path / "static"
    static.mkdir()
    src = "/render?" + "&".join([
        "target=color(five,'ff0000')", "from=-1h", "graphOnly=true", "yMin=0", "yMax=10", "width=400",
        "height=200", "lineWidth=4"])
    (static / "graph.html").write_text(
        f'<!doctype html><body style="margin:0;background:#0f0"><img src="{html.escape(src)}"></body>')
    app = RenderApp(str(root), Limits(), static_dir=str(static), clock=lambda: NOW)
    shot = tmp_path / "shot.png"
    with BackgroundServer(app) as url:
        chromium(f"--screenshot={shot}", "--window-size=500,300", f"{url}/static/graph.html",
                 profile=tmp_path / "profile")
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    rows = np.flatnonzero(red.any(axis=1))
    assert len(rows) and 96 <= rows.min() and rows.max() <= 104, rows  # value 5 of 0..10 in a 200 px image
    assert red[:, :400].any(axis=0).mean() > 0.95 and not red[:, 405:].any()  # the image's width, no more
    white = (pixels[:200, :400] > 240).all(axis=-1)
    assert white.mean() > 0.9  # the graph's background where the image is, the page's green around it
    assert (pixels[250, 450] == [0, 255, 0]).all()


def test_dashboard_links_every_panel_as_a_png(tmp_path, root):
    app = RenderApp(str(root), Limits(), static_dir=STATIC_DIR, clock=lambda: NOW)
    with BackgroundServer(app) as url:
        dom = chromium("--dump-dom", f"{url}/?refresh=0", profile=tmp_path / "profile")
        links = [html.unescape(h) for h in re.findall(r'<a class="png" href="([^"]+)"', dom)]
        assert len(links) == len(panels()), dom[:2000]
        for link, panel in zip(links, panels()):
            assert "format=png" in link and all(f"target={t}" in urllib.parse.unquote_plus(link)
                                                for t in panel["targets"])
            with urllib.request.urlopen(url + link, timeout=60) as response:
                assert response.headers["Content-Type"] == "image/png"
                with Image.open(io.BytesIO(response.read())) as im:
                    assert im.size == (800, 400)
