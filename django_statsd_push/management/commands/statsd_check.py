"""``manage.py statsd_check``: send one test metric and say where it went.

For the "are my metrics going anywhere?" moment: prints the client kind, host, port,
the address the name resolved to and whether the send was accepted. UDP cannot tell
whether anyone listens; a refused TCP connection or an unresolvable host is reported
and exits 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_statsd_push import names
from django_statsd_push.client import statsd
from django_statsd_push.conf import settings as conf


def _address(transport: Any) -> str:
    resolver = getattr(transport, "resolver", None)
    if resolver is not None:
        if resolver.address is None:
            return "unresolved"
        host, port = resolver.address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = getattr(transport, "path", None)
    return path or "-"


class Command(BaseCommand):
    help = "Send one test metric (a statsd_check counter) and print where it went."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name", default=None,
            help="Metric name to send instead of statsd_check (STATSD_PREFIX still applies).",
        )

    def handle(self, *args: Any, name: str | None = None, **options: Any) -> None:
        state = statsd.state
        transport = state.transport
        rows = [
            ("enabled", str(state.enabled)),
            ("client", str(conf.client)),
            ("transport", type(transport).__name__),
            ("host", str(conf.host)),
            ("port", str(conf.port)),
            ("address", _address(transport)),
            ("prefix", state.prefix or "-"),
        ]
        before = transport.dropped
        with statsd.capture() as sent:
            statsd.incr(name or names.check())
        dropped = transport.dropped - before
        line = sent[0].line if sent else "(nothing: metrics disabled)"
        rows.append(("metric", f"{'dropped' if dropped else 'sent'}: {line}"))
        for key, value in rows:
            self.stdout.write(f"{key + ':':<11}{value}")
        if not state.enabled:
            raise CommandError("metrics are disabled (STATSD_ENABLED or a bad STATSD_* "
                               "setting: run manage.py check)", returncode=1)
        if dropped:
            raise CommandError("the metric could not be sent (see address above)", returncode=1)
