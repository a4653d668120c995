"""Model hook: ``model.<app_label>.<model>.insert|update|delete`` counters from signals.

Two ways in:

* ``"models"`` in ``STATSD_HOOKS``: every model, through ``post_save``/``post_delete``
  receivers connected for all senders.
* :class:`StatsdModelMixin` on chosen models: only those (and their subclasses and
  proxies), whatever ``STATSD_HOOKS`` says. A model with the mixin is counted once even
  when the hook is on as well.

What the signals can see (and so what is counted; see docs/hooks.rst):

* ``save()``/``create()``/``get_or_create()``: one insert or update per object
  (``created`` decides; fixtures loaded with ``loaddata`` are counted too).
* ``Model.delete()`` and ``QuerySet.delete()``: one delete per object removed,
  cascaded objects included, because Django sends ``post_delete`` for each.
* ``bulk_create()``, ``bulk_update()``, ``QuerySet.update()``, raw SQL: nothing (Django
  sends no signal). The DB hook still times those statements as
  ``db.<alias>.<vendor>.insert|update``.

Cost to know about: a ``post_delete`` receiver makes Django fetch the rows before a
``QuerySet.delete()`` instead of deleting them in one statement ("fast delete"). With
the hook on, that applies to every model; with the mixin, only to the chosen ones.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from django_statsd_push import names
from django_statsd_push.client import statsd

_UID = "django_statsd_push.hooks.models"
_MIXIN_UID = "django_statsd_push.hooks.models.mixin"


def _count(sender: Any, event: str) -> None:
    meta = sender._meta
    statsd.incr(names.model_event(meta.app_label, meta.model_name, event))


def _saved(sender: Any, created: bool = False, **_: Any) -> None:
    _count(sender, "insert" if created else "update")


def _deleted(sender: Any, **_: Any) -> None:
    _count(sender, "delete")


def _saved_any(sender: Any, instance: Any, created: bool = False, **_: Any) -> None:
    if not isinstance(instance, StatsdModelMixin):  # counted by its own receiver
        _saved(sender, created)


def _deleted_any(sender: Any, instance: Any, **_: Any) -> None:
    if not isinstance(instance, StatsdModelMixin):
        _deleted(sender)


class StatsdModelMixin:
    """Count this model's inserts, updates and deletes, whatever ``STATSD_HOOKS`` says.

        class Poll(StatsdModelMixin, models.Model):
            question = models.CharField(max_length=200)

        Poll.objects.create(question="?")   # model.polls.poll.insert:1|c

    Connects receivers for the model class itself when the class is created, so the
    model needs nothing in settings; subclasses and proxies get their own.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # dispatch_uid is per sender: a class defined twice (reloads) connects once.
        post_save.connect(_saved, sender=cls, dispatch_uid=_MIXIN_UID)
        post_delete.connect(_deleted, sender=cls, dispatch_uid=_MIXIN_UID)


def install() -> None:
    post_save.connect(_saved_any, dispatch_uid=_UID)
    post_delete.connect(_deleted_any, dispatch_uid=_UID)


def uninstall() -> None:
    post_save.disconnect(dispatch_uid=_UID)
    post_delete.disconnect(dispatch_uid=_UID)
