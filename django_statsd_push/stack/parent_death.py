"""Children that cannot outlive the process that started them (Linux's parent-death signal).

A launcher killed with SIGKILL runs no cleanup, so without this its carbon-cache or
daemons would keep running, holding their ports. ``subprocess.Popen(...,
preexec_fn=die_with_parent)`` makes the kernel send the child SIGTERM (its graceful
path) when the parent goes away. Used by ``stack/carbon_cache.py`` and by the stack's
supervisor (``stack/processes.py``).
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: SIGTERM this child when its parent dies.

    Linux ties the signal to the *thread* that forked, so start long-lived children
    from a thread that lives as long as they should (the main thread, as the stack and
    the tests do). Elsewhere than Linux nothing happens: the parent's own stop() is
    then the only cleanup.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
