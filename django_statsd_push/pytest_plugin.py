"""pytest plugin (entry point ``pytest11``): tests keep metrics in the process.

Under pytest, every test runs with the client's network transports (udp, tcp, unix)
replaced by ``capture``: a project's test run never sprays datagrams at whatever
``STATSD_HOST`` its settings name. A test opts in to real sending with the
``statsd_send`` marker or fixture; a project opts in for all tests with
``STATSD_PYTEST_SEND = True``. The ``statsd_metrics`` fixture records what is sent.

Imports nothing from Django until a test runs, because pytest loads plugins before
Django settings are configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django_statsd_push.testing import MetricsRecorder


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "statsd_send: let this test send real statsd datagrams "
        "(django-statsd-push keeps them in the process by default)",
    )


@pytest.fixture(autouse=True)
def _statsd_kept_in_process(request: pytest.FixtureRequest) -> Iterator[None]:
    from django_statsd_push.client import statsd

    statsd.keep_in_process(request.node.get_closest_marker("statsd_send") is None)
    yield
    statsd.keep_in_process(False)


@pytest.fixture
def statsd_send() -> None:
    """Let this test send real datagrams (the same as ``@pytest.mark.statsd_send``)."""
    from django_statsd_push.client import statsd

    statsd.keep_in_process(False)


@pytest.fixture
def statsd_metrics() -> Iterator[MetricsRecorder]:
    """Every metric sent during the test, with ``assert_incr``/``assert_timing``/... helpers.

        def test_signup(client, statsd_metrics):
            client.post("/signup/", {...})
            statsd_metrics.assert_incr("signups", count=1)
    """
    from django_statsd_push.testing import capture_metrics

    with capture_metrics() as recorder:
        yield recorder
