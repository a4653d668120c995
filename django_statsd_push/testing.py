"""Assert on metrics in your project's tests.

    from django_statsd_push.testing import capture_metrics

    def test_signup(client):
        with capture_metrics() as metrics:
            client.post("/signup/", {...})
        metrics.assert_incr("signups")
        metrics.assert_timing("request.signup.POST", count=1)

or, with pytest, the ``statsd_metrics`` fixture (``django_statsd_push.pytest_plugin``).

What is recorded is what the client sends, after sampling and with the prefix, whatever
``STATSD_CLIENT`` is: with ``"capture"`` or ``"null"`` in test settings nothing leaves the
process, with ``"udp"`` the datagrams are sent as well. Records are read from the lines
as they are handed to the transport, through the same fast path production runs, so
metrics buffered in a request's batch appear when the request's response is finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django_statsd_push.client import Captured, StatsdClient, statsd

__all__ = ["Captured", "MetricsRecorder", "capture_metrics"]


def _same_value(recorded: str, expected: Any) -> bool:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            return float(recorded) == float(expected)
        except ValueError:
            return False
    return recorded == str(expected)


class MetricsRecorder:
    """The metrics captured so far, with markus-style assertion helpers.

        >>> with capture_metrics() as metrics:
        ...     statsd.incr("orders", 2)
        >>> metrics.assert_incr("orders", value=2, count=1)

    ``name`` matches either the full name as sent (prefix included) or the name
    without ``STATSD_PREFIX``, so tests do not depend on the deployment's prefix.
    """

    def __init__(self, records: list[Captured]) -> None:
        self.records = records

    def filter(
        self,
        name: str | None = None,
        type: str | None = None,
        value: Any = None,
        tags: dict[str, str] | None = None,
    ) -> list[Captured]:
        return [
            r
            for r in self.records
            if (name is None or name in (r.name, r.stat))
            and (type is None or r.type == type)
            and (value is None or _same_value(r.value, value))
            and (tags is None or all(r.tags.get(k) == str(v) for k, v in tags.items()))
        ]

    def assert_sent(
        self,
        name: str,
        type: str | None = None,
        value: Any = None,
        count: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[Captured]:
        """At least one matching metric (exactly ``count`` if given); returns them."""
        found = self.filter(name, type, value, tags)
        wanted = f"{name!r} type={type} value={value} tags={tags}"
        if count is None and not found:
            raise AssertionError(f"no metric {wanted} was sent; sent:\n{self._listing()}")
        if count is not None and len(found) != count:
            raise AssertionError(
                f"metric {wanted} sent {len(found)} times, expected {count}; sent:\n"
                f"{self._listing()}"
            )
        return found

    def assert_not_sent(self, name: str, type: str | None = None) -> None:
        found = self.filter(name, type)
        if found:
            raise AssertionError(f"metric {name!r} was sent: {[r.line for r in found]}")

    def assert_incr(self, name: str, value: Any = None, count: int | None = None,
                    tags: dict[str, str] | None = None) -> list[Captured]:
        return self.assert_sent(name, "c", value, count, tags)

    def assert_timing(self, name: str, count: int | None = None,
                      tags: dict[str, str] | None = None) -> list[Captured]:
        return self.assert_sent(name, "ms", None, count, tags)

    def assert_gauge(self, name: str, value: Any = None, count: int | None = None,
                     tags: dict[str, str] | None = None) -> list[Captured]:
        return self.assert_sent(name, "g", value, count, tags)

    def assert_set(self, name: str, value: Any = None, count: int | None = None,
                   tags: dict[str, str] | None = None) -> list[Captured]:
        return self.assert_sent(name, "s", value, count, tags)

    def names(self) -> list[str]:
        return [r.name for r in self.records]

    def clear(self) -> None:
        self.records.clear()

    def _listing(self) -> str:
        return "\n".join(f"  {r.line}" for r in self.records) or "  (nothing)"


@contextmanager
def capture_metrics(client: StatsdClient | None = None) -> Iterator[MetricsRecorder]:
    """Record every metric sent inside the block (``client``: the global ``statsd``).

        >>> with capture_metrics() as metrics:
        ...     client.get("/")
        >>> metrics.assert_timing("request.home.GET", count=1)
    """
    with (client or statsd).capture() as records:
        yield MetricsRecorder(records)
