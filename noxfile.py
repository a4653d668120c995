"""Test matrix: the whole suite on Django 5.2, the Django-side suites on Django 4.2.

The daemon side (server, bridge, render, stack) does not import Django's ORM or
request machinery beyond the example app, so running it twice buys nothing but time.
"""

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

DJANGO_SIDE = ["tests/client", "tests/hooks"]


@nox.session
@nox.parametrize("django", ["5.2", "4.2"])
def tests(session: nox.Session, django: str) -> None:
    session.install("-e", ".[dev]", f"django~={django}.0")
    default = ["tests"] if django == "5.2" else DJANGO_SIDE
    session.run("python", "-m", "pytest", *(session.posargs or default))
