"""Instrumentation hooks (DB, cache, models, migrations, Celery), switched on by STATSD_HOOKS.

Placeholder owned by the hooks work (issue 3): ``install_enabled()`` is called from
``AppConfig.ready()`` and must be idempotent.
"""


def install_enabled() -> None:
    """Install the hooks named in ``STATSD_HOOKS`` (none yet)."""
