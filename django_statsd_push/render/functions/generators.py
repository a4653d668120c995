"""Series made from nothing but the requested range: identity, time, sin, randomWalk
(test patterns and reference lines)."""

from __future__ import annotations

import random

import numpy as np

from ..errors import InputError
from ..registry import Param, render_function
from ..series import Series

NAME = Param("name", "string", required=True)
STEP = Param("step", "integer", default=60)


def _times(ctx, step: int) -> np.ndarray:
    """The timestamps from ``from`` (included) to ``until`` (excluded), ``step`` apart."""
    if step <= 0:
        raise InputError(f"step must be a positive number of seconds, not {step}")
    count = -(-(ctx.end - ctx.start) // step)
    if count > ctx.limits.max_points:
        raise InputError(f"{count} points is more than {ctx.limits.max_points} (--max-points): use a larger step")
    return np.arange(ctx.start, ctx.end, step, dtype=np.float64)


@render_function("Calculate", [NAME])
def identity(ctx, name):
    """A series named ``name`` whose value at each minute is its own timestamp (seconds since
    the epoch): a straight rising line, handy to check other functions against.

    Example:

    .. code-block:: none

      &target=identity("The.time.series")
    """
    return [Series(name, ctx.start, ctx.end, 60, _times(ctx, 60), path_expression=f'identity("{name}")',
                   xff=ctx.xff)]


@render_function("Transform", [NAME, STEP], aliases=("time",))
def timeFunction(ctx, name, step=60):
    """A series named ``name`` whose value every ``step`` seconds (default 60) is its timestamp
    (seconds since the epoch). ``time`` is another name for this function.

    Example:

    .. code-block:: none

      &target=time("The.time.series")
      &target=timeFunction("The.time.series", 10)
    """
    return [Series(name, ctx.start, ctx.end, step, _times(ctx, step), xff=ctx.xff)]


@render_function("Transform", [NAME, Param("amplitude", "integer", default=1), STEP], aliases=("sin",))
def sinFunction(ctx, name, amplitude=1, step=60):
    """A sine wave named ``name``: the sine of the timestamp (in radians) times ``amplitude``
    (default 1), every ``step`` seconds (default 60). ``sin`` is another name for this function.

    Example:

    .. code-block:: none

      &target=sin("The.time.series", 2)
      &target=sinFunction("The.time.series", 2, 10)
    """
    return [Series(name, ctx.start, ctx.end, step, np.sin(_times(ctx, step)) * amplitude, xff=ctx.xff)]


@render_function("Special", [NAME, STEP], aliases=("randomWalk",))
def randomWalkFunction(ctx, name, step=60):
    """A random walk named ``name``, starting at 0: every ``step`` seconds (default 60) the value
    moves by a random amount in [-0.5, 0.5). Different on every request. ``randomWalk`` is
    another name for this function.

    Example:

    .. code-block:: none

      &target=randomWalk("The.time.series")
      &target=randomWalkFunction("The.time.series", 10)
    """
    count = len(_times(ctx, step))
    moves = np.fromiter((random.random() - 0.5 for _ in range(count)), dtype=np.float64, count=count)
    values = np.concatenate(([0.0], np.cumsum(moves[:-1]))) if count else moves
    return [Series(name, ctx.start, ctx.end, step, values, xff=ctx.xff)]
