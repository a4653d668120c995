"""How ``statsd-push stack`` starts each of its parts (shared by the one-node stack in
``stack/cli.py`` and the ``--nodes N`` cluster in ``stack/cluster.py``): the child
processes' environment and command lines, and ``start_*`` functions that start one part
under the supervisor and wait until it is ready."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from django_statsd_push.stack import health
from django_statsd_push.stack.health import HOST
from django_statsd_push.stack.processes import ChildProcess, Supervisor, tail

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """The launcher's environment, with this package importable from any working directory
    (a source checkout run without ``pip install -e`` works too)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH")) if p)
    return env


def python_child(name: str, args: list[str], stack_dir: Path, env: dict[str, str] | None = None,
                 **kw) -> ChildProcess:
    """Children run this interpreter (the venv's), not whatever ``statsd-push`` is on PATH."""
    return ChildProcess(name, [sys.executable, *args], stack_dir / "logs" / f"{name}.log",
                        env=env or child_env(), **kw)


# p90 and p99 for the latency panels (etsy's default is 90 alone). deleteIdleStats:
# a view with no requests in a flush is a gap in the graphs rather than a 0.
DAEMON_CONFIG = """\
# Written by `statsd-push stack` on every start; flags given by the launcher override it.
percentThreshold = [90, 99]
deleteIdleStats = true
"""


def app_env(args: argparse.Namespace, stack_dir: Path) -> dict[str, str]:
    return child_env(
        DJANGO_SETTINGS_MODULE="exampleproject.settings",  # not one left in the caller's shell
        STATSD_HOST=HOST,
        STATSD_PORT=str(args.statsd_port),
        STATSD_EVENTS_URL=f"http://{HOST}:{args.render_port}/events/",
        EXAMPLE_DB=str(stack_dir / "app" / "db.sqlite3"),
        EXAMPLE_DEBUG="0",
    )


def prepare_app(args: argparse.Namespace, stack_dir: Path, env: dict[str, str]) -> None:
    """migrate + seed_polls, each to completion, output in logs/app-setup.log."""
    (stack_dir / "app").mkdir(parents=True, exist_ok=True)
    log_path = stack_dir / "logs" / "app-setup.log"
    for command in (["migrate", "--noinput"], ["seed_polls"]):
        with log_path.open("ab") as log:
            result = subprocess.run(
                [sys.executable, str(args.examples / "manage.py"), *command],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=args.examples, timeout=args.ready_timeout,
            )
        if result.returncode:
            raise health.NotReady(
                f"example app: `manage.py {' '.join(command)}` failed with status {result.returncode} "
                f"(see {log_path})", tail(log_path, 20))


def app_command(args: argparse.Namespace) -> list[str]:
    bind = f"{HOST}:{args.app_port}"
    if args.app_server == "uvicorn":
        return ["-m", "uvicorn", "--host", HOST, "--port", str(args.app_port), "--app-dir", str(args.examples),
                "--workers", str(args.workers), "--no-access-log", "exampleproject.asgi:application"]
    return ["-m", "gunicorn", "--bind", bind, "--workers", str(args.workers), "--chdir", str(args.examples),
            "--graceful-timeout", "5", "exampleproject.wsgi:application"]


Ready = Callable[[str, Callable[[], bool], ChildProcess], None]


def readiness(args: argparse.Namespace, say: Callable[[str], None]) -> Ready:
    """``ready(what, check, child)``: wait for check, fail early if the child exits."""
    def ready(what: str, check: Callable[[], bool], child: ChildProcess) -> None:
        try:
            waited = health.wait_until(check, what, args.ready_timeout, alive=lambda: child.returncode() is None)
        except health.NotReady as e:
            raise health.NotReady(str(e), child.log_tail()) from None
        say(f"  {what} ready ({waited:.1f}s)")
    return ready


def start_carbon(args: argparse.Namespace, sup: Supervisor, root: Path, host: str = HOST, name: str = "carbon-cache"):
    from django_statsd_push.stack.carbon import CarbonService

    carbon = CarbonService(
        root, host=host, name=name,
        line_port=args.carbon_port,
        pickle_port=args.carbon_pickle_port,
        query_port=args.carbon_query_port,
        tagdb_url=f"http://{host}:{args.render_port}",  # carbon posts new tagged series to its render API
        step_seconds=max(1, args.flush_interval // 1000),
        ready_timeout=args.ready_timeout,
    )
    sup.start(carbon)
    return carbon


def start_daemon(args: argparse.Namespace, sup: Supervisor, ready: Ready, stack_dir: Path, *, host: str = HOST,
                 name: str = "daemon", graphite: tuple[str, int] | None = None) -> None:
    """``statsd-push serve`` (+ its Prometheus sink) on host, flushing to graphite (host:port)."""
    config = stack_dir / "statsd.toml"
    config.write_text(DAEMON_CONFIG)
    graphite_host, graphite_port = graphite or (HOST, args.carbon_port)
    daemon = python_child(name, [
        "-m", "django_statsd_push.cli", "serve", "--config", str(config),
        "--host", host, "--port", str(args.statsd_port), "--mgmt-host", host, "--mgmt-port", str(args.mgmt_port),
        "--graphite-host", graphite_host, "--graphite-port", str(graphite_port),
        "--flush-interval", str(args.flush_interval),
        "--prometheus-listen", f"{host}:{args.prometheus_port}", "--mapping", str(args.mapping),
        # DogStatsD events -> Graphite events, on the render API the dashboard reads (the front in a cluster)
        "--events-url", f"http://{HOST}:{args.render_port}/events/",
    ], stack_dir)
    sup.start(daemon)
    what = "statsd daemon" if name == "daemon" else f"statsd daemon {name} ({host})"
    ready(what, lambda: health.mgmt_healthy(host, args.mgmt_port), daemon)
    ready(f"Prometheus bridge{'' if name == 'daemon' else f' ({host})'}",
          lambda: health.http_status(host, args.prometheus_port, "/-/ready") == 200, daemon)


def start_render(args: argparse.Namespace, sup: Supervisor, ready: Ready, stack_dir: Path, whisper_root: Path,
                 extra: list[str], *, host: str = HOST, name: str = "render") -> None:
    render = python_child(name, [
        "-m", "django_statsd_push.cli", "render",
        "--whisper-root", str(whisper_root), "--host", host, "--port", str(args.render_port), *extra,
    ], stack_dir)
    sup.start(render)
    what = "render API" if name == "render" else f"render API {name} ({host})"
    ready(what, lambda: health.http_status(host, args.render_port, "/version") == 200, render)


def start_app(args: argparse.Namespace, sup: Supervisor, ready: Ready, stack_dir: Path) -> None:
    env = app_env(args, stack_dir)
    prepare_app(args, stack_dir, env)
    app = python_child("app", app_command(args), stack_dir, env=env, cwd=args.examples)
    sup.start(app)
    ready(f"example app ({args.app_server})",
          lambda: health.http_status(HOST, args.app_port, "/healthz") == 200, app)


def node_host(index: int) -> str:
    """Node ``index`` (from 0) of a multi-node stack lives on its own loopback address."""
    return f"127.0.0.{index + 2}"
