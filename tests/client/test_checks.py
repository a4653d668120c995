"""System checks: each bad setting gives its own stable id, a message naming it, a hint."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_statsd_push.checks import check_settings


def test_defaults_and_test_settings_are_valid():
    assert check_settings() == []


@pytest.mark.parametrize(
    "setting, value, check_id",
    [
        ("STATSD_HOST", "", "E001"),
        ("STATSD_HOST", 127, "E001"),
        ("STATSD_PORT", "eighty", "E002"),
        ("STATSD_PORT", "8125.5", "E002"),
        ("STATSD_PORT", 8125.0, "E002"),
        ("STATSD_PORT", 0, "E002"),
        ("STATSD_PORT", 70000, "E002"),
        ("STATSD_PORT", True, "E002"),
        ("STATSD_PREFIX", ["app"], "E003"),
        ("STATSD_MAXUDPSIZE", 10, "E004"),
        ("STATSD_MAXUDPSIZE", 65508, "E004"),
        ("STATSD_IPV6", "yes", "E005"),
        ("STATSD_CLIENT", "carrier-pigeon", "E006"),
        ("STATSD_ENABLED", 1, "E007"),
        ("STATSD_SAMPLE_RATE", 1.5, "E008"),
        ("STATSD_SAMPLE_RATE", "half", "E008"),
        ("STATSD_SAMPLE_RATE", "1.5", "E008"),
        ("STATSD_HOOKS", "db", "E009"),
        ("STATSD_HOOKS", ["db", "orm"], "E009"),
        ("STATSD_TAG_FORMAT", "influx", "E010"),
        ("STATSD_DNS_REFRESH", -1, "E011"),
        ("STATSD_UNIX_SOCKET", 3, "E012"),
        ("STATSD_EXPORT_MIGRATIONS", "on", "E013"),
        ("STATSD_PYTEST_SEND", "yes", "E015"),
        ("STATSD_EXCLUDE_PATHS", "/static/", "E016"),
        ("STATSD_EXCLUDE_PATHS", ["^/(unclosed"], "E016"),
        ("STATSD_EXCLUDE_PATHS", [42], "E016"),
        ("STATSD_EXCLUDE_VIEWS", "health", "E017"),
        ("STATSD_EXCLUDE_VIEWS", ["health", None], "E017"),
        ("STATSD_BROWSER_VIEWS", "polls:detail", "E018"),
        ("STATSD_BROWSER_RATE", 0, "E019"),
        ("STATSD_BROWSER_RATE", "many", "E019"),
    ],
)
def test_bad_setting(settings, setting, value, check_id):
    setattr(settings, setting, value)
    errors = check_settings()
    assert [e.id for e in errors] == [f"django_statsd_push.{check_id}"]
    assert setting in errors[0].msg
    assert errors[0].hint and setting in errors[0].hint


def test_unix_client_needs_a_socket_path(settings):
    settings.STATSD_CLIENT = "unix"
    assert [e.id for e in check_settings()] == ["django_statsd_push.E014"]


@pytest.mark.parametrize(
    "setting, value",
    [
        ("STATSD_HOOKS", ("db", "cache", "models", "migrations", "celery")),
        ("STATSD_TAG_FORMAT", "dogstatsd"),
        ("STATSD_TAG_FORMAT", "graphite"),
        ("STATSD_SAMPLE_RATE", 1),
        ("STATSD_DNS_REFRESH", 0),
        ("STATSD_PREFIX", "myapp"),
        # What os.environ.get("STATSD_PORT", 8125) and friends give.
        ("STATSD_PORT", "8125"),
        ("STATSD_PORT", " 9125 "),
        ("STATSD_MAXUDPSIZE", "1432"),
        ("STATSD_SAMPLE_RATE", "0.5"),
        ("STATSD_DNS_REFRESH", "30"),
        ("STATSD_EXCLUDE_PATHS", ["/static/", "^/admin/", re.compile(r"\.ico$")]),
        ("STATSD_EXCLUDE_VIEWS", ["health", "polls:detail", "shop.views.robots"]),
    ],
)
def test_good_values_pass(settings, setting, value):
    setattr(settings, setting, value)
    assert check_settings() == []


def test_unknown_hook_is_named(settings):
    settings.STATSD_HOOKS = ["db", "orm", "cach"]
    (error,) = check_settings()
    assert "unknown hook 'orm', 'cach'" in error.msg


def test_message_says_what_is_wrong(settings):
    settings.STATSD_PORT = 70000
    (error,) = check_settings()
    assert error.msg == "STATSD_PORT = 70000 is not valid: outside 1-65535."


def test_registered_with_manage_py_check(settings):
    settings.STATSD_PORT = -1
    with pytest.raises(SystemCheckError, match=r"django_statsd_push\.E002"):
        call_command("check")


def test_middleware_not_first_is_a_warning(settings):
    settings.MIDDLEWARE = [
        "django.middleware.common.CommonMiddleware",
        "django_statsd_push.middleware.StatsdMiddleware",
    ]
    (warning,) = check_settings()
    assert warning.id == "django_statsd_push.W001"
    assert "first" in warning.hint


def test_middleware_first_or_absent_is_fine(settings):
    settings.MIDDLEWARE = ["django_statsd_push.middleware.StatsdMiddleware", "x.Y"]
    assert check_settings() == []
    settings.MIDDLEWARE = ["x.Y"]
    assert check_settings() == []
