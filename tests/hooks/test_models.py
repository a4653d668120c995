"""Model hook and mixin: what saves, deletes and bulk operations count (real SQLite)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_statsd_push import hooks
from django_statsd_push.hooks import models as models_hook
from django_statsd_push.testing import capture_metrics

from .models import ALL, Author, Book, Tracked, TrackedProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def tables():
    with connection.schema_editor() as editor:
        for model in ALL:
            editor.create_model(model)
    yield
    with connection.schema_editor() as editor:
        for model in reversed(ALL):
            editor.delete_model(model)


@pytest.fixture
def models_on(settings):
    settings.STATSD_HOOKS = ["models"]
    yield
    settings.STATSD_HOOKS = []


def counts(metrics) -> dict[str, int]:
    out: dict[str, int] = {}
    for record in metrics.filter(type="c"):
        out[record.name] = out.get(record.name, 0) + int(record.value)
    return out


def test_save_and_delete(models_on):
    with capture_metrics() as metrics:
        author = Author.objects.create(name="a")
        author.name = "b"
        author.save()
        Author.objects.get_or_create(name="c")
        author.delete()
    assert counts(metrics) == {
        "model.hooks.author.insert": 2,
        "model.hooks.author.update": 1,
        "model.hooks.author.delete": 1,
    }


def test_what_bulk_operations_count(models_on):
    with capture_metrics() as metrics:
        authors = Author.objects.bulk_create([Author(name=str(n)) for n in range(3)])
        Book.objects.bulk_create([Book(author=a, title="t") for a in Author.objects.all()])
        assert len(authors) == 3
        assert Author.objects.update(name="renamed") == 3
        Author.objects.bulk_update(list(Author.objects.all()), ["name"])
    assert counts(metrics) == {}  # no signal: nothing counted

    with capture_metrics() as metrics:
        deleted, _ = Author.objects.all().delete()
    assert deleted == 6
    # QuerySet.delete sends post_delete per object, cascaded books included.
    assert counts(metrics) == {
        "model.hooks.author.delete": 3,
        "model.hooks.book.delete": 3,
    }


def test_receiver_disables_fast_delete(settings):
    """The cost docs/hooks.rst warns about: rows are fetched before a QuerySet.delete()."""
    author = Author.objects.create(name="a")

    def delete_books() -> list[str]:
        Book.objects.bulk_create([Book(author=author, title=str(n)) for n in range(3)])
        with CaptureQueriesContext(connection) as queries:
            assert Book.objects.all().delete()[0] == 3
        return [q["sql"].split()[0] for q in queries.captured_queries]

    off = delete_books()
    settings.STATSD_HOOKS = ["models"]
    on = delete_books()
    settings.STATSD_HOOKS = []
    assert "SELECT" not in off and "DELETE" in off
    assert on.index("SELECT") < on.index("DELETE")


def test_mixin_alone_counts_only_its_models():
    assert "models" not in hooks.installed()
    with capture_metrics() as metrics:
        tracked = Tracked.objects.create(name="t")
        tracked.save()
        TrackedProxy.objects.create(name="p")
        Author.objects.create(name="untracked")
        Tracked.objects.all().delete()
    assert counts(metrics) == {
        "model.hooks.tracked.insert": 1,
        "model.hooks.tracked.update": 1,
        "model.hooks.trackedproxy.insert": 1,
        "model.hooks.tracked.delete": 2,
    }


def test_mixin_and_hook_count_once(models_on):
    hooks.install_enabled()
    models_hook.install()  # twice: still one receiver
    with capture_metrics() as metrics:
        Tracked.objects.create(name="t")
        Author.objects.create(name="a")
    assert counts(metrics) == {
        "model.hooks.tracked.insert": 1,
        "model.hooks.author.insert": 1,
    }


def test_counters_sent_as_real_datagrams(udp, models_on):
    Author.objects.create(name="a").delete()
    assert udp.lines() == [
        "model.hooks.author.insert:1|c",
        "model.hooks.author.delete:1|c",
    ]
