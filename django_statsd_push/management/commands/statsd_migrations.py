"""``manage.py statsd_migrations``: send ``migrations.<alias>.applied|unapplied`` now.

For deploy scripts: run it after ``migrate`` (and in a health job) so the dashboard
shows each database's migration state. Exit status 0 even when a database cannot be
read (it sends -1 and says so): a metrics step must not fail a deploy. ``--check``
makes unapplied or unreadable migrations exit 1, for scripts that want to stop.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from django_statsd_push.hooks import migration_gauges


class Command(BaseCommand):
    help = "Send migrations.<alias>.applied|unapplied gauges for every database."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", action="append", dest="databases", metavar="ALIAS",
            help="Only this database alias (repeatable). Default: every alias.",
        )
        parser.add_argument(
            "--check", action="store_true",
            help="Exit 1 when a database has unapplied migrations or cannot be read.",
        )

    def handle(self, *args: Any, databases: list[str] | None = None, check: bool = False,
               **options: Any) -> None:
        unknown = [alias for alias in databases or () if alias not in connections]
        if unknown:
            raise CommandError(
                f"unknown database alias {', '.join(unknown)}; "
                f"DATABASES has {', '.join(connections)}"
            )
        states = migration_gauges.export(databases)
        for state in states:
            if state.error:
                self.stdout.write(f"{state.alias}: unreadable ({state.error}), sent -1")
            else:
                self.stdout.write(
                    f"{state.alias}: {state.applied} applied, {state.unapplied} unapplied"
                )
        if not states:
            self.stdout.write("no database to report (dummy backend only)")
        if check and any(s.error or s.unapplied for s in states):
            raise CommandError("unapplied or unreadable migrations", returncode=1)
