"""The exceptions a request can end with instead of an answer."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the client (target, time, parameter, limit): HTTP 400. Its message is sent as-is."""


class OverBudget(Exception):
    """The request used its wall-clock budget (``--time-budget``): HTTP 503, message sent as-is.

    Not an InputError: the same query may fit the budget on a less loaded server."""
