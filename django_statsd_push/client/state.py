"""The client's settings state: everything read from settings, swapped as one object.

Why one object: a request on another thread must never see half of a settings change
(a new prefix with the old heads, a closed socket with the new address). The client
builds a :class:`State` on its first metric and again after a ``STATSD_*`` setting
changes or the process forks; in between, settings are not read again.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django_statsd_push import names
from django_statsd_push.client.heads import Heads
from django_statsd_push.client.transports import NullTransport, Transport, make_transport
from django_statsd_push.conf import HOOKS, UNIX_NEEDS_SOCKET, SettingError
from django_statsd_push.conf import settings as conf
from django_statsd_push.exclusions import Exclusions

logger = logging.getLogger("django_statsd_push")


class State(NamedTuple):
    """What the client runs with until the settings change."""

    transport: Transport
    enabled: bool
    prefix: str | None
    tag_format: str | None
    sample_rate: float
    hooks: frozenset[str]
    heads: Heads  # per-name line templates for these settings (the fast path)
    error: SettingError | None = None  # the bad setting that turned metrics off
    exclusions: Exclusions | None = None  # requests that send nothing (None: no setting)

    @property
    def fast(self) -> bool:
        """Whether every line may take the fast path (rate 1, heads reused)."""
        return self.enabled and self.sample_rate == 1

    @property
    def rendered_prefix(self) -> str:
        """The prefix as it starts every name, dot included (``"app."``), or ``""``."""
        return names.render("_", self.prefix, None).name[:-1] if self.prefix else ""


NETWORK_CLIENTS = ("udp", "tcp", "unix")


def load_state(in_process: bool = False) -> State:
    """Read and check the settings; a bad one turns metrics off, named in the log.

    ``in_process`` (set by the pytest plugin): a network client is replaced by
    ``capture`` unless ``STATSD_PYTEST_SEND`` is True, so tests send nothing by default.
    """
    try:
        if not conf.parsed("enabled"):
            return disabled()
        prefix = conf.parsed("prefix")
        tag_format = conf.parsed("tag_format")
        sample_rate = conf.parsed("sample_rate")
        kind = conf.parsed("client")
        if in_process and kind in NETWORK_CLIENTS and not conf.parsed("pytest_send"):
            kind = "capture"
        exclusions = Exclusions(conf.parsed("exclude_paths"), conf.parsed("exclude_views"))
        transport = build_transport(kind)
    except SettingError as exc:
        # The system checks report the same message; at run time it only costs metrics.
        logger.error("statsd: metrics are disabled: %s %s", exc, exc.hint)
        return disabled(exc)
    # A malformed STATSD_HOOKS (check E009) must not cost the other metrics; the hooks
    # package logs the names it does not know when it installs the others.
    raw_hooks = conf.hooks
    valid_hooks = isinstance(raw_hooks, (list, tuple, set, frozenset))
    hooks = frozenset(name for name in raw_hooks if name in HOOKS) if valid_hooks else frozenset()
    return State(
        transport, True, prefix, tag_format, sample_rate, hooks, Heads(prefix, tag_format),
        None, exclusions or None,
    )


def build_transport(kind: str | None = None) -> Transport:
    """The transport the current settings ask for (``kind`` overrides ``STATSD_CLIENT``);
    :class:`~django_statsd_push.conf.SettingError` names a bad setting.

        >>> build_transport().send("orders:1|c")
    """
    kind = conf.parsed("client") if kind is None else kind
    if kind == "unix" and not conf.unix_socket:
        raise UNIX_NEEDS_SOCKET
    return make_transport(
        kind, conf.parsed("host"), conf.parsed("port"), conf.parsed("ipv6"),
        conf.parsed("maxudpsize"), conf.parsed("dns_refresh"), conf.parsed("unix_socket"),
    )


def disabled(error: SettingError | None = None) -> State:
    """The state that sends nothing (``STATSD_ENABLED = False`` or a bad setting)."""
    return State(NullTransport(), False, None, None, 1.0, frozenset(), Heads(None, None), error)
