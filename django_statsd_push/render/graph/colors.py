"""Colour names and notations graphite-web users type into URLs and ``color()``."""

from __future__ import annotations

import re

from ..errors import InputError

Color = tuple[float, float, float, float]  # r, g, b, alpha in 0..1

# graphite-web's names keep their graphite-web values (not CSS's): "red" is 200,0,50 there,
# and a dashboard moved across should not change colour.
NAMED = {
    "black": (0, 0, 0), "white": (255, 255, 255), "blue": (100, 100, 255), "green": (0, 200, 0),
    "red": (200, 0, 50), "yellow": (255, 255, 0), "orange": (255, 165, 0), "purple": (200, 100, 255),
    "brown": (150, 100, 50), "cyan": (0, 255, 255), "aqua": (0, 150, 150), "gray": (175, 175, 175),
    "grey": (175, 175, 175), "magenta": (255, 0, 255), "pink": (255, 100, 100), "gold": (200, 200, 0),
    "rose": (200, 150, 200), "darkblue": (0, 0, 255), "darkgreen": (0, 255, 0), "darkred": (255, 0, 0),
    "darkgray": (111, 111, 111), "darkgrey": (111, 111, 111),
}
_HEX = re.compile(r"(?:#|%23)?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?\Z")


def parse_color(text: str, what: str = "colour") -> Color:
    """A graphite colour: a name above, ``RRGGBB`` or ``RRGGBBAA`` with or without ``#``."""
    value = str(text).strip()
    rgb = NAMED.get(value.lower())
    if rgb is not None:
        return rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, 1.0
    match = _HEX.match(value)
    if not match:
        raise InputError(f"{what}: {text!r} is not a colour (a name such as 'red', or RRGGBB / RRGGBBAA hex)")
    rgb_hex, alpha_hex = match.groups()
    r, g, b = (int(rgb_hex[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return r, g, b, (int(alpha_hex, 16) / 255 if alpha_hex else 1.0)
