"""Warnings W002/W003: settings, middleware and backends of django-statsd(-mozilla) and
django-prometheus are named with what to write instead (docs/migrating.rst).

The setting names are checked against the installed packages' own source, so a setting
they read that this check does not know fails here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from django_statsd_push.checks import check_settings
from django_statsd_push.migrating import LEGACY


def warnings_for(settings, **values) -> list:
    for name, value in values.items():
        setattr(settings, name, value)
    return [m for m in check_settings() if m.id in ("django_statsd_push.W002", "django_statsd_push.W003")]


def settings_read_by(package: str) -> set[str]:
    """Every STATSD_*/PROMETHEUS_*/TOOLBAR_STATSD setting the package's code reads.

    Found without importing it (django-statsd configures its client at import)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} is not installed (the dev extra has it)"
    root = Path(spec.origin).parent
    read = set()
    for path in root.rglob("*.py"):
        if "tests" in path.parts:
            continue
        read.update(re.findall(r"""['"]((?:STATSD|PROMETHEUS|TOOLBAR)_[A-Z_]+)['"]""", path.read_text()))
    return read


def test_every_setting_the_old_packages_read_is_known():
    ours_too = {"STATSD_HOST", "STATSD_PORT", "STATSD_PREFIX"}  # same meaning here: no warning
    ours_too.add("PROMETHEUS_MULTIPROC_DIR")  # an environment variable, not a setting
    read = settings_read_by("django_statsd") | settings_read_by("django_prometheus")
    assert read - ours_too <= set(LEGACY), sorted(read - ours_too - set(LEGACY))
    assert "STATSD_PATCHES" in read and "PROMETHEUS_EXPORT_MIGRATIONS" in read  # the scan works


def test_no_warning_without_old_settings(settings):
    assert warnings_for(settings) == []


@pytest.mark.parametrize(
    "setting, value, hint",
    [
        ("STATSD_PATCHES", ["django_statsd.patches.db", "django_statsd.patches.cache"],
         "Write STATSD_HOOKS = ['db', 'cache']."),
        ("STATSD_MODEL_SIGNALS", True, "Write STATSD_HOOKS = ['models']."),
        ("STATSD_CELERY_SIGNALS", True, "Write STATSD_HOOKS = ['celery']."),
        ("STATSD_CELERY_SIGNALS", False, "Remove it."),
        ("STATSD_CLIENT", "django_statsd.clients.normal", "Write STATSD_CLIENT = 'udp'."),
        ("STATSD_CLIENT", "django_statsd.clients.null", "Write STATSD_CLIENT = 'null'."),
        ("STATSD_CLIENT", "django_statsd.clients.toolbar", "StatsdPanel to DEBUG_TOOLBAR_PANELS"),
        ("STATSD_CLIENT", "myproject.statsd_client", "names one of our transports, not a module"),
        ("STATSD_VIEW_TIMER_DETAILS", False, "sumSeries(request.*.GET)"),
        ("STATSD_RECORD_KEYS", ["window.performance.timing.loadEventEnd"], "{% statsd_browser_timing %}"),
        ("TOOLBAR_STATSD", {"graphite": "http://g"}, "django_statsd_push.panels.StatsdPanel"),
        ("PROMETHEUS_EXPORT_MIGRATIONS", True, "Write STATSD_EXPORT_MIGRATIONS = True"),
        ("PROMETHEUS_METRIC_NAMESPACE", "shop", "Write STATSD_PREFIX = <namespace>"),
        ("PROMETHEUS_LATENCY_BUCKETS", (0.1, 1.0), "histogram_options.buckets"),
        ("PROMETHEUS_METRICS_EXPORT_PORT", 8001, "statsd-push bridge --listen"),
    ],
)
def test_each_old_setting_says_what_to_write(settings, setting, value, hint):
    [warning] = warnings_for(settings, **{setting: value})
    assert warning.id == "django_statsd_push.W002"
    assert warning.msg.startswith(f"{setting} = {value!r} is a django-")
    assert hint in warning.hint


def test_hooks_advice_keeps_the_hooks_already_set(settings):
    [warning] = warnings_for(settings, STATSD_HOOKS=["db"], STATSD_MODEL_SIGNALS=True)
    assert warning.hint == "Write STATSD_HOOKS = ['db', 'models']."


def test_an_unknown_patch_is_named(settings):
    [warning] = warnings_for(settings, STATSD_PATCHES=["django_statsd.patches.db", "shop.patches"])
    assert warning.hint == "Write STATSD_HOOKS = ['db'] ('shop.patches' has no hook of the same name)."


def test_our_own_client_names_are_not_warned_about(settings):
    assert warnings_for(settings, STATSD_CLIENT="tcp") == []


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_old_middleware_and_backends(settings):
    found = warnings_for(
        settings,
        MIDDLEWARE=["django_statsd_push.middleware.StatsdMiddleware",
                    "django_prometheus.middleware.PrometheusBeforeMiddleware",
                    "django_statsd.middleware.GraphiteRequestTimingMiddleware"],
        DATABASES={**settings.DATABASES,
                   "other": {"ENGINE": "django_prometheus.db.backends.postgresql", "NAME": "x"}},
        CACHES={"default": {"BACKEND": "django_prometheus.cache.backends.redis.NativeRedisCache"}},
    )
    assert [w.id for w in found] == ["django_statsd_push.W003"] * 4
    assert "django_prometheus.middleware.PrometheusBeforeMiddleware" in found[0].msg
    assert "GraphiteRequestTimingMiddleware" in found[1].msg
    assert found[2].msg.startswith(
        "DATABASES['other']['ENGINE'] = 'django_prometheus.db.backends.postgresql'")
    assert found[2].hint == (
        "Use Django's own backend ('django.db.backends.postgresql') and STATSD_HOOKS = ['db'].")
    assert "'django.core.cache.backends.redis.RedisCache'" in found[3].hint


def test_old_apps(settings):
    found = warnings_for(settings, INSTALLED_APPS=[*settings.INSTALLED_APPS, "django_prometheus"])
    assert [(w.id, w.msg) for w in found] == [
        ("django_statsd_push.W003",
         "INSTALLED_APPS has 'django_prometheus': its signals and patches still send metrics."),
    ]


def test_shown_by_manage_py_check(settings, capsys):
    settings.STATSD_PATCHES = ["django_statsd.patches.db"]
    call_command("check")  # warnings do not stop it
    err = capsys.readouterr().err
    assert ("(django_statsd_push.W002) STATSD_PATCHES = ['django_statsd.patches.db'] is a "
            "django-statsd setting") in err
