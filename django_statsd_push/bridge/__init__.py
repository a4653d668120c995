"""The statsd-to-Prometheus bridge. Never imported by the Django side."""
