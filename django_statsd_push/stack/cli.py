"""``statsd-push stack``: the whole pipeline on 127.0.0.1 with one command, no Docker.

carbon-cache -> statsd daemon (+ Prometheus sink) -> render API -> example app, started
in that order (each one's consumer is ready before it sends) and stopped in reverse
(the app stops sending, the daemon flushes once more on its SIGTERM, carbon writes
its cache out before its own), so Ctrl-C loses no point that was sent.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django_statsd_push.stack import health
from django_statsd_push.stack.health import HOST, Port
from django_statsd_push.stack.processes import ChildDied, Supervisor
from django_statsd_push.stack.services import (SOURCE_ROOT, node_host, readiness, start_app, start_carbon,
                                               start_daemon, start_render)
from django_statsd_push.stack.status import StatusPrinter

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
    p.add_argument("--nodes", type=int, default=1, metavar="N",
                   help="N > 1: a cluster on loopback, each node (carbon-cache, daemon, render API) on 127.0.0.2, "
                        ".3, ...; etsy statsd's proxy.js, carbon-relay and a federating render API on 127.0.0.1 "
                        "(default 1)")
    p.add_argument("--statsd-proxy", type=Path, default=None, metavar="PROXY_JS",
                   help="etsy statsd's proxy.js for --nodes > 1 (default: found under $ETSY_STATSD_DIR or "
                        "~/.cache/django-statsd-push/etsy-statsd, where `npm install statsd@0.9.0` puts it)")
    p.add_argument("--cluster-timeout", type=float, default=3.0, metavar="S",
                   help="seconds the front render API waits for the nodes' render APIs (default 3)")
    return p


def resolve_ports(args: argparse.Namespace, holds: contextlib.ExitStack) -> list[Port]:
    """Ports as the user gave them, with 0 replaced by a free port (tests, parallel stacks).

    Each port picked is held (``health.PortHold``) until ``holds`` closes, so nothing
    else on the machine is handed it before the child that is told it binds it.
    """
    taken = {getattr(args, dest) for dest, *_ in PORT_FLAGS}
    ports = []
    for dest, what, _, udp in PORT_FLAGS:
        if getattr(args, dest) == 0:
            chosen = holds.enter_context(health.PortHold(HOST, udp=udp, avoid=taken)).port
            taken.add(chosen)
            setattr(args, dest, chosen)
        ports.append(Port(what, getattr(args, dest), flag(dest), udp))
    return ports


def start_stack(args: argparse.Namespace, sup: Supervisor, say: Callable[[str], None]) -> dict[str, str]:
    """Start every part in dependency order, each ready before the next; return the URLs."""
    if args.nodes > 1:
        from django_statsd_push.stack.cluster import start_cluster

        return start_cluster(args, sup, say)
    stack_dir: Path = args.dir.resolve()
    ready = readiness(args, say)
    carbon = start_carbon(args, sup, stack_dir / "carbon")
    say(f"  carbon-cache ready (line port {args.carbon_port})")
    start_daemon(args, sup, ready, stack_dir)
    # Points carbon holds but has not written yet show up at once too.
    start_render(args, sup, ready, stack_dir, carbon.whisper_dir, ["--carbonlink", f"{HOST}:{args.carbon_query_port}"])
    start_app(args, sup, ready, stack_dir)
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


def daemon_stats(args: argparse.Namespace) -> dict[str, str] | None:
    """The daemon's mgmt ``stats``; with several nodes, each daemon's numbers summed."""
    hosts = [HOST] if args.nodes == 1 else [node_host(i) for i in range(args.nodes)]
    total: dict[str, float] = {}
    for host in hosts:
        try:
            stats = health.mgmt_stats(host, args.mgmt_port)
        except OSError:
            return None
        for key, value in stats.items():
            try:
                total[key] = total.get(key, 0.0) + float(value)
            except ValueError:
                continue
    return {key: f"{value:g}" for key, value in total.items()}


def watch(args: argparse.Namespace, sup: Supervisor, status: StatusPrinter) -> None:
    """Until Ctrl-C/SIGTERM (Stop, KeyboardInterrupt) or a child's death (ChildDied)."""
    while True:
        sup.check()
        status.update(daemon_stats(args))
        time.sleep(args.status_interval)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.ExitStack() as holds:  # the ports picked for 0 stay held until the stack has stopped
        return run(args, holds)


def run(args: argparse.Namespace, holds: contextlib.ExitStack) -> int:
    out = sys.stdout

    def say(message: str) -> None:
        status.clear()
        print(message, file=out, flush=True)

    status = StatusPrinter(out)
    errors = health.check_ports(resolve_ports(args, holds))
    if args.flush_interval % 1000 or 60000 % args.flush_interval:
        # The finest Whisper step follows it, and the 1-minute archive must be a multiple.
        errors.append(f"--flush-interval {args.flush_interval}: use whole seconds that divide a minute "
                      "(1000, 2000, 5000, 10000, 30000, ...)")
    for path, what in ((args.examples / "manage.py", "--examples"), (args.mapping, "--mapping")):
        if not path.exists():
            errors.append(f"{path} not found; run from a source checkout or pass {what}")
    if not 1 <= args.nodes <= 50:
        errors.append(f"--nodes {args.nodes}: use 1 to 50")
    elif args.nodes > 1:
        from django_statsd_push.stack.cluster import check_cluster

        errors.extend(check_cluster(args))
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
