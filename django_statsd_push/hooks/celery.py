"""Celery hook (optional extra ``django-statsd-push[celery]``): task counters and runtime.

``celery.<task>.sent``       before_task_publish (in the process that queues the task)
``celery.<task>.started``    task_prerun (in the worker)
``celery.<task>.succeeded``  task_postrun with state SUCCESS
``celery.<task>.failed``     task_failure
``celery.<task>.retried``    task_retry
``celery.<task>.runtime``    timer, prerun to postrun, whatever the outcome

In the worker each task runs inside its own batch (``client.batching`` semantics): the
metrics of the task, those its code sends with ``statsd`` and those of the DB and
cache hooks leave in one datagram when the task ends, as a request's do.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from django_statsd_push import names
from django_statsd_push.client import Batch, activate_batch, deactivate_batch, statsd

logger = logging.getLogger("django_statsd_push")

_UID = "django_statsd_push.hooks.celery"
# task id -> (start, batch, token) between prerun and postrun (same thread in Celery's
# pools; eager tasks nest, each with its own id).
_running: dict[str, tuple[float, Batch, Any]] = {}


def _task_name(task: Any) -> str:
    return getattr(task, "name", None) or str(task)


def _on_publish(sender: Any = None, headers: Any = None, body: Any = None, **_: Any) -> None:
    # sender is the task name; protocol 1 messages carry it in the body instead.
    name = sender or (headers or {}).get("task") or (body or {}).get("task") or "unknown"
    statsd.incr(names.celery(str(name), "sent"))


def _on_prerun(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    batch = Batch()
    token = activate_batch(batch)
    _running[str(task_id)] = (perf_counter(), batch, token)
    statsd.incr(names.celery(_task_name(sender), "started"))


def _on_postrun(
    sender: Any = None, task_id: str | None = None, state: str | None = None, **_: Any
) -> None:
    task = _task_name(sender)
    started = _running.pop(str(task_id), None)
    if started is None:
        if state == "SUCCESS":
            statsd.incr(names.celery(task, "succeeded"))
        return
    start, batch, token = started
    statsd.timing(names.celery(task, "runtime"), (perf_counter() - start) * 1000.0)
    if state == "SUCCESS":
        statsd.incr(names.celery(task, "succeeded"))
    try:
        deactivate_batch(token)
    except ValueError:  # a pool that ran postrun in another context: send all the same
        logger.debug("statsd: task batch ended in another context", exc_info=True)
    statsd.send_batch(batch)


def _on_failure(sender: Any = None, **_: Any) -> None:
    statsd.incr(names.celery(_task_name(sender), "failed"))


def _on_retry(sender: Any = None, **_: Any) -> None:
    statsd.incr(names.celery(_task_name(sender), "retried"))


def _signals() -> list[tuple[Any, Any]]:
    from celery import signals

    return [
        (signals.before_task_publish, _on_publish),
        (signals.task_prerun, _on_prerun),
        (signals.task_postrun, _on_postrun),
        (signals.task_failure, _on_failure),
        (signals.task_retry, _on_retry),
    ]


def install() -> None:
    for signal, receiver in _signals():
        signal.connect(receiver, weak=False, dispatch_uid=_UID)


def uninstall() -> None:
    for signal, receiver in _signals():
        signal.disconnect(receiver, dispatch_uid=_UID)
