"""The WSGI entry point for production servers::

    STATSD_PUSH_RENDER_WHISPER_ROOT=/var/lib/graphite/whisper \\
        gunicorn -w 4 -b 127.0.0.1:8080 django_statsd_push.render.wsgi:application

Settings come from ``STATSD_PUSH_RENDER_<FLAG>`` environment variables, one per flag of
``statsd-push render`` (same names, defaults and checks: :class:`.settings.RenderSettings`).

``application`` is built on first access (PEP 562 module ``__getattr__``), not at
import: importing this module has no side effects, while a WSGI server, which looks
the name up while loading the worker, still fails at start with the message naming
the bad variable, not at the first request.
"""

from __future__ import annotations

import threading

from .app import RenderApp, create_app
from .settings import RenderSettings

_built: RenderApp | None = None
_lock = threading.Lock()


def __getattr__(name: str) -> RenderApp:
    global _built
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if _built is None:
            _built = create_app(RenderSettings.from_env())
        return _built
