"""Load the dashboard in Debian's headless Chromium and read what each panel drew."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.conftest import require_program

STATIC = Path(__file__).resolve().parents[2] / "django_statsd_push" / "render" / "static"

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=15000",
]


def panels() -> list[dict]:
    return json.loads((STATIC / "panels.json").read_text())


def dump_dom(host: str, port: int, profile: Path, query: str = "") -> str:
    """The page's DOM after its first refresh (``query``: extra URL parameters)."""
    chromium = require_program("chromium")
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
         f"http://{host}:{port}/?refresh=0" + (f"&{query}" if query else "")],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert 'data-state="loaded"' in dom, dom[:2000]
    assert "data-error" not in dom, dom
    return dom


def panel_points_and_dom(host: str, port: int, profile: Path, query: str = "") -> tuple[dict[str, int], str]:
    """({panel id: data points drawn}, in page order, the dumped DOM) after the page's first refresh."""
    dom = dump_dom(host, port, profile, query)
    found = re.findall(r'<section class="panel" id="([\w-]+)"[^>]*?data-points="(\d+)"', dom)
    return {panel_id: int(points) for panel_id, points in found}, dom


def panel_points(host: str, port: int, profile: Path, query: str = "") -> dict[str, int]:
    """{panel id: data points drawn}, in page order, after the page's first refresh."""
    return panel_points_and_dom(host, port, profile, query)[0]
