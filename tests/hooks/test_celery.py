"""Celery hook with a real worker (Redis broker and result backend) and in eager mode."""

from __future__ import annotations

import threading
import uuid

from typing import TYPE_CHECKING

import pytest

from django_statsd_push.client import statsd
from django_statsd_push.testing import capture_metrics
from tests.conftest import require_import, require_tcp

if TYPE_CHECKING:
    from celery import Celery

REDIS = "redis://127.0.0.1:6379/12"


@pytest.fixture(scope="module")
def app():
    """One app for the module (task names are registered once per process)."""
    require_import("celery")
    app = make_app()
    yield app
    close_app(app)


def close_app(app: Celery) -> None:
    app.close()  # the broker connection pool


def make_app() -> Celery:
    # No result backend: outcomes are read from task_postrun (Finished), which also
    # avoids the backend's pub/sub socket outliving the test.
    from celery import Celery

    app = Celery("hooks_tests", broker=REDIS, set_as_current=False)
    app.conf.update(
        task_default_queue=f"hooks-{uuid.uuid4().hex}",  # nobody else's messages
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="hooks.add")
    def add(x, y):
        statsd.incr("inside.add")  # the task's own metric joins the task's batch
        return x + y

    @app.task(name="hooks.fail")
    def fail():
        raise ValueError("boom")

    @app.task(name="hooks.flaky", bind=True, max_retries=1)
    def flaky(self):
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return "ok"

    return app


@pytest.fixture
def celery_on(settings):
    settings.STATSD_HOOKS = ["celery"]
    yield
    settings.STATSD_HOOKS = []


class Finished:
    """task_postrun's (state, retval) per task id; runs after our receiver (connected later)."""

    def __init__(self) -> None:
        self.events: dict[str, threading.Event] = {}
        self.outcomes: dict[str, tuple[str, object]] = {}
        self.lock = threading.Lock()

    def event(self, task_id: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(task_id, threading.Event())

    def __call__(self, task_id=None, state=None, retval=None, **_):
        if state != "RETRY":
            self.outcomes[task_id] = (state, retval)
            self.event(task_id).set()

    def wait(self, task_id: str) -> tuple[str, object]:
        assert self.event(task_id).wait(20), f"task {task_id} did not finish"
        return self.outcomes[task_id]


def counts(metrics) -> dict[str, int]:
    out: dict[str, int] = {}
    for record in metrics.records:
        key = f"{record.name}|{record.type}"
        out[key] = out.get(key, 0) + (int(record.value) if record.type == "c" else 1)
    return out


def test_real_worker(celery_on, app):
    from celery import signals
    from celery.contrib.testing.worker import start_worker

    require_tcp("127.0.0.1", 6379, "Redis")
    finished = Finished()
    signals.task_postrun.connect(finished, weak=False)
    try:
        with capture_metrics() as metrics, start_worker(
            app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
            shutdown_timeout=20,
        ):
            ok = app.tasks["hooks.add"].delay(2, 3).id
            bad = app.tasks["hooks.fail"].delay().id
            flaky = app.tasks["hooks.flaky"].delay().id
            assert finished.wait(ok) == ("SUCCESS", 5)
            state, error = finished.wait(bad)
            assert state == "FAILURE" and isinstance(error, ValueError)
            assert finished.wait(flaky) == ("SUCCESS", "ok")
    finally:
        signals.task_postrun.disconnect(finished)

    assert {k: v for k, v in counts(metrics).items() if "hooks_" in k} == {
        "celery.hooks_add.sent|c": 1,
        "celery.hooks_add.started|c": 1,
        "celery.hooks_add.succeeded|c": 1,
        "celery.hooks_add.runtime|ms": 1,
        "celery.hooks_fail.sent|c": 1,
        "celery.hooks_fail.started|c": 1,
        "celery.hooks_fail.failed|c": 1,
        "celery.hooks_fail.runtime|ms": 1,
        # A retry is published again: sent twice, run twice.
        "celery.hooks_flaky.sent|c": 2,
        "celery.hooks_flaky.started|c": 2,
        "celery.hooks_flaky.retried|c": 1,
        "celery.hooks_flaky.succeeded|c": 1,
        "celery.hooks_flaky.runtime|ms": 2,
    }
    metrics.assert_incr("inside.add", count=1)


def test_eager_task_metrics_leave_in_one_datagram(udp, celery_on, app):
    assert app.tasks["hooks.add"].apply((1, 2)).get() == 3  # eager: no backend involved
    (datagram,) = udp.datagrams()
    lines = datagram.split("\n")
    assert lines[0] == "celery.hooks_add.started:1|c"
    assert lines[1] == "inside.add:1|c"
    assert lines[2].startswith("celery.hooks_add.runtime:") and lines[2].endswith("|ms")
    assert lines[3] == "celery.hooks_add.succeeded:1|c"


def test_switched_off_sends_nothing(settings, app):
    settings.STATSD_HOOKS = []
    with capture_metrics() as metrics:
        app.tasks["hooks.add"].apply((1, 2))
    assert [r.name for r in metrics.records] == ["inside.add"]
