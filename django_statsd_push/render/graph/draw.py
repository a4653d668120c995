"""Drawing a line graph with Cairo, laid out as graphite-web lays it out: title on top,
legend below, y labels on the left (and right for ``secondYAxis``), time labels under the
plot, grid, then the series (stacked areas first, lines over them)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, tzinfo

import cairocffi as cairo
import numpy as np

from ..aggfuncs import consolidate
from ..series import Series
from .axis import YAxis, x_axis, x_ticks, y_axis
from .canvas import Canvas, append_polyline
from .colors import Color, parse_color
from .params import LEGEND_MAX_ITEMS, GraphParams

LEGEND_BOX_BORDER = parse_color("darkgrey")


@dataclass
class Line:
    """One series as drawn: its values (consolidated to the pixels) and its style."""
    name: str
    values: np.ndarray
    start: int
    step: int
    end: int
    color: Color
    right: bool = False
    stacked: bool = False
    infinite: bool = False
    invisible: bool = False
    line_width: float | None = None
    dashed: float | None = None
    consolidation: str = "average"
    has_nulls: bool = False  # before consolidation, which may average a null away
    x_step: float = 1.0

    @classmethod
    def of(cls, s: Series, color: Color, params: GraphParams) -> "Line":
        opts = s.options
        right = bool(opts.get("secondYAxis"))
        side_width = params.rightWidth if right else params.leftWidth
        side_dash = params.rightDashed if right else params.leftDashed
        dashed = opts.get("dashed", side_dash)
        alpha = opts.get("alpha")
        if alpha is not None:
            color = (*color[:3], float(alpha))
        return cls(name=s.name, values=s.points().astype(np.float64), start=s.start, end=s.end,
                   step=s.step * s.values_per_point, color=color, right=right,
                   stacked=bool(opts.get("stacked")), infinite=bool(opts.get("drawAsInfinite")),
                   invisible=bool(opts.get("invisible")), line_width=opts.get("lineWidth", side_width),
                   dashed=float(dashed) if dashed else None, consolidation=s.consolidation,
                   has_nulls=bool(np.isnan(s.values).any()))


class Area:
    """The plot rectangle, shrinking as title, legend and labels take their room."""

    def __init__(self, xmin: float, xmax: float, ymin: float, ymax: float) -> None:
        self.xmin, self.xmax, self.ymin, self.ymax = xmin, xmax, ymin, ymax


def render_graph(data: list[Series], params: GraphParams, fmt: str, tz: tzinfo) -> bytes:
    """The image bytes of ``data`` drawn as one graph in ``fmt`` (png, svg or pdf)."""
    return LineGraph(data, params, fmt, tz).draw()


class LineGraph:
    def __init__(self, data: list[Series], params: GraphParams, fmt: str, tz: tzinfo) -> None:
        self.p = params
        self.tz = tz
        self.canvas = Canvas(fmt, params.width, params.height, params)
        self.fg = params.fgcolor or parse_color(params.style("foreground"))
        self.bg = params.bgcolor or parse_color(params.style("background"))
        self.major = params.majorGridLineColor or parse_color(params.style("majorline"))
        self.minor = params.minorGridLineColor or parse_color(params.style("minorline"))
        palette = itertools.cycle(params.colorList or params.style("linecolors").split(","))
        self.lines: list[Line] = []
        for s in data:
            right = bool(s.options.get("secondYAxis"))
            name = s.options.get("color") or (params.rightColor if right else params.leftColor) or next(palette)
            self.lines.append(Line.of(s, parse_color(name, f"colour of series {s.name!r}"), params))
        m = params.margin
        # 10 px more on the left for a time label near the edge; graphOnly is all plot
        self.area = Area(0 if params.graphOnly else m + 10, params.width - m, m, params.height - m)

    # -- layout ------------------------------------------------------------------------
    def draw(self) -> bytes:
        c, p = self.canvas, self.p
        c.opaque = self.bg[3] >= 1.0
        c.color(self.bg)
        c.rect(0, 0, p.width, p.height)
        if not self.lines or max(s.end for s in self.lines) - min(s.start for s in self.lines) <= 0:
            c.color(parse_color("red"))
            c.set_font(math.log(p.width * p.height))
            c.text("No Data", p.width / 2, p.height / 2, align="center")
            return c.output()
        two_axes = any(s.right for s in self.lines)
        c.set_font(p.fontSize + math.floor(math.log(p.fontSize)) if p.fontSize >= 1 else p.fontSize)
        c.color(self.fg)
        if p.title:
            self.draw_title(p.title, gap=not (p.yAxisSide == "right" and not two_axes))
        if p.vtitle:
            self.draw_vtitle(p.vtitle, right=False)
        if two_axes and p.vtitleRight:
            self.draw_vtitle(p.vtitleRight, right=True)
        c.set_font()
        hide_legend = p.hideLegend if p.hideLegend is not None else len(self.lines) > LEGEND_MAX_ITEMS
        if not hide_legend:
            self.draw_legend()
        if not p.hideAxes and not p.hideXAxis:
            self.area.ymax -= c.ascent() * 2
        self.start = min(s.start for s in self.lines)
        self.end = max(s.end if p.lineMode == "staircase" else s.end - s.step for s in self.lines)
        self.end = max(self.end, self.start + 1)
        raw = [s.values for s in self.lines]
        for _ in range(5):  # y labels take room, fewer pixels may consolidate more: settle
            before = (self.area.xmin, self.area.xmax)
            self.consolidate(raw)
            self.setup_y_axes(two_axes)
            if before == (self.area.xmin, self.area.xmax):
                break
        self.x = x_axis(self.end - self.start, self.plot_width)
        if not p.hideAxes:
            self.draw_labels(two_axes)
            if not p.hideGrid:
                self.draw_grid()
        self.draw_lines(two_axes)
        return c.output(self.svg_metadata(two_axes) if c.fmt == "svg" else None)

    def svg_metadata(self, two_axes: bool) -> dict:
        """What graphite-web's SVG carries in its ``metadata`` script (d3 overlays read it)."""
        a = self.area
        meta = {"x": {"start": self.start, "end": self.end}, "options": {"lineWidth": self.p.lineWidth},
                "area": {"xmin": a.xmin, "xmax": a.xmax, "ymin": a.ymin, "ymax": a.ymax},
                "series": [{"name": s.name, "color": "#%02x%02x%02x" % tuple(round(v * 255) for v in s.color[:3])}
                           for s in self.lines if not s.stacked]}
        if not two_axes:
            y, shown = self.left, not self.p.hideAxes
            meta["y"] = {"top": y.top, "bottom": y.bottom, "step": y.step, "labels": y.labels if shown else [],
                         "labelValues": y.values if shown else []}
        return meta

    def draw_title(self, text: str, gap: bool) -> None:
        y = self.area.ymin
        height = self.canvas.line_height()
        for line in text.split("\n"):
            self.canvas.text(line, self.p.width / 2, y, align="center")
            y += height
        # graphite-web leaves out the margin under the title when the y axis is on the right
        self.area.ymin = y + (self.p.margin if gap else 0)

    def draw_vtitle(self, text: str, right: bool) -> None:
        height = self.canvas.line_height()
        if right:
            x = self.area.xmax - height
            for line in text.split("\n"):
                self.canvas.text(line, x, self.p.height / 2, align="center", valign="baseline", rotate=90)
                x -= height
            self.area.xmax = x - self.p.margin - height
        else:
            x = self.area.xmin + height
            for line in text.split("\n"):
                self.canvas.text(line, x, self.p.height / 2, align="center", valign="baseline", rotate=270)
                x += height
            self.area.xmin = x + self.p.margin + height

    def draw_legend(self) -> None:
        c, p = self.canvas, self.p
        entries = []
        for s in self.lines:
            if not s.name or (p.hideNullFromLegend and np.isnan(s.values).all()):
                continue
            if p.uniqueLegend and any(e.name == s.name for e in entries):
                continue
            entries.append(s)
        if not entries:
            return
        pad = 5
        line_height = c.line_height() + 1
        box = c.line_height() - 1
        label_width = max(c.text_width(s.name) for s in entries) + 2 * (box + pad)
        columns = max(1, int(p.width // label_width))
        left = [s for s in entries if not s.right]
        right = [s for s in entries if s.right]
        if right:  # left-axis series from the left edge, right-axis ones from the right
            columns = max(1, columns // 2)
        rows = max(math.ceil(len(left) / columns), math.ceil(len(right) / columns))
        self.area.ymax -= rows * line_height + pad
        top = self.area.ymax + 2 * pad
        c.ctx.set_line_width(1.0)
        for i, s in enumerate(left):
            x = self.area.xmin + (i % columns) * label_width
            y = top + (i // columns) * line_height
            self.legend_box(s, x, y, box)
            c.color(self.fg)
            c.text(s.name, x + box + pad, y)
        for i, s in enumerate(right):
            x = self.area.xmax - (i % columns) * label_width - box
            y = top + (i // columns) * line_height
            self.legend_box(s, x, y, box)
            c.color(self.fg)
            c.text(s.name, x - pad, y, align="right")

    def legend_box(self, s: Line, x: float, y: float, box: float) -> None:
        c = self.canvas
        c.color(s.color)
        c.rect(x, y, box, box)
        c.color(LEGEND_BOX_BORDER)
        c.ctx.rectangle(x + 0.5, y + 0.5, box - 0.5, box - 0.5)
        c.ctx.stroke()

    def consolidate(self, raw: list[np.ndarray]) -> None:
        """At most one point per ``minXStep`` pixels, each series with its own function."""
        p = self.p
        self.plot_width = max(self.area.xmax - self.area.xmin - (p.lineWidth + 1), 1.0)
        span = self.end - self.start
        for s, values in zip(self.lines, raw):
            points = span / s.step
            per_pixel = self.plot_width / points if points else self.plot_width
            if per_pixel < p.minXStep:
                drawable = max(int(self.plot_width / p.minXStep), 1)
                group = math.ceil(points / drawable)
                s.values = consolidate(values, group, s.consolidation, 0.0)
                s.x_step = self.plot_width * group / points
            else:
                s.values = values
                s.x_step = per_pixel

    def setup_y_axes(self, two_axes: bool) -> None:
        p = self.p
        c = self.canvas
        if two_axes:
            left = [s for s in self.lines if not s.right]
            right = [s for s in self.lines if s.right]
            self.left = self.make_axis(left, p.yMinLeft, p.yMaxLeft, p.yLimitLeft, p.yStepLeft)
            self.right = self.make_axis(right, p.yMinRight, p.yMaxRight, p.yLimitRight, p.yStepRight)
        else:
            self.left = self.right = self.make_axis(self.lines, p.yMin, p.yMax, p.yLimit, p.yStep)
        if p.hideAxes or p.hideYAxis:
            return
        self.left_label_width = max((c.text_width(t) for t in self.left.labels), default=0.0)
        self.right_label_width = max((c.text_width(t) for t in self.right.labels), default=0.0)
        if two_axes or p.yAxisSide == "left":
            self.area.xmin = max(self.area.xmin, p.margin + self.left_label_width * 1.02)
        if two_axes or p.yAxisSide == "right":
            self.area.xmax = min(self.area.xmax, p.width - self.right_label_width * 1.02)

    def make_axis(self, lines: list[Line], y_min, y_max, y_limit, y_step) -> YAxis:
        lo, hi = data_limits(lines, self.p.drawNullAsZero, self.p.areaMode == "stacked")
        return y_axis(lo, hi, y_min=y_min, y_max=y_max, y_limit=y_limit, y_step=y_step, divisors=self.p.yDivisors,
                      unit_system=self.p.yUnitSystem, log_base=self.p.logBase)

    def y_of(self, axis: YAxis, values: np.ndarray) -> np.ndarray:
        """Pixel rows of values (NaN stays NaN: a gap); clamped so Cairo never sees
        coordinates far outside the surface."""
        a = self.area
        if axis.log_base:
            with np.errstate(divide="ignore", invalid="ignore"):
                lo = math.log(axis.bottom, axis.log_base)
                rel = (np.log(np.where(values > 0, values, np.nan)) / math.log(axis.log_base) - lo) / (
                    math.log(axis.top, axis.log_base) - lo)
        else:
            rel = (values - axis.bottom) / (axis.top - axis.bottom)
        ys = a.ymax - rel * (a.ymax - a.ymin)
        return np.clip(ys, 0, 3 * self.p.height)

    # -- labels and grid -----------------------------------------------------------------
    def draw_labels(self, two_axes: bool) -> None:
        c, p, a = self.canvas, self.p, self.area
        c.color(self.fg)
        if not p.hideYAxis:
            if two_axes or p.yAxisSide == "left":
                rows = self.y_of(self.left, np.array(self.left.values, dtype=float))
                for label, y in zip(self.left.labels, rows.tolist()):
                    c.text(label, a.xmin - self.left_label_width * 0.02, y, align="right", valign="middle")
            if two_axes or p.yAxisSide == "right":
                rows = self.y_of(self.right, np.array(self.right.values, dtype=float))
                extra = 3 if two_axes else 0
                for label, y in zip(self.right.labels, rows.tolist()):
                    c.text(label, a.xmax + self.right_label_width * 0.02 + extra, y, valign="middle")
        if not p.hideXAxis:
            fmt = p.xFormat or self.x.format
            y = a.ymax + c.ascent()
            for t in x_ticks(self.start, self.end, self.tz, self.x.label):
                label = datetime.fromtimestamp(t, self.tz).strftime(fmt)
                c.text(label, self.x_of(t), y, align="center")

    def x_of(self, t: float) -> float:
        return self.area.xmin + (t - self.start) * self.plot_width / (self.end - self.start)

    def draw_grid(self) -> None:
        c, p, a = self.canvas, self.p, self.area
        ctx = c.ctx
        values = self.left.values
        rows = self.y_of(self.left, np.array(values, dtype=float)).tolist()
        for i, y in enumerate(rows):
            ctx.set_line_width(0.4)
            c.color(self.major)
            c.hline(a.xmin, a.xmax, y)
            if p.minorY >= 1 and i < len(values) - 1:
                lo, hi = sorted((values[i], values[i + 1]))
                minor = [lo + (k + 1) * (hi - lo) / (p.minorY + 1) for k in range(p.minorY)]
                ctx.set_line_width(0.3)
                c.color(self.minor)
                for y_minor in self.y_of(self.left, np.array(minor)).tolist():
                    if y_minor == y_minor:
                        c.hline(a.xmin, a.xmax, y_minor)
        for grid, width, color in ((self.x.minor, 0.25, self.minor), (self.x.major, 0.33, self.major)):
            ctx.set_line_width(width)
            c.color(color)
            for t in x_ticks(self.start, self.end, self.tz, grid):
                x = self.x_of(t)
                if x < a.xmax:
                    c.vline(x, a.ymax, a.ymin)
        ctx.set_line_width(0.5)
        c.vline(a.xmax, a.ymax, a.ymin)
        c.vline(a.xmin, a.ymax, a.ymin)

    # -- series ----------------------------------------------------------------------------
    def draw_lines(self, two_axes: bool) -> None:
        p, a, ctx = self.p, self.area, self.canvas.ctx
        lines = self.lines
        if p.areaMode == "stacked" and not two_axes:
            total = None
            for s in lines:
                if s.infinite:
                    continue
                s.stacked = True
                v = s.values
                if total is None or len(total) < len(v):
                    total = np.concatenate((total if total is not None else np.zeros(0),
                                            np.zeros(len(v) - (len(total) if total is not None else 0))))
                s.values = np.where(np.isnan(v), np.nan, v + total[:len(v)])
                total[:len(v)] += np.nan_to_num(v)
        elif p.areaMode == "first" and lines:
            lines[0].stacked = True
        elif p.areaMode == "all":
            for s in lines:
                s.stacked = s.stacked or not s.infinite
        lines = [s for s in lines if s.stacked] + [s for s in lines if not s.stacked]
        if p.areaAlpha is not None:  # translucent fills, with their outline drawn opaque
            outlines = []
            for s in lines:
                if s.stacked:
                    outlines.append(Line(**{**s.__dict__, "stacked": False, "color": (*s.color[:3], 1.0)}))
                    s.color = (*s.color[:3], p.areaAlpha)
            lines = lines + outlines
        self.lines = lines  # in drawing order, as the SVG metadata lists them
        ctx.rectangle(a.xmin, a.ymin, a.xmax - a.xmin, a.ymax - a.ymin)
        ctx.clip()
        ctx.save()
        clipped_by_areas = True
        for s in lines:
            if not s.stacked and clipped_by_areas:
                ctx.restore()  # lines are drawn over the areas, not clipped by them
                clipped_by_areas = False
            self.draw_line(s)

    def draw_line(self, s: Line) -> None:
        p, a, ctx = self.p, self.area, self.canvas.ctx
        width = s.line_width if s.line_width is not None else p.lineWidth
        ctx.set_line_width(width)
        ctx.set_dash([s.dashed] if s.dashed else [], 1 if s.dashed else 0)
        self.canvas.color(s.color, 0.0 if s.invisible else None)
        axis = self.right if s.right else self.left
        values = s.values
        if p.drawNullAsZero:
            values = np.nan_to_num(values, nan=0.0)
        x0 = a.xmin + (s.start - self.start) / s.step * s.x_step + p.lineWidth / 2
        xs = x0 + np.arange(len(values)) * s.x_step
        if s.infinite:
            for x in xs[values > 0].tolist():
                ctx.move_to(x, a.ymax)
                ctx.line_to(x, a.ymin)
            ctx.stroke()
            return
        ys = self.y_of(axis, values)
        runs = _runs(ys, p.lineMode, p.connectedLimit)
        if not runs:
            return
        line_to = ctx.line_to
        staircase = p.lineMode == "staircase"
        if s.stacked:
            base = float(np.clip(self.y_of(axis, np.array([0.0]))[0], a.ymin, a.ymax)) \
                if axis.bottom <= 0 <= axis.top or axis.log_base else a.ymax
            for lo, hi in runs:
                end_x = self.trace(xs, ys, lo, hi, staircase, s.x_step)
                line_to(end_x, base)
                line_to(float(xs[lo]), base)
                ctx.close_path()
            path = ctx.copy_path()
            ctx.fill()
            # later areas only show above this one: clip to the plot minus this area
            ctx.set_fill_rule(cairo.FILL_RULE_EVEN_ODD)
            ctx.rectangle(a.xmin, a.ymin, a.xmax - a.xmin, a.ymax - a.ymin)
            ctx.append_path(path)
            ctx.clip()
            ctx.set_fill_rule(cairo.FILL_RULE_WINDING)
            return
        for lo, hi in runs:
            self.trace(xs, ys, lo, hi, staircase, s.x_step)
        ctx.stroke()

    def trace(self, xs: np.ndarray, ys: np.ndarray, lo: int, hi: int, staircase: bool, x_step: float) -> float:
        """Append the path of points lo..hi-1 (NaN ones skipped: a connected run); return
        the x it ends at. A run cut short by a null reaches on to the null's x, as in
        graphite-web, so one-point runs still show."""
        keep = ~np.isnan(ys[lo:hi])
        px, py = xs[lo:hi][keep], ys[lo:hi][keep]
        if staircase:  # each value is a step: (x, y) then (x + step, y)
            px = np.column_stack((px, px + x_step)).ravel()
            py = np.repeat(py, 2)
            end = float(px[-1])
        elif hi < len(xs):
            end = float(xs[hi])
            px, py = np.append(px, end), np.append(py, py[-1])
        else:
            end = float(px[-1])
        append_polyline(self.canvas.ctx, px, py)
        return end


def _runs(ys: np.ndarray, mode: str, connected_limit: int | None) -> list[tuple[int, int]]:
    """Index ranges [lo, hi) drawn as one path: split at nulls, except in ``connected``
    mode where only gaps longer than ``connectedLimit`` points split."""
    valid = ~np.isnan(ys)
    if not valid.any():
        return []
    idx = np.flatnonzero(valid)
    gaps = np.diff(idx) - 1
    if mode == "connected":
        limit = math.inf if connected_limit is None else connected_limit
        breaks = np.flatnonzero(gaps > limit)
    else:
        breaks = np.flatnonzero(gaps > 0)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks] + 1, [idx[-1] + 1]))
    return list(zip(starts.tolist(), ends.tolist()))


def data_limits(lines: list[Line], null_as_zero: bool, stacked: bool) -> tuple[float | None, float | None]:
    """Lowest and highest finite value to show (the stacked total's highest for stacked)."""
    finite = [s.values for s in lines if not s.infinite]
    if not finite:
        return None, None
    with np.errstate(invalid="ignore"):
        lows = [np.nanmin(np.where(np.isfinite(v), v, np.nan)) for v in finite if np.isfinite(v).any()]
    if not lows:
        return None, None
    lo = min(lows)
    missing = any(s.has_nulls for s in lines)
    if lo > 0 and null_as_zero and missing:
        lo = 0.0
    if stacked:
        width = min(len(v) for v in finite)
        total = np.sum([np.where(np.isfinite(v[:width]), v[:width], 0.0) for v in finite], axis=0)
        hi = float(np.max(total)) if len(total) else lo
    else:
        hi = max(float(np.nanmax(np.where(np.isfinite(v), v, np.nan))) for v in finite if np.isfinite(v).any())
    if hi < 0 and null_as_zero and missing:
        hi = 0.0
    return float(lo), float(hi)
