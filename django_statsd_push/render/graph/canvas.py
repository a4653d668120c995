"""The Cairo surface a graph is drawn on, one per output format, with the few drawing
verbs a graph needs and graphite-web's text conventions (see ``Canvas.__init__``)."""

from __future__ import annotations

import io
import json
import math

import cairocffi as cairo
import numpy as np

from . import png
from .colors import Color
from .params import GraphParams


class Canvas:
    """A Cairo surface of one output format with the few drawing verbs a graph needs."""

    def __init__(self, fmt: str, width: int, height: int, params: GraphParams) -> None:
        self.fmt = fmt
        self.buffer = io.BytesIO()
        if fmt == "png":
            self.surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
        elif fmt == "svg":
            self.surface = cairo.SVGSurface(self.buffer, width, height)
        else:
            self.surface = cairo.PDFSurface(self.buffer, width, height)  # 1 pixel = 1 pt
        self.ctx = cairo.Context(self.surface)
        # unantialiased (hinted) text, as graphite-web draws it: the glyph advances then
        # match too, so label widths, and the plot area laid out around them, are the same
        options = self.ctx.get_font_options()
        options.set_antialias(cairo.ANTIALIAS_NONE)
        self.ctx.set_font_options(options)
        self.opaque = True  # the graph's background is; unset it for a translucent one
        # Cairo resolves a font face through fontconfig once, with the hinting of the first
        # surface that uses it, and keeps it for every later surface: an SVG drawn first
        # made the next PNGs' labels unhinted (other widths, the plot moved). Raster and
        # vector output therefore ask for differently spelled families; fontconfig ignores
        # the trailing blank, so both find the same font.
        family = params.fontName if fmt == "png" else params.fontName + " "
        self.font = (family, params.fontSize, params.fontBold, params.fontItalic)
        self.set_font()

    def set_font(self, size: float | None = None) -> None:
        name, default_size, bold, italic = self.font
        self.ctx.select_font_face(name, cairo.FONT_SLANT_ITALIC if italic else cairo.FONT_SLANT_NORMAL,
                                  cairo.FONT_WEIGHT_BOLD if bold else cairo.FONT_WEIGHT_NORMAL)
        self.ctx.set_font_size(size or default_size)

    def color(self, c: Color, alpha: float | None = None) -> None:
        self.ctx.set_source_rgba(c[0], c[1], c[2], c[3] if alpha is None else alpha)

    def line_height(self) -> float:
        return self.ctx.font_extents()[2]

    def ascent(self) -> float:
        return self.ctx.font_extents()[0]

    def text_width(self, text: str) -> float:
        return self.ctx.text_extents(text)[4]

    def text(self, text: str, x: float, y: float, align: str = "left", valign: str = "top",
             rotate: float = 0) -> None:
        ascent, descent, height = self.ctx.font_extents()[:3]
        dx = {"left": 0, "center": self.text_width(text) / 2, "right": self.text_width(text)}[align]
        dy = {"top": ascent, "middle": height / 2 - descent, "baseline": 0}[valign]
        self.ctx.save()
        self.ctx.translate(x, y)
        self.ctx.rotate(math.radians(rotate))
        self.ctx.move_to(-dx, dy)
        if self.fmt == "png":  # outlines filled, as graphite-web does: the same pixels
            self.ctx.text_path(text)
            self.ctx.fill()
        else:  # real text: selectable in the PDF, glyphs in the SVG
            self.ctx.show_text(text)
        self.ctx.restore()

    def rect(self, x: float, y: float, w: float, h: float) -> None:
        self.ctx.rectangle(x, y, w, h)
        self.ctx.fill()

    def hline(self, x0: float, x1: float, y: float) -> None:
        self.ctx.move_to(x0, y)
        self.ctx.line_to(x1, y)
        self.ctx.stroke()

    def vline(self, x: float, y0: float, y1: float) -> None:
        self.ctx.move_to(x, y0)
        self.ctx.line_to(x, y1)
        self.ctx.stroke()

    def output(self, metadata: dict | None = None) -> bytes:
        if self.fmt == "png":
            if self.opaque:
                return png.encode_rgb(png.surface_rgb(self.surface))
            self.surface.write_to_png(self.buffer)  # keeps the alpha channel
            return self.buffer.getvalue()
        self.surface.finish()
        body = self.buffer.getvalue()
        if self.fmt == "svg":
            # cairo sizes the document in points; browsers should lay it out in pixels, as
            # graphite-web's SVG does. The metadata names the series (text is drawn as glyphs).
            text = body.decode("utf-8").replace('pt"', 'px"', 2)
            # JSON that cannot end the CDATA section or open a tag, whatever a series is called
            script = json.dumps(metadata or {}).replace("<", "\\u003c").replace(">", "\\u003e")
            text = text.replace("</svg>", f"<script><![CDATA[\nmetadata = {script}\n]]></script>\n</svg>", 1)
            return text.encode("utf-8")
        return body


def append_polyline(ctx, xs: np.ndarray, ys: np.ndarray) -> None:
    """move_to the first point, line_to the others, in one call: the path is written as
    cairo's own path data (a 16-byte header then a 16-byte point per segment) by NumPy,
    not by one binding call per point (20 x 720 points cost 10 ms that way)."""
    n = len(xs)
    data = np.zeros((n, 2, 2), np.float64)
    data[:, 1, 0] = xs
    data[:, 1, 1] = ys
    header = data.view(np.int32).reshape(n, 2, 4)[:, 0]
    header[:, 0] = cairo.PATH_LINE_TO
    header[0, 0] = cairo.PATH_MOVE_TO
    header[:, 1] = 2  # a header and one point
    path = cairo.ffi.new("cairo_path_t *")
    path.status = 0
    path.num_data = 2 * n
    path.data = cairo.ffi.cast("cairo_path_data_t *", cairo.ffi.from_buffer(data))
    cairo.cairo.cairo_append_path(ctx._pointer, path)
