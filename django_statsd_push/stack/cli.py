"""``statsd-push stack``: the whole pipeline on 127.0.0.1 with one command, no Docker.

carbon-cache -> statsd daemon (+ Prometheus sink) -> render API -> example app, started
in that order (each one's consumer is ready before it sends) and stopped in reverse
(the app stops sending, the daemon flushes once more on its SIGTERM, carbon writes
its cache out before its own), so Ctrl-C loses no point that was sent.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django_statsd_push.stack import health
from django_statsd_push.stack.health import HOST, Port
from django_statsd_push.stack.processes import ChildDied, ChildProcess, Supervisor, tail
from django_statsd_push.stack.status import StatusPrinter

SOURCE_ROOT = Path(__file__).resolve().parents[2]

PORT_FLAGS: list[tuple[str, str, int, bool]] = [
    # (dest, what, default, also UDP)
    ("statsd_port", "statsd daemon", 8125, True),
    ("mgmt_port", "statsd daemon management", 8126, False),
    ("carbon_port", "carbon-cache line receiver", 2003, False),
    ("carbon_pickle_port", "carbon-cache pickle receiver", 2004, False),
    ("carbon_query_port", "carbon-cache query (cache) port", 7002, False),
    ("render_port", "render API and dashboard", 8080, False),
    ("prometheus_port", "Prometheus bridge /metrics", 9102, False),
    ("app_port", "example Django app", 8000, False),
]


class Stop(Exception):
    """Raised from the SIGTERM/SIGHUP handler so they take the same path as Ctrl-C."""


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n")[0].replace("``", "")
    p = argparse.ArgumentParser(prog="statsd-push stack", description=summary)
    p.add_argument("--dir", type=Path, default=Path(".stack"),
                   help="state directory: whisper files, carbon config, logs, app DB (default .stack)")
    for dest, what, default, _ in PORT_FLAGS:
        p.add_argument(flag(dest), dest=dest, type=int, default=default, metavar="PORT",
                       help=f"{what} (default {default}; 0 = any free port)")
    p.add_argument("--flush-interval", type=int, default=10000, metavar="MS",
                   help="daemon flush interval in ms; also the finest whisper step (default 10000)")
    p.add_argument("--app-server", choices=("gunicorn", "uvicorn"), default="gunicorn",
                   help="serve the example app with gunicorn (WSGI) or uvicorn (ASGI)")
    p.add_argument("--workers", type=int, default=2, help="app server worker processes (default 2)")
    p.add_argument("--examples", type=Path, default=SOURCE_ROOT / "examples",
                   help="the example project directory (default: examples/ of the source checkout)")
    p.add_argument("--mapping", type=Path, default=SOURCE_ROOT / "graphite" / "statsd-mapping.yml",
                   help="Prometheus mapping file for the bridge sink")
    p.add_argument("--demo-traffic", action="store_true", help="also drive demo traffic at the app")
    p.add_argument("--traffic-rate", type=float, default=20.0, help="demo requests/s (default 20)")
    p.add_argument("--ready-timeout", type=float, default=60.0, metavar="S",
                   help="seconds each part may take to become ready (default 60)")
    p.add_argument("--status-interval", type=float, default=1.0, metavar="S",
                   help="seconds between status updates (default 1)")
    return p


def resolve_ports(args: argparse.Namespace) -> list[Port]:
    """Ports as the user gave them, with 0 replaced by a free port (tests, parallel stacks)."""
    taken = {getattr(args, dest) for dest, *_ in PORT_FLAGS}
    ports = []
    for dest, what, _, udp in PORT_FLAGS:
        if getattr(args, dest) == 0:
            chosen = health.free_port(HOST, udp=udp, avoid=taken)
            taken.add(chosen)
            setattr(args, dest, chosen)
        ports.append(Port(what, getattr(args, dest), flag(dest), udp))
    return ports


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


def start_stack(args: argparse.Namespace, sup: Supervisor, say: Callable[[str], None]) -> dict[str, str]:
    """Start every part in dependency order, each ready before the next; return the URLs."""
    from django_statsd_push.stack.carbon import CarbonService

    stack_dir: Path = args.dir.resolve()
    deadline = args.ready_timeout

    def ready(what: str, check: Callable[[], bool], child: ChildProcess) -> None:
        try:
            waited = health.wait_until(check, what, deadline, alive=lambda: child.returncode() is None)
        except health.NotReady as e:
            raise health.NotReady(str(e), child.log_tail()) from None
        say(f"  {what} ready ({waited:.1f}s)")

    carbon = CarbonService(
        stack_dir / "carbon",
        line_port=args.carbon_port,
        pickle_port=args.carbon_pickle_port,
        query_port=args.carbon_query_port,
        tagdb_url=f"http://{HOST}:{args.render_port}",  # carbon posts new tagged series to the render API
        step_seconds=max(1, args.flush_interval // 1000),
        ready_timeout=deadline,
    )
    sup.start(carbon)
    say(f"  carbon-cache ready (line port {args.carbon_port})")

    config = stack_dir / "statsd.toml"
    config.write_text(DAEMON_CONFIG)
    daemon = python_child("daemon", [
        "-m", "django_statsd_push.cli", "serve", "--config", str(config),
        "--host", HOST, "--port", str(args.statsd_port), "--mgmt-port", str(args.mgmt_port),
        "--graphite-host", HOST, "--graphite-port", str(args.carbon_port),
        "--flush-interval", str(args.flush_interval),
        "--prometheus-listen", f"{HOST}:{args.prometheus_port}", "--mapping", str(args.mapping),
        "--events-url", f"http://{HOST}:{args.render_port}/events/",  # DogStatsD events -> Graphite events
    ], stack_dir)
    sup.start(daemon)
    ready("statsd daemon", lambda: health.mgmt_healthy(HOST, args.mgmt_port), daemon)
    ready("Prometheus bridge",
          lambda: health.http_status(HOST, args.prometheus_port, "/-/ready") == 200, daemon)

    render = python_child("render", [
        "-m", "django_statsd_push.cli", "render",
        "--whisper-root", str(carbon.whisper_dir), "--host", HOST, "--port", str(args.render_port),
        # Points carbon holds but has not written yet show up at once too.
        "--carbonlink", f"{HOST}:{args.carbon_query_port}",
    ], stack_dir)
    sup.start(render)
    ready("render API", lambda: health.http_status(HOST, args.render_port, "/version") == 200, render)

    env = app_env(args, stack_dir)
    prepare_app(args, stack_dir, env)
    app = python_child("app", app_command(args), stack_dir, env=env, cwd=args.examples)
    sup.start(app)
    ready(f"example app ({args.app_server})",
          lambda: health.http_status(HOST, args.app_port, "/healthz") == 200, app)

    return {
        "example app": f"http://{HOST}:{args.app_port}/",
        "dashboard": f"http://{HOST}:{args.render_port}/",
        "render API": f"http://{HOST}:{args.render_port}/render?target=stats.timers.request.*.*.count&format=json",
        "Prometheus /metrics": f"http://{HOST}:{args.prometheus_port}/metrics",
        "statsd (UDP/TCP)": f"{HOST}:{args.statsd_port}",
        "statsd mgmt": f"{HOST}:{args.mgmt_port}  (echo stats | nc {HOST} {args.mgmt_port})",
        "carbon line receiver": f"{HOST}:{args.carbon_port}",
        "whisper files": str(carbon.whisper_dir),
        "logs": str(stack_dir / "logs"),
    }


def watch(args: argparse.Namespace, sup: Supervisor, status: StatusPrinter) -> None:
    """Until Ctrl-C/SIGTERM (Stop, KeyboardInterrupt) or a child's death (ChildDied)."""
    while True:
        sup.check()
        try:
            stats = health.mgmt_stats(HOST, args.mgmt_port)
        except OSError:
            stats = None
        status.update(stats)
        time.sleep(args.status_interval)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout

    def say(message: str) -> None:
        status.clear()
        print(message, file=out, flush=True)

    status = StatusPrinter(out)
    errors = health.check_ports(resolve_ports(args))
    if args.flush_interval % 1000 or 60000 % args.flush_interval:
        # The finest Whisper step follows it, and the 1-minute archive must be a multiple.
        errors.append(f"--flush-interval {args.flush_interval}: use whole seconds that divide a minute "
                      "(1000, 2000, 5000, 10000, 30000, ...)")
    for path, what in ((args.examples / "manage.py", "--examples"), (args.mapping, "--mapping")):
        if not path.exists():
            errors.append(f"{path} not found; run from a source checkout or pass {what}")
    if errors:
        for error in errors:
            print(f"statsd-push stack: {error}", file=sys.stderr)
        return 2

    def on_stop_signal(signum, frame):
        raise Stop()

    # SIGHUP too: a closed terminal then stops the stack in order instead of killing it.
    previous = {sig: signal.signal(sig, on_stop_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    sup = Supervisor()
    traffic = None
    code = 0
    try:
        say(f"starting the stack in {args.dir.resolve()}")
        urls = start_stack(args, sup, say)
        width = max(map(len, urls))
        say("\n".join(f"  {name:<{width}}  {url}" for name, url in urls.items()))
        if args.demo_traffic:
            from django_statsd_push.stack.traffic import Traffic

            traffic = Traffic(urls["example app"], rate=args.traffic_rate, statsd_address=(HOST, args.statsd_port),
                              events_url=f"http://{HOST}:{args.render_port}/events/")
            traffic.start()
            say(f"  demo traffic: ~{args.traffic_rate:g} req/s (graphs fill within a minute)")
        say("Ctrl-C stops the stack")
        watch(args, sup, status)
    except (KeyboardInterrupt, Stop):
        say("stopping (app, then daemon, which flushes once more, then carbon)...")
    except ChildDied as died:
        say(f"statsd-push stack: {died}; last lines of its log:\n{died.service.log_tail()}")
        code = 1
    except health.NotReady as e:
        say(f"statsd-push stack: {e}" + (f"; last lines of its log:\n{e.log}" if e.log else ""))
        code = 1
    finally:
        # A second Ctrl-C while stopping must not abandon children half-stopped.
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            if traffic is not None:
                traffic.stop()
            sup.stop_all(report=say)
        finally:
            signal.signal(signal.SIGINT, interrupt)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return code


if __name__ == "__main__":
    sys.exit(main())
