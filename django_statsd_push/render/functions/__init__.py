"""Render functions, one module per graphite group; importing this package registers them."""

from . import aliases, calculate, combine, filters, forecast, generators, graph, tags, transform  # noqa: F401
