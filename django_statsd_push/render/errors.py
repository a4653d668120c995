"""The one exception type that becomes an HTTP 400: everything a client can get wrong."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the client (target, time, parameter, limit). Its message is sent as-is."""
