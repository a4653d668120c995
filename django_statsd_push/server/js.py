"""JavaScript's number semantics, where etsy statsd (node) and Python disagree.

etsy reads values with ``Number()``, rounds with ``Math.round`` and writes numbers to
Carbon with ``String()``. Python's ``float()``, ``round()`` and ``repr()`` differ at the
edges (hex literals, halves, exponents), and every difference would change a number
etsy users see, so the three live here side by side and the oracle tests compare them
with node.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy

_INF = math.inf
_EXACT = 2**53
# JavaScript's StrDecimalLiteral (what Number() accepts besides hex/octal/binary/Infinity).
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_JS_RADIX = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)\Z")
_RADIX_BASE = {"x": 16, "o": 8, "b": 2}


def js_number(text: str) -> float | None:
    """JavaScript ``Number(text)`` for a non-empty string; ``None`` where JS gives NaN.

    Infinity is returned as ``inf``; callers reject non-finite values.
    """
    try:
        value = float(text)
    except ValueError:
        stripped = text.strip()
        if not stripped:
            return 0.0
        match = _JS_RADIX.match(stripped)
        if match:
            return float(int(match.group(1)[1:], _RADIX_BASE[match.group(1)[0].lower()]))
        return None
    # float() is more liberal than Number(): "1_000", "nan", "inf", "infinity", and
    # digits of other scripts ("١٢").
    if value != value or value in (_INF, -_INF) or "_" in text or not text.isascii():
        stripped = text.strip()
        if stripped in ("Infinity", "+Infinity"):
            return _INF
        if stripped == "-Infinity":
            return -_INF
        if not _JS_DECIMAL.match(stripped):
            return None
    return value


def js_round(x: float) -> int:
    """JavaScript ``Math.round``: halves go up (Python's ``round`` goes to even)."""
    return int(x // 1 + (1 if x % 1 >= 0.5 else 0))


def js_str(x: float) -> str:
    """JavaScript's ``String(number)``: what etsy writes to Carbon for a value."""
    if x.__class__ is float and (1e-4 <= x < _EXACT or -_EXACT < x <= -1e-4):
        # Most values. Here Python's repr and JavaScript agree digit for digit, except
        # that repr writes a whole number as "5.0" where JavaScript writes "5".
        text = repr(x)
        return text[:-2] if text[-2:] == ".0" else text
    if x.__class__ is int and -_EXACT < x < _EXACT:
        return str(x)
    x = float(x)
    if x.is_integer() and -_EXACT < x < _EXACT:  # beyond 2**53 JavaScript pads its digits with zeros
        return str(int(x))
    if 1e-4 <= abs(x) < _EXACT:  # non-integers here: Python's repr and JavaScript agree
        return repr(x)
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    text = repr(abs(float(x)))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + f"e{'+' if e >= 0 else '-'}{abs(e)}"
    return "-" + out if x < 0 else out


def js_strs(values: Sequence[float] | numpy.ndarray) -> list[str]:
    """``js_str`` of every value, for whole columns of a flush (the same strings, faster).

    A column of whole numbers (counts, gauges, sums of whole milliseconds) is written
    through C's integer formatting; a column inside the range where Python's ``repr``
    already agrees with JavaScript goes through ``repr`` with only ``"5.0"`` -> ``"5"``
    to fix. Anything else (tiny, huge, NaN, infinite) takes ``js_str`` value by value.
    NumPy is imported on first use, so reading this module does not need it.
    """
    import numpy as np

    array = np.asarray(values)
    if array.dtype.kind in "iu":
        if not len(array) or int(np.abs(array).max()) < _EXACT:
            return list(map(str, array.tolist()))
    elif array.dtype.kind == "f":
        array = array + 0.0  # -0.0 -> 0.0: JavaScript writes "0"
        magnitude = np.abs(array)
        inside = magnitude < _EXACT
        whole = inside & (array == np.trunc(array))
        if whole.all():
            return list(map(str, array.astype(np.int64).tolist()))
        if (whole | inside & (magnitude >= 1e-4)).all():
            # repr writes a whole number as "5.0"; fixed in one pass over the joined text
            text = "\n".join(map(repr, array.tolist())) + "\n"
            return text.replace(".0\n", "\n")[:-1].split("\n")
    return list(map(js_str, values.tolist() if isinstance(values, np.ndarray) else values))
