"""One request's wall-clock budget, visible to every step of that request.

A context variable rather than a parameter: the finder, the reader and the regular
expressions are reached from several entry points (``/render``, ``/metrics/find``,
functions that re-fetch), and each of them only needs to ask "how long is left?".
Each WSGI request runs in its own thread (bundled server) or worker (gunicorn), so
the variable never leaks between requests.

The budget is cooperative: long steps call :func:`check` between units of work (a
function call, a file read, a directory listing). Nothing between two checks can
run unbounded: regular expressions run on a linear-time engine or with a timeout
(:mod:`.regex`), reads are bounded by ``max_points``, finds by ``max_series``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .errors import OverBudget
from .settings import Limits


@dataclass(frozen=True)
class Deadline:
    seconds: float  # the whole request's budget, as configured (for messages)
    expires: float  # time.monotonic() value
    regex_seconds: float = Limits.regex_budget

    def remaining(self) -> float:
        return self.expires - time.monotonic()


_current: ContextVar[Deadline | None] = ContextVar("render_deadline", default=None)


@contextmanager
def scope(seconds: float, regex_seconds: float = Limits.regex_budget) -> Iterator[Deadline]:
    """Run the body under a budget of ``seconds`` (the request's)."""
    deadline = Deadline(seconds, time.monotonic() + seconds, regex_seconds)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def current() -> Deadline | None:
    return _current.get()


def check(step: str) -> None:
    """Raise OverBudget if the request has used its budget; ``step`` says where it was."""
    deadline = _current.get()
    if deadline is not None and deadline.remaining() <= 0:
        raise over_budget(deadline, step)


def over_budget(deadline: Deadline, step: str) -> OverBudget:
    return OverBudget(f"request ran past its time budget of {deadline.seconds:g} s (--time-budget) "
                      f"while {step}; narrow the query (fewer series, a shorter range)")
