"""Models for the model-hook tests, in a registry of their own.

They live outside INSTALLED_APPS (the shared test settings stay untouched); the tests
create and drop their tables with the schema editor.
"""

from django.apps.registry import Apps
from django.db import models

from django_statsd_push.hooks.models import StatsdModelMixin

# An app config for this package, so relations (cascades) resolve inside the registry.
registry = Apps(["tests.hooks"])


class Author(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "hooks"
        apps = registry


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    title = models.CharField(max_length=50)

    class Meta:
        app_label = "hooks"
        apps = registry


class Tracked(StatsdModelMixin, models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "hooks"
        apps = registry


class TrackedProxy(Tracked):
    class Meta:
        proxy = True
        app_label = "hooks"
        apps = registry


ALL = [Author, Book, Tracked]
