"""``statsd-push``: one entry point for every daemon of the project.

Each subcommand lives in its own module with a ``main(argv)`` and is imported only
when chosen, so ``statsd-push render`` never imports twisted and the Django side
never imports any of it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("django_statsd_push.server.cli", "run the statsd daemon (aggregate, flush to Carbon)"),
    "bridge": ("django_statsd_push.bridge.cli", "run the statsd-to-Prometheus bridge"),
    "render": ("django_statsd_push.render.cli", "serve the Graphite-compatible render API"),
    "stack": ("django_statsd_push.stack.cli", "run the whole stack locally with the example app"),
    "demo-traffic": ("django_statsd_push.stack.traffic", "drive demo traffic at the example app"),
}


# What each command imports beyond the base install, and the extra that brings it.
# Checked before the command's module is imported: otherwise the first ImportError
# (numpy's, say) comes from deep inside and says nothing about extras.
EXTRA_OF: dict[str, str] = {
    "numpy": "server", "whisper": "server", "carbon": "server", "twisted": "server",
    "prometheus_client": "prometheus", "yaml": "prometheus",
}
NEEDS: dict[str, tuple[str, ...]] = {
    "serve": (),  # --prometheus-listen checks for the bridge's own needs when asked
    "bridge": ("prometheus_client", "yaml"),
    "render": ("numpy",),
    "stack": ("numpy", "whisper", "carbon", "twisted", "prometheus_client", "yaml"),
    "demo-traffic": (),
}


def missing_message(command: str, modules: list[str]) -> str:
    extras = list(dict.fromkeys(EXTRA_OF[m] for m in modules))
    names = ",".join(extras)
    return (f"statsd-push {command}: {', '.join(modules)} not installed; install the [{names}] "
            f"extra{'s' if len(extras) > 1 else ''}: pip install 'django-statsd-push[{names}]'")


def usage() -> str:
    lines = ["usage: statsd-push <command> [options]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


# Daemons whose process may end without tearing its objects down once they have
# stopped (flushed, closed, logged): see ``main``.
QUICK_EXIT = ("serve", "bridge")


def main(argv: list[str] | None = None) -> int:
    """Run a command; with ``argv`` None (the process's own command line) a daemon of
    ``QUICK_EXIT`` ends the process as soon as it has stopped, without freeing its
    tables one object at a time: at half a million series that took up to a second
    of the 5 s a SIGTERM may take. Called with ``argv`` (tests), it returns."""
    whole_process = argv is None
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
    missing = [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
    if missing:
        print(missing_message(name, missing), file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        code = int(module.main(rest) or 0)
    except ModuleNotFoundError as exc:  # one imported lazily that NEEDS does not list
        top = (exc.name or "").partition(".")[0]
        if top not in EXTRA_OF:
            raise
        print(missing_message(name, [top]), file=sys.stderr)
        return 2
    if whole_process and name in QUICK_EXIT:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
