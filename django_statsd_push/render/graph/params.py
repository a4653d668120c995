"""graphite-web's graph parameters (``width``, ``title``, ``areaMode`` ...), checked once.

Every value is validated here, before any series is read, so a bad parameter is a 400
naming it rather than a crash half-way through drawing (graphite-web asserts or falls
back silently). Image size is capped: the surface is allocated up front (4 bytes/pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from ..errors import InputError
from .colors import Color, parse_color

MAX_SIDE = 8192  # pixels, width or height
MAX_PIXELS = 8_388_608  # width * height: 32 MB of ARGB; 3840x2160 fits
LEGEND_MAX_ITEMS = 10  # graphite-web's default: more series hide the legend unless hideLegend=false
UNIT_SYSTEMS = ("si", "binary", "sec", "msec", "none")
LINE_MODES = ("slope", "staircase", "connected")
AREA_MODES = ("none", "first", "all", "stacked")

# graphite-web's graphTemplates.conf "default" section, and two common alternatives
TEMPLATES: dict[str, dict[str, str]] = {
    "default": {"background": "white", "foreground": "black", "majorline": "rose", "minorline": "grey",
                "linecolors": "blue,green,red,purple,brown,yellow,aqua,grey,magenta,pink,gold,rose"},
    "solarized-light": {"background": "fdf6e3", "foreground": "657b83", "majorline": "839496",
                        "minorline": "eee8d5",
                        "linecolors": "268bd2,859900,dc322f,d33682,db4b42,b58900,2aa198,6c71c4"},
    "solarized-dark": {"background": "002b36", "foreground": "839496", "majorline": "657b83",
                       "minorline": "073642",
                       "linecolors": "268bd2,859900,dc322f,d33682,db4b42,b58900,2aa198,6c71c4"},
}


@dataclass
class GraphParams:
    width: int = 330
    height: int = 250
    margin: int = 10
    title: str = ""
    vtitle: str = ""
    vtitleRight: str = ""
    template: str = "default"
    bgcolor: Color | None = None  # None: the template's
    fgcolor: Color | None = None
    majorGridLineColor: Color | None = None
    minorGridLineColor: Color | None = None
    colorList: list[str] | None = None
    fontName: str = "Sans"
    fontSize: float = 10.0
    fontBold: bool = False
    fontItalic: bool = False
    lineMode: str = "slope"
    lineWidth: float = 1.2
    areaMode: str = "none"
    areaAlpha: float | None = None
    hideLegend: bool | None = None  # None: hidden above LEGEND_MAX_ITEMS series
    hideAxes: bool = False
    hideXAxis: bool = False
    hideYAxis: bool = False
    hideGrid: bool = False
    graphOnly: bool = False
    uniqueLegend: bool = False
    hideNullFromLegend: bool = False
    drawNullAsZero: bool = False
    yMin: float | None = None
    yMax: float | str | None = None  # a number, or "max": the data's maximum, unrounded
    yLimit: float | None = None
    yStep: float | None = None
    yMinLeft: float | None = None
    yMaxLeft: float | str | None = None
    yLimitLeft: float | None = None
    yStepLeft: float | None = None
    yMinRight: float | None = None
    yMaxRight: float | str | None = None
    yLimitRight: float | None = None
    yStepRight: float | None = None
    yDivisors: list[int] = field(default_factory=lambda: [4, 5, 6])
    yUnitSystem: str = "si"
    yAxisSide: str = "left"
    logBase: float | None = None
    minorY: int = 1
    minXStep: float = 1.0
    connectedLimit: int | None = None
    xFormat: str | None = None
    leftColor: str | None = None
    rightColor: str | None = None
    leftWidth: float | None = None
    rightWidth: float | None = None
    leftDashed: float | None = None
    rightDashed: float | None = None

    def style(self, key: str) -> str:
        return TEMPLATES[self.template][key]


def _bool(name: str, value: str) -> bool:
    low = value.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise InputError(f"graph parameter {name!r} must be true or false, got {value!r}")


def _number(name: str, value: str, low: float = -math.inf, high: float = math.inf, integer: bool = False):
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise InputError(f"graph parameter {name!r} must be {kind}, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"graph parameter {name!r} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise InputError(f"graph parameter {name!r} must be one of {', '.join(choices)}; got {value!r}")
    return value.lower()


def _axis_max(name: str, value: str):
    return "max" if value.lower() == "max" else _number(name, value)


def _color(name: str, value: str) -> Color:
    return parse_color(value, f"graph parameter {name!r}")


def _color_name(name: str, value: str) -> str:
    parse_color(value, f"graph parameter {name!r}")
    return value


def _color_list(name: str, value: str) -> list[str]:
    colors = [c.strip() for c in value.split(",") if c.strip()]
    if not colors:
        raise InputError(f"graph parameter {name!r} names no colour")
    for c in colors:
        parse_color(c, f"graph parameter {name!r}")
    return colors


def _divisors(name: str, value: str) -> list[int]:
    parts = value.split(",")
    if len(parts) > 20:
        raise InputError(f"graph parameter {name!r}: at most 20 divisors")
    return [_number(name, p.strip(), 1, 100, integer=True) for p in parts]


def _log_base(name: str, value: str) -> float:
    if value.lower() == "e":
        return math.e
    base = _number(name, value)
    if base <= 1:
        raise InputError(f"graph parameter {name!r} must be 'e' or a number above 1, got {value!r}")
    return base


def _text(limit: int) -> Callable[[str, str], str]:
    def check(name: str, value: str) -> str:
        if len(value) > limit:
            raise InputError(f"graph parameter {name!r} is longer than {limit} characters")
        return value
    return check


def _template(name: str, value: str) -> str:
    if value not in TEMPLATES:
        raise InputError(f"graph parameter {name!r}: unknown template {value!r} (known: {', '.join(TEMPLATES)})")
    return value


_NUM = lambda low=-math.inf, high=math.inf: lambda n, v: _number(n, v, low, high)  # noqa: E731
_INT = lambda low, high: lambda n, v: _number(n, v, low, high, integer=True)  # noqa: E731
_CHOICE = lambda choices: lambda n, v: _choice(n, v, choices)  # noqa: E731

PARSERS: dict[str, Callable[[str, str], object]] = {
    "width": _INT(1, MAX_SIDE), "height": _INT(1, MAX_SIDE), "margin": _INT(0, 1000),
    "title": _text(1000), "vtitle": _text(1000), "vtitleRight": _text(1000), "template": _template,
    "bgcolor": _color, "fgcolor": _color, "majorGridLineColor": _color, "minorGridLineColor": _color,
    "colorList": _color_list, "fontName": _text(100), "fontSize": _NUM(1, 200), "fontBold": _bool,
    "fontItalic": _bool, "lineMode": _CHOICE(LINE_MODES), "lineWidth": _NUM(0, 100), "areaMode": _CHOICE(AREA_MODES),
    "areaAlpha": _NUM(0, 1), "yUnitSystem": _CHOICE(UNIT_SYSTEMS), "yAxisSide": _CHOICE(("left", "right")),
    "logBase": _log_base, "minorY": _INT(0, 20), "minXStep": _NUM(0.01, MAX_SIDE), "connectedLimit": _INT(0, 10**9),
    "xFormat": _text(100), "yDivisors": _divisors, "leftColor": _color_name, "rightColor": _color_name,
    "leftWidth": _NUM(0, 100), "rightWidth": _NUM(0, 100), "leftDashed": _NUM(0, 1000), "rightDashed": _NUM(0, 1000),
    **{flag: _bool for flag in ("hideLegend", "hideAxes", "hideXAxis", "hideYAxis", "hideGrid", "graphOnly",
                                "uniqueLegend", "hideNullFromLegend", "drawNullAsZero")},
    **{name: _NUM() for name in ("yMin", "yLimit", "yMinLeft", "yLimitLeft", "yMinRight", "yLimitRight")},
    **{name: _NUM(1e-300) for name in ("yStep", "yStepLeft", "yStepRight")},
    **{name: _axis_max for name in ("yMax", "yMaxLeft", "yMaxRight")},
}
ALIASES = {"min": "yMin", "max": "yMax", "thickness": "lineWidth"}  # graphite-web's older names
assert set(PARSERS) <= {f.name for f in fields(GraphParams)}


def parse_graph_params(params: Mapping[str, str]) -> GraphParams:
    """Graph parameters from a request's (last) values; absent, empty or ``default`` means
    the default, as in graphite-web."""
    if params.get("graphType", "line") not in ("line", ""):
        raise InputError(f"graphType={params['graphType']} is not supported (line graphs only)")
    out = GraphParams()
    for given in (ALIASES, {name: name for name in PARSERS}):  # an explicit yMax beats max
        for key, name in given.items():
            value = params.get(key)
            if value is None or value == "" or value.lower() == "default":
                continue
            setattr(out, name, PARSERS[name](key, value))
    if out.width * out.height > MAX_PIXELS:
        raise InputError(f"image of {out.width}x{out.height} pixels is larger than the limit of {MAX_PIXELS} "
                         f"pixels (width * height)")
    if out.graphOnly:
        out.hideLegend = out.hideGrid = out.hideAxes = True
        out.title = out.vtitle = ""
        out.margin = 0
    return out
