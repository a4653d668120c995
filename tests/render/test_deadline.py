"""--time-budget: every step that can take long checks the request's budget, and running
past it is a 503 naming the budget and the step, never a 500."""

from __future__ import annotations

import pytest

from django_statsd_push.render.app import RenderApp
from django_statsd_push.render.settings import Limits

from .conftest import NOW, Client


@pytest.fixture
def spent(data):
    """An app whose budget is used up before any step runs."""
    return Client(RenderApp(str(data), Limits(time_budget=1e-9), static_dir=None, clock=lambda: NOW))


@pytest.mark.parametrize(("path", "params", "step"), [
    ("/render", {"target": "sumSeries(a.*.c)"}, "while evaluating sumSeries()"),
    ("/render", {"target": "a.b1.c"}, "while finding 'a.b1.c'"),
    ("/metrics/find", {"query": "srv.*.cpu.*"}, "while finding 'srv.*.cpu.*'"),
    ("/metrics/index.json", {}, "while listing every metric"),
])
def test_over_budget_is_a_503_naming_budget_and_step(spent, path, params, step):
    status, headers, body = spent.request(path, params)
    assert status == 503, body
    assert headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert text.startswith("Service unavailable: request ran past its time budget of 1e-09 s (--time-budget)")
    assert step in text


def test_cheap_endpoints_need_no_budget(spent):
    assert spent.request("/version")[0] == 200
    assert spent.request("/functions")[0] == 200


def test_reading_checks_the_budget(data, monkeypatch):
    """The reader checks between files: a budget that expires after the find, during the reads."""
    from django_statsd_push.render import deadline

    calls = []
    real_check = deadline.check

    def check(step):
        calls.append(step)
        if step == "reading Whisper files":
            monkeypatch.setattr(deadline.Deadline, "remaining", lambda self: -1.0)
        real_check(step)

    monkeypatch.setattr(deadline, "check", check)
    client = Client(RenderApp(str(data), Limits(), static_dir=None, clock=lambda: NOW))
    status, _, body = client.request("/render", {"target": "a.*.c", "format": "json"})
    assert status == 503 and b"while reading Whisper files" in body, body
