"""Node's ``util.inspect`` for the values etsy's management interface prints.

etsy answers ``counters``, ``timers`` and ``gauges`` with ``util.inspect`` of its tables,
and scripts parse that text, so we print it the same way: Node 20's defaults
(``breakLength`` 80, ``compact`` 3, at most 100 array items shown), bare keys where
they are identifiers, a short object or array on one line, and more than six numbers
grouped into right-aligned columns. Covered: plain objects and arrays of numbers,
strings, booleans and null, nested as etsy nests them (an object of arrays).
"""

from __future__ import annotations

import math
import re
from typing import Any

from django_statsd_push.server.js import js_str

BREAK_LENGTH = 80
COMPACT = 3
MAX_ARRAY_LENGTH = 100
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", "\\": "\\\\"}


def inspect(value: Any) -> str:
    """``util.inspect(value)`` as Node 20 prints it."""
    return _format(value, 0)


def _format(value: Any, indent: int) -> str:
    if isinstance(value, (dict, list)):
        return _container(value, indent)
    if isinstance(value, str):
        return _quote(value)
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if value == 0 and math.copysign(1.0, value) < 0:
        return "-0"
    return js_str(value)


def _quote(text: str) -> str:
    """Single quotes unless the text holds one: then double quotes, then backticks."""
    quote = "'"
    if "'" in text:
        if '"' not in text:
            quote = '"'
        elif "`" not in text and "${" not in text:
            quote = "`"

    def escape(c: str) -> str:
        if c in _SHORT_ESCAPES:
            return _SHORT_ESCAPES[c]
        if c == "'":
            return "\\'"
        return f"\\x{ord(c):02X}"

    pattern = r"[\x00-\x1f\x5c\x7f-\x9f" + (r"\x27]" if quote == "'" else "]")
    return quote + re.sub(pattern, lambda m: escape(m.group()), text) + quote


def _container(value: dict | list, indent: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        output = [f"{k if _IDENTIFIER.match(k) else _quote(k)}: {_format(v, indent + 2)}" for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        if not value:
            return "[]"
        output = [_format(v, indent + 2) for v in value[:MAX_ARRAY_LENGTH]]
        if len(value) > MAX_ARRAY_LENGTH:
            rest = len(value) - MAX_ARRAY_LENGTH
            output.append(f"... {rest} more item{'s' if rest > 1 else ''}")
        opening, closing = "[", "]"
    entries = len(output)
    if opening == "[" and entries > 6:
        output = _grouped(output, indent, value)
    # Node's depth test (currentDepth - recurseTimes < compact) always holds at etsy's depths.
    if entries == len(output) and _fits_one_line(output, entries + indent + len(opening) + 10):
        joined = ", ".join(output)
        if "\n" not in joined:
            return f"{opening} {joined} {closing}"
    newline = "\n" + " " * indent
    return f"{opening}{newline}  " + f",{newline}  ".join(output) + f"{newline}{closing}"


def _fits_one_line(output: list[str], start: int) -> bool:
    total = len(output) + start
    if total + len(output) > BREAK_LENGTH:
        return False
    for entry in output:
        total += len(entry)
        if total > BREAK_LENGTH:
            return False
    return True


def _js_round(x: float) -> int:
    return math.floor(x + 0.5)


def _grouped(output: list[str], indent: int, value: list) -> list[str]:
    """Node's groupArrayElements: about as many columns as make a square of the entries."""
    shown = len(output) - (1 if len(value) > MAX_ARRAY_LENGTH else 0)  # "... more items" is not a cell
    widths = [len(entry) for entry in output[:shown]]
    total = sum(w + 2 for w in widths)
    widest = max(widths)
    cell = widest + 2  # an entry, a comma and a space
    if not (cell * 3 + indent < BREAK_LENGTH and (total / cell > 5 or widest <= 6)):
        return output
    bias = math.sqrt(cell - total / len(output))
    biased = max(cell - 3 - bias, 1)
    columns = min(_js_round(math.sqrt(2.5 * biased * shown) / biased), (BREAK_LENGTH - indent) // cell,
                  COMPACT * 4, 15)
    if columns <= 1:
        return output
    column_widths = [max(widths[i:shown:columns], default=0) + 2 for i in range(columns)]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:len(output)])
    rows = []
    for first in range(0, shown, columns):
        last = min(first + columns, shown) - 1
        row = ""
        for j in range(first, last):
            text = f"{output[j]}, "
            width = column_widths[j - first]
            row += text.rjust(width) if numbers else text.ljust(width)
        row += output[last].rjust(column_widths[last - first] - 2) if numbers else output[last]
        rows.append(row)
    if shown < len(output):
        rows.append(output[shown])
    return rows
