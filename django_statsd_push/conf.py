"""The one place that knows the STATSD_* settings: defaults, what is valid, the fix.

Every attribute of ``settings`` reads ``django.conf.settings`` when it is accessed, never
at import, so ``override_settings`` and a late ``settings.configure()`` both work; it
returns the value as the user wrote it. :meth:`StatsdSettings.parsed` returns it checked
and converted, or raises :class:`SettingError` naming the setting, the problem and the
fix. Both users of that rule read it from here, so they cannot disagree: the system
checks (``checks.py``: the error stops ``runserver``/``migrate``) and the client (which
logs it and sends nothing rather than failing a request).

The client does not read these on every metric: it keeps what it read in one state
object until a ``STATSD_*`` setting changes (``setting_changed``) or the process forks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from django_statsd_push.exclusions import parse_paths, parse_views

CLIENTS = ("udp", "tcp", "unix", "null", "log", "capture")
HOOKS = ("db", "cache", "models", "migrations", "celery")
TAG_FORMATS = (None, "dogstatsd", "graphite")

T = TypeVar("T")


class SettingError(ValueError):
    """A STATSD_* setting that cannot be used; ``str()`` names it, the value and the problem."""

    def __init__(self, setting: str, value: Any, problem: str, hint: str, check_id: str) -> None:
        self.setting, self.value, self.problem = setting, value, problem
        self.hint, self.check_id = hint, check_id
        super().__init__(f"{setting} = {value!r} is not valid: {problem}.")


UNIX_NEEDS_SOCKET = SettingError(
    "STATSD_UNIX_SOCKET", None, "STATSD_CLIENT = 'unix' needs a socket path",
    "Set STATSD_UNIX_SOCKET to the daemon's socket path, or use 'udp'.", "E014",
)


# Parsers: the value as written -> the value to use; ValueError/TypeError say why not.
# Numbers may be given as strings (``os.environ.get("STATSD_PORT", 8125)``).


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not {'an integer' if kind is int else 'a number'}")
    if kind is int and not isinstance(value, int):
        raise TypeError("not an integer")
    if not isinstance(value, (int, float)):
        raise TypeError("not a number")
    return kind(value)


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = _number(value, int)
        if not low <= number <= high:
            raise ValueError(f"outside {low}-{high}")
        return number

    return parse


def _number_in(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = _number(value, float)
        if not low <= number <= high:
            raise ValueError(f"outside {low:g}-{high:g}")
        return number

    return parse


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not True or False")
    return value


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("not a non-empty string")
    return value


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("not a string or None")
    return value or None


def _optional_http_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("not a string or None")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    return value


def _one_of(choices: tuple) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value not in choices:
            raise ValueError("unknown value")
        return value

    return parse


def _hooks(value: Any) -> frozenset[str]:
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError("not a list")
    unknown = [name for name in value if name not in HOOKS]
    if unknown:
        raise ValueError(f"unknown hook {', '.join(map(repr, unknown))}")
    return frozenset(value)


def _optional_views(value: Any) -> frozenset[str] | None:
    return None if value is None else parse_views(value)


class _Setting(Generic[T]):
    """One STATSD_* setting: its default, read from Django's settings on each access,
    and how to check it (system check id, parser, hint)."""

    def __init__(
        self, name: str, default: T, check_id: str, parse: Callable[[Any], Any], hint: str
    ) -> None:
        self.name, self.default = name, default
        self.check_id, self.parse, self.hint = check_id, parse, hint

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, instance: object, owner: type | None = None) -> T:
        return StatsdSettings.get(self.name, self.default)


class StatsdSettings:
    """Typed, lazily read view of the STATSD_* settings.

        >>> from django_statsd_push.conf import settings as conf
        >>> conf.port                 # as written: 8125, or "8125" from the environment
        >>> conf.parsed("port")       # 8125, or SettingError naming STATSD_PORT
    """

    host: _Setting[str] = _Setting(
        "STATSD_HOST", "localhost", "E001", _host,
        "Set STATSD_HOST to a host name or IP address string, e.g. '127.0.0.1'.")
    port: _Setting[int | str] = _Setting(
        "STATSD_PORT", 8125, "E002", _int_in(1, 65535),
        "Set STATSD_PORT to an integer between 1 and 65535 (statsd listens on 8125).")
    prefix: _Setting[str | None] = _Setting(
        "STATSD_PREFIX", None, "E003", _optional_str,
        "Set STATSD_PREFIX to a string such as 'myapp', or None for no prefix.")
    maxudpsize: _Setting[int | str] = _Setting(
        "STATSD_MAXUDPSIZE", 512, "E004", _int_in(64, 65507),
        "Set STATSD_MAXUDPSIZE to an integer between 64 and 65507 bytes "
        "(512 is safe on any network, 1432 fits a 1500-byte MTU).")
    ipv6: _Setting[bool] = _Setting(
        "STATSD_IPV6", False, "E005", _bool, "Set STATSD_IPV6 to True or False.")
    client: _Setting[str] = _Setting(
        "STATSD_CLIENT", "udp", "E006", _one_of(CLIENTS),
        f"Set STATSD_CLIENT to one of {', '.join(map(repr, CLIENTS))}.")
    enabled: _Setting[bool] = _Setting(
        "STATSD_ENABLED", True, "E007", _bool, "Set STATSD_ENABLED to True or False.")
    sample_rate: _Setting[float | str] = _Setting(
        "STATSD_SAMPLE_RATE", 1.0, "E008", _number_in(0.0, 1.0),
        "Set STATSD_SAMPLE_RATE to a number between 0 and 1 (1 sends everything).")
    hooks: _Setting[Sequence[str]] = _Setting(
        "STATSD_HOOKS", (), "E009", _hooks,
        f"Set STATSD_HOOKS to a list drawn from {', '.join(map(repr, HOOKS))}.")
    tag_format: _Setting[str | None] = _Setting(
        "STATSD_TAG_FORMAT", None, "E010", _one_of(TAG_FORMATS),
        "Set STATSD_TAG_FORMAT to None (plain dotted names), 'dogstatsd' or 'graphite'.")
    dns_refresh: _Setting[float | str] = _Setting(
        "STATSD_DNS_REFRESH", 60.0, "E011", _number_in(0, 86400),
        "Set STATSD_DNS_REFRESH to a number of seconds between 0 (never refresh) and 86400.")
    unix_socket: _Setting[str | None] = _Setting(
        "STATSD_UNIX_SOCKET", None, "E012", _optional_str,
        "Set STATSD_UNIX_SOCKET to the path of the daemon's Unix socket.")
    export_migrations: _Setting[bool] = _Setting(
        "STATSD_EXPORT_MIGRATIONS", False, "E013", _bool,
        "Set STATSD_EXPORT_MIGRATIONS to True or False.")

    pytest_send: _Setting[bool] = _Setting(
        "STATSD_PYTEST_SEND", False, "E015", _bool,
        "Set STATSD_PYTEST_SEND to True (tests send real datagrams) or False (kept in "
        "the process under pytest).")

    exclude_paths: _Setting[Sequence[Any]] = _Setting(
        "STATSD_EXCLUDE_PATHS", (), "E016", parse_paths,
        "Set STATSD_EXCLUDE_PATHS to a list of path prefixes ('/static/') and regular "
        "expressions (re.compile(...) or a string starting with '^').")
    exclude_views: _Setting[Sequence[str]] = _Setting(
        "STATSD_EXCLUDE_VIEWS", (), "E017", parse_views,
        "Set STATSD_EXCLUDE_VIEWS to a list of URL names ('polls:detail') or dotted "
        "view paths ('shop.views.health').")
    events_url: _Setting[str | None] = _Setting(
        "STATSD_EVENTS_URL", None, "E020", _optional_http_url,
        "Set STATSD_EVENTS_URL to the events API's URL, e.g. 'http://127.0.0.1:8080/events/', or None.")

    browser_views: _Setting[Sequence[str] | None] = _Setting(
        "STATSD_BROWSER_VIEWS", None, "E018", _optional_views,
        "Set STATSD_BROWSER_VIEWS to None (every named URL of the URLconf) or a list of "
        "URL names ('polls:detail') whose pages may send browser timings.")
    browser_rate: _Setting[int | str] = _Setting(
        "STATSD_BROWSER_RATE", 30, "E019", _int_in(1, 100_000),
        "Set STATSD_BROWSER_RATE to the browser-timing beacons accepted per minute from "
        "one client address (an integer, 1-100000).")

    @staticmethod
    def get(name: str, default: Any) -> Any:
        from django.conf import settings

        # Outside a configured Django project (a script, a worker without settings)
        # the defaults apply instead of ImproperlyConfigured on the first metric.
        if not settings.configured:
            return default
        return getattr(settings, name, default)

    @classmethod
    def definitions(cls) -> list[_Setting[Any]]:
        """Every setting, in the order declared above (the system checks walk this)."""
        return [value for value in vars(cls).values() if isinstance(value, _Setting)]

    def parsed(self, attribute: str) -> Any:
        """The setting checked and converted; :class:`SettingError` if it cannot be used."""
        setting: _Setting[Any] = vars(StatsdSettings)[attribute]
        value = setting.__get__(self)
        try:
            return setting.parse(value)
        except (TypeError, ValueError) as exc:
            raise SettingError(
                setting.name, value, str(exc), setting.hint, setting.check_id
            ) from None


settings = StatsdSettings()
