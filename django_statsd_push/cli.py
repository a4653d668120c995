"""``statsd-push``: one entry point for every daemon of the project.

Each subcommand lives in its own module with a ``main(argv)`` and is imported only
when chosen, so ``statsd-push render`` never imports twisted and the Django side
never imports any of it.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("django_statsd_push.server.cli", "run the statsd daemon (aggregate, flush to Carbon)"),
    "bridge": ("django_statsd_push.bridge.cli", "run the statsd-to-Prometheus bridge"),
    "render": ("django_statsd_push.render.cli", "serve the Graphite-compatible render API"),
    "stack": ("django_statsd_push.stack.cli", "run the whole stack locally with the example app"),
    "demo-traffic": ("django_statsd_push.stack.traffic", "drive demo traffic at the example app"),
}


def usage() -> str:
    lines = ["usage: statsd-push <command> [options]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name in ("-V", "--version"):
        from django_statsd_push import __version__

        print(__version__)
        return 0
    if name not in COMMANDS:
        print(f"statsd-push: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
