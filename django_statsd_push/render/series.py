"""The time series that functions pass around: graphite's TimeSeries, over a NumPy array.

Immutable by convention: every function returns new ``Series`` (``copy``) rather than
editing its input, so one fetched array can be shared by several expressions of a
request. NaN is graphite's None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce as fold

import numpy as np

from . import aggfuncs


@dataclass
class Series:
    name: str
    start: int
    end: int
    step: int
    values: np.ndarray
    tags: dict = field(default_factory=dict)
    path_expression: str = ""
    consolidation: str = "average"
    xff: float = 0.0
    values_per_point: int = 1
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tags:
            self.tags = {"name": self.name}
        if not self.path_expression:
            self.path_expression = self.name

    def __len__(self) -> int:
        return len(self.values)

    def copy(self, **changes) -> "Series":
        """A new series; a changed name also becomes the path expression unless given.

        Cheaper than ``dataclasses.replace`` (no __init__): the render hot path copies
        once per fetched file.
        """
        if "name" in changes and "path_expression" not in changes:
            changes["path_expression"] = changes["name"]
        new = object.__new__(Series)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        new.tags = dict(new.tags) if new.tags else {"name": new.name}
        return new

    def with_tag(self, key: str, value, **changes) -> "Series":
        """A copy with one more tag; values are strings, as graphite-web's Tags stores them."""
        tags = dict(self.tags)
        tags[key] = str(value)
        return self.copy(tags=tags, **changes)

    def points(self) -> np.ndarray:
        """Values as iteration sees them: consolidated by ``values_per_point``."""
        return aggfuncs.consolidate(self.values, self.values_per_point, self.consolidation, self.xff)

    def timestamps(self) -> range:
        return range(int(self.start), int(self.end) + 1, int(self.step * self.values_per_point))


def series_from_values(name, start, end, step, values, xff=0.0, **kw) -> Series:
    return Series(name, int(start), int(end), int(step), np.asarray(values, dtype=np.float64), xff=xff, **kw)


def lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def normalize(series_lists: list[list[Series]]) -> tuple[list[Series], int, int, int, np.ndarray]:
    """Align series on a common step (their LCM) and start, as graphite's ``normalize``.

    Returns the flattened series, start, end, step and a (series x points) matrix of
    consolidated values padded with NaN (graphite's ``izip_longest``). Raises
    ``EmptyNormalize`` for no series at all.
    """
    flat = [s for lst in series_lists for s in lst]
    if not flat:
        raise EmptyNormalize()
    step = fold(lcm, [s.step for s in flat])
    consolidated = [s if s.step == step else s.copy(values_per_point=step // s.step) for s in flat]
    start = min(s.start for s in flat)
    end = max(s.end for s in flat)
    end -= (end - start) % step
    return consolidated, start, end, step, matrix([s.points() for s in consolidated])


def matrix(arrays: list[np.ndarray]) -> np.ndarray:
    width = max((len(a) for a in arrays), default=0)
    if all(len(a) == width for a in arrays):
        return np.vstack(arrays) if arrays else np.empty((0, 0))
    out = np.full((len(arrays), width), np.nan)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


class EmptyNormalize(Exception):
    """normalize() of nothing: graphite's functions then return an empty list."""


def format_path_expressions(series: list[Series]) -> str:
    seen: list[str] = []
    for s in series:
        if s.path_expression not in seen:
            seen.append(s.path_expression)
    return ",".join(seen)


def fmt_g(value: float) -> str:
    """Python's ``%g``, which graphite uses to print numbers into series names."""
    return "%g" % float(value)
