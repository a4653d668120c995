"""pytest plugin (entry point ``pytest11``): the ``statsd_metrics`` fixture.

Imports nothing from Django until a test asks for the fixture, because pytest loads
plugins before Django settings are configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from django_statsd_push.testing import MetricsRecorder


@pytest.fixture
def statsd_metrics() -> Iterator[MetricsRecorder]:
    """Every metric sent during the test, with ``assert_incr``/``assert_timing``/... helpers."""
    from django_statsd_push.testing import capture_metrics

    with capture_metrics() as recorder:
        yield recorder
