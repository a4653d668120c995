"""Daemon side: statsd protocol, aggregation, Carbon sink. Never imported by the Django side."""
