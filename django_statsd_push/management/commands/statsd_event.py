"""``manage.py statsd_event "deploy v1.4" --tags deploy,web``: record a deploy marker.

Posts one event to ``STATSD_EVENTS_URL`` (graphite's events API); dashboards draw it
as a vertical line. Exits 0 even when the event could not be recorded (a warning
goes to stderr): a deploy must not fail because the metrics server is down.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_statsd_push.conf import settings as conf
from django_statsd_push.events import DEFAULT_TIMEOUT, send_event, split_tags


class Command(BaseCommand):
    help = "Record an event (e.g. a deploy) in the events API at STATSD_EVENTS_URL."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", help='The event\'s headline, e.g. "deploy v1.4".')
        parser.add_argument("--tags", default="", help="Tags, comma- or space-separated (e.g. deploy,web).")
        parser.add_argument("--data", default="", help="Free text stored with the event.")
        parser.add_argument("--when", type=float, default=None, help="Epoch seconds (default: now).")
        parser.add_argument("--url", default=None, help="Events URL (default: STATSD_EVENTS_URL).")
        parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                            help="Seconds to wait for the server (default %(default)s).")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or conf.events_url
        tags = split_tags(options["tags"])
        if send_event(options["what"], tags, options["data"], options["when"], url, options["timeout"]):
            self.stdout.write(f"event {options['what']!r} (tags: {' '.join(tags) or '-'}) recorded at {url}")
        else:
            self.stderr.write(f"warning: event {options['what']!r} not recorded at {url or '(STATSD_EVENTS_URL unset)'}"
                              " (see the log); exiting 0 so the deploy goes on")
