"""Background DNS for the network transports: a request never waits on a lookup.

Why a thread: a request must never wait for DNS, and a statsd host behind a changing
record (a Kubernetes service, a failover) must be followed without a restart.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("django_statsd_push")

# How long the first use waits for the first DNS answer before carrying on without an
# address (metrics are then dropped until the background lookup succeeds).
FIRST_LOOKUP_WAIT = 0.5


class Resolver:
    """Knows the daemon's address; looks it up again every ``refresh`` seconds.

    An IP address is used as it is, at once, without a thread. A failed lookup keeps
    the last good address. ``on_change(family, address)`` is
    called from the lookup thread when the answer changes. ``first_answer`` is set once
    the first lookup has finished, whatever its outcome (tests await it).

        >>> resolver = Resolver("statsd.internal", 8125, socket.AF_INET,
        ...                     socket.SOCK_DGRAM, 60.0, on_change=print)
        >>> resolver.start()      # waits at most FIRST_LOOKUP_WAIT for the first answer
    """

    def __init__(
        self,
        host: str,
        port: int,
        family: socket.AddressFamily,
        socktype: socket.SocketKind,
        refresh: float,
        on_change: Callable[[int, Any], None],
        lookup: Callable[..., list] = socket.getaddrinfo,
    ) -> None:
        self.host, self.port, self.family, self.socktype = host, port, family, socktype
        self.refresh = refresh
        self.address: Any = None
        self.failures = 0
        self.first_answer = threading.Event()
        self._on_change = on_change
        self._lookup = lookup
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float = FIRST_LOOKUP_WAIT) -> None:
        """Look up now (an IP address) or in the background thread (a name)."""
        if self.is_address():
            # Nothing to wait for or to follow: no thread, and no metric of the first
            # request is dropped for want of an address, however loaded the machine.
            try:
                self.resolve()
            finally:
                self.first_answer.set()
            return
        self._thread = threading.Thread(
            target=self._run, name="django-statsd-push-dns", daemon=True
        )
        self._thread.start()
        self.first_answer.wait(wait)

    def _run(self) -> None:
        try:
            self.resolve()
        finally:
            self.first_answer.set()
        while self.refresh > 0 and not self._stop.wait(self.refresh):
            self.resolve()

    def is_address(self) -> bool:
        """Whether ``host`` is an IP address of the family (no DNS involved)."""
        try:
            socket.inet_pton(self.family, self.host)
        except (OSError, TypeError, ValueError):
            return False
        return True

    def resolve(self) -> bool:
        """One lookup now; True when it answered. Called by the thread (and tests)."""
        try:
            family, _, _, _, address = self._lookup(
                self.host, self.port, self.family, self.socktype
            )[0]
        except (OSError, UnicodeError, IndexError) as exc:
            self.failures += 1
            logger.warning(
                "statsd: cannot resolve %s:%s (%s); keeping %s",
                self.host, self.port, exc, self.address,
            )
            return False
        if address != self.address:
            try:
                self._on_change(family, address)
            except OSError as exc:
                self.failures += 1
                logger.warning("statsd: cannot use %s (%s)", address, exc)
                return False
            self.address = address
        return True

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A lookup in progress cannot be interrupted; the thread is a daemon.
            thread.join(timeout=0.2)
