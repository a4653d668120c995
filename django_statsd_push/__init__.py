"""Push-based StatsD/Graphite metrics for Django.

``from django_statsd_push import statsd`` gives the lazily configured client that
views call (``statsd.incr("signups")``). Nothing here reads settings or opens a
socket at import time.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first attribute access so that ``import django_statsd_push`` stays
    # free of Django settings reads (daemons import this package too).
    if name == "statsd":
        from django_statsd_push.client import statsd

        return statsd
    raise AttributeError(name)
