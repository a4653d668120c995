"""Graphs as images (``format=png|svg|pdf``), drawn with Cairo as graphite-web draws them.

Cairo is imported only when an image is asked for, so the JSON API runs where
``cairocffi`` or Debian's ``libcairo2`` is missing; such a request then gets a 501 that
says what to install.
"""

from __future__ import annotations

from datetime import tzinfo

from ..series import Series
from .params import GraphParams, parse_graph_params

FORMATS = ("png", "svg", "pdf")
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}

__all__ = ["FORMATS", "CONTENT_TYPES", "GraphParams", "ImageUnavailable", "parse_graph_params", "render_image"]


class ImageUnavailable(Exception):
    """The drawing library is not installed: a server problem, not bad input."""


def render_image(data: list[Series], params: GraphParams, fmt: str, tz: tzinfo) -> bytes:
    try:
        from .draw import render_graph
    except (ImportError, OSError) as exc:  # OSError: cairocffi present, libcairo.so.2 missing
        raise ImageUnavailable(f"format={fmt} needs cairocffi and the Cairo library "
                               f"(pip install cairocffi; apt-get install libcairo2): {exc}") from None
    return render_graph(data, params, fmt, tz)

