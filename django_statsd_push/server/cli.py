"""``statsd-push serve``: flags over an optional TOML file, signals, exit codes.

Flags win over the file; SIGHUP re-reads the file and applies the flags again on
top, so a flag given at start stays in force. SIGTERM/SIGINT flush once more and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING

from django_statsd_push.server.config import ConfigError, Settings

if TYPE_CHECKING:
    from django_statsd_push.server.daemon import Daemon

log = logging.getLogger("django_statsd_push.server")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="statsd-push serve",
                                description="etsy-compatible statsd daemon flushing to Carbon (and Prometheus)")
    p.add_argument("--config", metavar="FILE", help="TOML file with etsy statsd's setting names")
    p.add_argument("--host", dest="address", help="address for UDP and TCP input (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="UDP and TCP port (default 8125; 0 picks one)")
    p.add_argument("--mgmt-host", dest="mgmt_address", help="management interface address (default 127.0.0.1)")
    p.add_argument("--mgmt-port", dest="mgmt_port", type=int, help="management interface port (default 8126)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="UDP receiver processes sharing the port (default 1: a thread in this process)")
    p.add_argument("--flush-interval", dest="flushInterval", type=float, metavar="MS",
                   help="flush interval in milliseconds (default 10000)")
    p.add_argument("--graphite-host", dest="graphiteHost", help="Carbon host (default 127.0.0.1)")
    p.add_argument("--graphite-port", dest="graphitePort", type=int, help="Carbon plaintext port (default 2003)")
    p.add_argument("--graphite-pickle-port", dest="graphitePicklePort", type=int,
                   help="Carbon pickle port (default 2004)")
    p.add_argument("--graphite-protocol", dest="graphiteProtocol", choices=["text", "pickle"],
                   help="protocol to Carbon (default text)")
    p.add_argument("--no-graphite", dest="graphite_enabled", action="store_false", default=None,
                   help="do not write to Carbon")
    p.add_argument("--percent-threshold", dest="percentThreshold", type=float, action="append",
                   metavar="PCT", help="timer percentile (repeatable; negative = top; default 90)")
    p.add_argument("--legacy-namespace", dest="legacyNamespace", choices=["true", "false"],
                   help="etsy graphite.legacyNamespace (default true)")
    p.add_argument("--delete-idle-stats", dest="deleteIdleStats", action="store_true", default=None,
                   help="stop reporting series idle for a flush")
    p.add_argument("--udp-receive-buffer", dest="udp_receive_buffer", type=int, metavar="BYTES",
                   help="SO_RCVBUF to ask for (default 8 MiB)")
    p.add_argument("--prometheus-listen", dest="prometheus_listen", metavar="HOST:PORT",
                   help="also serve Prometheus /metrics here (needs the bridge)")
    p.add_argument("--mapping", metavar="FILE", help="statsd -> Prometheus mapping file for --prometheus-listen")
    add_shared_arguments(p)
    p.add_argument("--log-level", dest="log_level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    return p


def _mode(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal file mode such as 660") from None


SHARED_KEYS = ("unix_dgram_path", "unix_stream_path", "unix_socket_mode", "unix_socket_group", "events_url")


def add_shared_arguments(p: argparse.ArgumentParser) -> None:
    """Flags ``serve`` and ``bridge`` both take, each stored under its TOML key (``SHARED_KEYS``)."""
    p.add_argument("--unix-dgram-path", dest="unix_dgram_path", metavar="PATH",
                   help="also read statsd datagrams on this Unix socket (DogStatsD's socket_path)")
    p.add_argument("--unix-stream-path", dest="unix_stream_path", metavar="PATH",
                   help="also read statsd on this Unix stream socket (newline-framed, or DogStatsD's length prefix)")
    p.add_argument("--unix-socket-mode", dest="unix_socket_mode", type=_mode, metavar="OCTAL",
                   help="mode of the socket files (default 660)")
    p.add_argument("--unix-socket-group", dest="unix_socket_group", metavar="GROUP",
                   help="group of the socket files (name or id; default: the process's)")
    p.add_argument("--events-url", dest="events_url", metavar="URL",
                   help="POST DogStatsD events to this graphite-web /events/ URL (statsd-push render's)")


def _whole(number: float) -> int | float:
    """argparse gives floats; a whole one goes on as an int, as a TOML file would give it."""
    return int(number) if number == int(number) else number


def settings_from(args: argparse.Namespace) -> Settings:
    if not args.config:
        settings = Settings()
    elif args.config.endswith(".js"):  # etsy's own config.js, kept as it was
        from django_statsd_push.server.etsy_config import settings_from_config_js

        settings = settings_from_config_js(args.config)
    else:
        settings = Settings.from_file(args.config)
    flags = {k: v for k, v in vars(args).items() if v is not None and k not in ("config", "legacyNamespace")}
    if "percentThreshold" in flags:
        flags["percentThreshold"] = [_whole(p) for p in flags["percentThreshold"]]
    if "flushInterval" in flags:
        flags["flushInterval"] = _whole(flags["flushInterval"])
    if args.legacyNamespace is not None:
        flags["graphite"] = {"legacyNamespace": args.legacyNamespace == "true"}
    return Settings.from_mapping(flags, base=settings)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(f"statsd-push serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # NumPy's array arithmetic, never its BLAS: one BLAS thread instead of one per core
    # keeps 4-5 MB less resident (docs/daemon.rst, "Memory"). Before NumPy is imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from django_statsd_push.server.daemon import Daemon  # sockets and threads only now

    # Handlers first: a SIGTERM that comes as soon as the ports answer must still flush.
    signals = signal_queue()
    try:
        daemon = Daemon(settings).start()
    except (ConfigError, OSError) as exc:
        print(f"statsd-push serve: {exc}", file=sys.stderr)
        return 1
    run_until_stopped(daemon, signals, lambda: settings_from(args))
    return 0


STOP, RELOAD = "stop", "reload"


def signal_queue() -> queue.SimpleQueue[str]:
    """SIGTERM/SIGINT put ``STOP``, SIGHUP puts ``RELOAD``, in the order they come.

    A queue, not flags: a SIGTERM right after a SIGHUP must not be lost while the
    reload runs (``SimpleQueue.put`` may be called from a signal handler).
    """
    signals: queue.SimpleQueue[str] = queue.SimpleQueue()
    signal.signal(signal.SIGTERM, lambda *_: signals.put(STOP))
    signal.signal(signal.SIGINT, lambda *_: signals.put(STOP))
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: signals.put(RELOAD))
    return signals


def _next_signal(signals: queue.SimpleQueue[str]) -> str:
    """The next signal, waiting in short slices: a signal the kernel delivers to another
    thread only sets a flag, and the main thread runs the Python handler (which fills
    the queue) when it next wakes up; an endless wait could sleep through it."""
    while True:
        try:
            return signals.get(timeout=0.2)
        except queue.Empty:
            continue


def run_until_stopped(daemon: Daemon, signals: queue.SimpleQueue[str],
                      next_settings: Callable[[], Settings]) -> None:
    """Reload ``next_settings()`` on each SIGHUP (a bad config or mapping file is logged
    and the running one kept) until SIGTERM/SIGINT; then flush once more and stop.

    ``statsd-push bridge`` runs the same loop, so SIGHUP means the same in both."""
    while _next_signal(signals) == RELOAD:
        try:
            daemon.reload(next_settings())
        except ConfigError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
    log.info("stopping: flushing once more")
    daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
