"""``statsd-push stack --nodes N``: the documented way past one machine, run on one machine.

Each node gets its own loopback address (127.0.0.2, .3, ...) and on it the same ports
a one-node stack uses: a carbon-cache with its own Whisper root, a ``statsd-push serve``
and a render API. In front, on 127.0.0.1: etsy statsd's own ``proxy.js`` (the app sends
there; it hashes each metric name to one daemon and health-checks them), the real
``carbon-relay`` with consistent hashing (the daemons flush there; it puts each series on
one cache), and a render API federating the nodes' (``--cluster-server``), which the
dashboard uses. Every node's render API reads all caches through carbonlink (the relay's
ring), so points not written yet show up too.

Start order: caches, relay, daemons, node render APIs, front, proxy, app; the supervisor
stops in reverse, so the daemons' last flush goes through the relay into the caches
before those write out and stop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from django_statsd_push.stack import health
from django_statsd_push.stack.health import HOST
from django_statsd_push.stack.services import (node_host, readiness, start_app, start_carbon, start_daemon,
                                               start_render)
from django_statsd_push.stack.processes import ChildProcess, Supervisor
from django_statsd_push.stack.relay import CarbonRelay, carbonlink_hosts

ETSY_DIR_ENV = "ETSY_STATSD_DIR"


def find_proxy(args: argparse.Namespace) -> Path | None:
    if args.statsd_proxy:
        return args.statsd_proxy
    base = os.environ.get(ETSY_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "django-statsd-push", "etsy-statsd")
    found = Path(base) / "node_modules" / "statsd" / "proxy.js"
    return found if found.exists() else None


def check_cluster(args: argparse.Namespace) -> list[str]:
    """What keeps a cluster from starting, each as one message with its fix."""
    errors = []
    proxy = find_proxy(args)
    install = ("`npm install statsd@0.9.0 hashring@3.2.0 --prefix ~/.cache/django-statsd-push/etsy-statsd`"
               ", or pass --statsd-proxy")
    if proxy is None or not proxy.exists():
        errors.append(f"--nodes needs etsy statsd's proxy.js: {install}")
    elif not any((d / "hashring").is_dir() for d in (proxy.parent / "node_modules", proxy.parent.parent)):
        errors.append(f"proxy.js needs its optional dependency hashring: {install}")
    if shutil.which("node") is None:
        errors.append("--nodes needs node (Node.js) to run etsy statsd's proxy.js")
    for i in range(args.nodes):
        try:
            health.PortHold(node_host(i)).close()
        except OSError as e:
            errors.append(f"cannot bind {node_host(i)} (loopback address of node {i + 1}): {e}")
    return errors


def proxy_config(args: argparse.Namespace, hosts: list[str]) -> dict:
    """proxy.js's config: it listens on ``address`` (not ``host``, which it ignores) and
    checks each node's health on its management port every second."""
    return {
        "nodes": [{"host": h, "port": args.statsd_port, "adminport": args.mgmt_port} for h in hosts],
        "server": "./servers/udp",
        "address": HOST,
        "port": args.statsd_port,
        "mgmt_address": HOST,
        "mgmt_port": args.mgmt_port,
        "forkCount": 0,
        "checkInterval": 1000,
        "cacheSize": 10000,
    }


def start_cluster(args: argparse.Namespace, sup: Supervisor, say: Callable[[str], None]) -> dict[str, str]:
    from django_statsd_push.stack.carbon import CarbonService

    stack_dir: Path = args.dir.resolve()
    ready = readiness(args, say)
    hosts = [node_host(i) for i in range(args.nodes)]
    caches = []
    for i, host in enumerate(hosts):
        caches.append(start_carbon(args, sup, stack_dir / f"node{i + 1}" / "carbon", host, f"carbon-cache-{i + 1}"))
        say(f"  carbon-cache {i + 1} ready ({host}, line port {args.carbon_port})")

    relay = CarbonRelay(stack_dir / "relay", [(h, args.carbon_pickle_port) for h in hosts], host=HOST,
                        line_port=args.carbon_port, pickle_port=args.carbon_pickle_port)
    sup.start(CarbonService(stack_dir / "relay", carbon=relay, name="carbon-relay", ready_timeout=args.ready_timeout))
    say(f"  carbon-relay ready ({HOST}:{args.carbon_port}, consistent hashing over {len(hosts)} caches)")

    for i, host in enumerate(hosts):
        start_daemon(args, sup, ready, stack_dir, host=host, name=f"daemon-{i + 1}",
                     graphite=(HOST, args.carbon_port))

    link = carbonlink_hosts([(h, args.carbon_query_port) for h in hosts])
    for i, (host, cache) in enumerate(zip(hosts, caches)):
        start_render(args, sup, ready, stack_dir, cache.whisper_dir, ["--carbonlink", link],
                     host=host, name=f"render-{i + 1}")
    front_root = stack_dir / "front" / "whisper"  # the front holds no series of its own
    front_root.mkdir(parents=True, exist_ok=True)
    peers = [arg for h in hosts for arg in ("--cluster-server", f"{h}:{args.render_port}")]
    start_render(args, sup, ready, stack_dir, front_root, [*peers, "--cluster-timeout", str(args.cluster_timeout)],
                 name="render")

    config = stack_dir / "proxy-config.js"
    config.write_text(json.dumps(proxy_config(args, hosts), indent=2) + "\n")
    proxy_js = find_proxy(args)
    proxy = ChildProcess("statsd-proxy", [shutil.which("node") or "node", str(proxy_js), str(config)],
                         stack_dir / "logs" / "statsd-proxy.log", cwd=proxy_js.parent)
    sup.start(proxy)
    ready(f"statsd proxy.js ({HOST}:{args.statsd_port})", lambda: health.mgmt_healthy(HOST, args.mgmt_port), proxy)

    start_app(args, sup, ready, stack_dir)
    urls = {
        "example app": f"http://{HOST}:{args.app_port}/",
        "dashboard": f"http://{HOST}:{args.render_port}/  (federating {len(hosts)} nodes)",
        "render API": f"http://{HOST}:{args.render_port}/render?target=stats.timers.request.*.*.count&format=json",
        "cluster peers": f"http://{HOST}:{args.render_port}/cluster",
        "statsd proxy (UDP)": f"{HOST}:{args.statsd_port}",
        "carbon-relay": f"{HOST}:{args.carbon_port}",
    }
    for i, (host, cache) in enumerate(zip(hosts, caches)):
        urls[f"node {i + 1}"] = (f"{host}: statsd {args.statsd_port}, render http://{host}:{args.render_port}/, "
                                 f"/metrics http://{host}:{args.prometheus_port}/metrics, whisper {cache.whisper_dir}")
    urls["logs"] = str(stack_dir / "logs")
    return urls
