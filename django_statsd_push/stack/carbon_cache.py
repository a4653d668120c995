"""Run the REAL carbon-cache (PyPI ``carbon``) as a child process, configured from ``graphite/``.

The one place that writes a carbon configuration: it copies ``carbon.conf``,
``storage-schemas.conf`` and ``storage-aggregation.conf`` from the repository's
``graphite/`` directory into ``<root>/conf``, overriding paths (everything lives
under ``root``), ports and, if asked, the first retention, then starts
``carbon-cache.py --config=<root>/conf/carbon.conf --nodaemon start`` and waits until
carbon itself listens on all its ports. Used by the daemon's tests, the render API's
end-to-end test and ``statsd-push stack``::

    with CarbonCache(tmp_path, first_retention="1s:1h") as carbon:
        ...send "name value ts" lines to ("127.0.0.1", carbon.line_port)...
        carbon.whisper_file("stats.app.hits")   # -> Path of the .wsp file

Ports given as 0 are picked before start (carbon cannot report a port it chose) and
held until carbon listens (``health.PortHold``: carbon binds with SO_REUSEADDR, nothing
binding port 0 gets them). A port a caller picked can still be taken before carbon
binds it, and so can a held one by a process that picked the same number earlier and
binds it with SO_REUSEADDR; carbon then exits with EADDRINUSE. So "the line port
accepts a connection" is no sign of readiness: the port's new owner accepts too, while
carbon dies. On Linux, ready is carbon's own process listening on each of its ports
(``/proc``). Ports this object picked are picked again when carbon could not bind one.

Stopping loses no point: carbon's writer thread checks ``reactor.running`` between
write rounds, so on SIGTERM whatever is still in its cache (a statsd daemon's last
flush, typically) is dropped. ``stop()`` therefore first runs a write barrier (see
``write_barrier``) and only then sends SIGTERM. The child also gets SIGTERM from the
kernel if its parent dies without stopping it (``parent_death``).
"""

from __future__ import annotations

import configparser
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django_statsd_push.stack.health import PortHold
from django_statsd_push.stack.parent_death import die_with_parent

log = logging.getLogger(__name__)

GRAPHITE_DIR_ENV = "STATSD_PUSH_GRAPHITE_DIR"
CARBON_FILES = ("carbon.conf", "storage-schemas.conf", "storage-aggregation.conf")
# The write barrier's two points: in carbon's own namespace (beside its carbon.agents.*
# self-instrumentation, never under stats.*), and their files are deleted once carbon
# has exited, so nothing of them is left for a finder or a dashboard.
BARRIER_MARKERS = ("carbon.write_barrier.first", "carbon.write_barrier.second")
# Strategies whose write round drains every metric present when the round began.
BARRIER_STRATEGIES = ("sorted", "naive")


class CarbonCacheError(RuntimeError):
    pass


class PortTaken(CarbonCacheError):
    """Carbon exited because one of its ports was taken (EADDRINUSE)."""


def graphite_dir() -> Path:
    """Where the operator-editable Graphite files are.

    ``$STATSD_PUSH_GRAPHITE_DIR`` first (an operator's own copy), then the checkout's
    ``graphite/`` (editable installs: edits there take effect on the next start), then
    the copy a wheel installs under ``<prefix>/share/django-statsd-push/graphite``.
    """
    if os.environ.get(GRAPHITE_DIR_ENV):
        return Path(os.environ[GRAPHITE_DIR_ENV])
    checkout = Path(__file__).resolve().parents[2] / "graphite"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "django-statsd-push" / "graphite"


def find_carbon_cache(script: str = "carbon-cache.py") -> Path:
    """``carbon-cache.py`` (or another of carbon's scripts) next to this Python (a venv), else on PATH."""
    beside = Path(sys.executable).parent / script
    if beside.exists():
        return beside
    found = shutil.which(script)
    if found:
        return Path(found)
    raise CarbonCacheError(f"{script} not found: pip install carbon whisper (in this environment)")


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports process ``pid`` listens on, read from Linux's ``/proc``: None where
    there is no ``/proc``, an empty set once the process is gone."""
    if not os.path.isdir("/proc/self/fd"):
        return None
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return set()
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()  # sl local_address rem_address st ... inode (the 10th)
            if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def _with_first_retention(schemas: str, first: str) -> str:
    """Replace the first archive of every ``retentions =`` line (e.g. ``10s:6h`` -> ``1s:6h``)."""
    def swap(match: re.Match) -> str:
        archives = [a.strip() for a in match.group(2).split(",")]
        return match.group(1) + ",".join([first, *archives[1:]])

    return re.sub(r"^(\s*retentions\s*=\s*)(.+)$", swap, schemas, flags=re.MULTILINE)


def _holds(path: Path, value: float, when: int) -> bool:
    import whisper

    try:
        return value in whisper.fetch(str(path), when - 60)[1]
    except (OSError, whisper.WhisperException):
        return False


class CarbonCache:
    """A carbon-cache child process with its own config, whisper dir, logs and pid file.

    ``program``: which of carbon's daemons runs this config (``stack/relay.py`` runs
    ``carbon-relay`` with the same files and one more section).

    ``first_retention``: replaces the first archive of every schema (make it equal to
    the statsd flush interval; later archives must stay multiples of it).
    ``settings``: extra ``[cache]`` keys for carbon.conf (strings, carbon's names).
    """

    program = "carbon-cache"

    def __init__(self, root: str | Path, *, host: str = "127.0.0.1", line_port: int = 0,
                 pickle_port: int = 0, query_port: int = 0, first_retention: str | None = None,
                 settings: dict[str, str] | None = None, source: str | Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.host = host
        self.line_port, self.pickle_port, self.query_port = line_port, pickle_port, query_port
        self.first_retention = first_retention
        self.settings = dict(settings or {})
        self.source = Path(source) if source else graphite_dir()
        self.conf_dir = self.root / "conf"
        self.whisper_dir = self.root / "whisper"
        self.log_dir = self.root / "log"
        self.proc: subprocess.Popen | None = None
        self._output = None
        self._holds: list[PortHold] = []  # the ports it picked, until carbon listens on them
        self.barrier_blocker: str | None = None  # why this config allows no write barrier

    # --- configuration -----------------------------------------------------------
    def write_config(self) -> Path:
        """Write the carbon config under ``root/conf``; returns carbon.conf's path."""
        for name in CARBON_FILES:
            if not (self.source / name).exists():
                raise CarbonCacheError(f"{self.source / name} is missing (set ${GRAPHITE_DIR_ENV})")
        for name in ("line_port", "pickle_port", "query_port"):
            if not getattr(self, name):
                self._holds.append(PortHold(self.host))
                setattr(self, name, self._holds[-1].port)
        for d in (self.conf_dir, self.whisper_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        parser = configparser.RawConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # carbon's keys are upper case
        parser.read(self.source / "carbon.conf")
        if not parser.has_section("cache"):
            parser.add_section("cache")
        overrides = {
            "STORAGE_DIR": f"{self.root}/", "LOCAL_DATA_DIR": f"{self.whisper_dir}/",
            "LOG_DIR": f"{self.log_dir}/", "PID_DIR": f"{self.root}/",
            "WHITELISTS_DIR": f"{self.root / 'lists'}/",
            "LINE_RECEIVER_INTERFACE": self.host, "LINE_RECEIVER_PORT": str(self.line_port),
            "PICKLE_RECEIVER_INTERFACE": self.host, "PICKLE_RECEIVER_PORT": str(self.pickle_port),
            "CACHE_QUERY_INTERFACE": self.host, "CACHE_QUERY_PORT": str(self.query_port),
            **self.settings,
        }
        for key, value in overrides.items():
            parser.set("cache", key, value)
        strategy = parser.get("cache", "CACHE_WRITE_STRATEGY", fallback="sorted").strip()
        lag = parser.get("cache", "MIN_TIMESTAMP_LAG", fallback="0").strip() or "0"
        self.barrier_blocker = (
            f"CACHE_WRITE_STRATEGY = {strategy}" if strategy not in BARRIER_STRATEGIES
            else f"MIN_TIMESTAMP_LAG = {lag}" if float(lag) else None)
        conf = self.conf_dir / "carbon.conf"
        with conf.open("w") as f:
            parser.write(f)
        schemas = (self.source / "storage-schemas.conf").read_text()
        if self.first_retention:
            schemas = _with_first_retention(schemas, self.first_retention)
        (self.conf_dir / "storage-schemas.conf").write_text(schemas)
        shutil.copyfile(self.source / "storage-aggregation.conf", self.conf_dir / "storage-aggregation.conf")
        return conf

    # --- process -----------------------------------------------------------------
    @property
    def ports(self) -> tuple[int, ...]:
        """The TCP ports this program listens on once started."""
        return self.line_port, self.pickle_port, self.query_port

    def start(self, timeout: float = 30.0, attempts: int = 3) -> CarbonCache:
        """Start carbon; return once it listens on all its ports (at most ``timeout`` a try).

        When carbon cannot bind one of its ports (``PortTaken``, with the end of its log),
        the ports this object picked, if any, are picked again, for up to ``attempts`` tries.
        """
        picked = [name for name in ("line_port", "pickle_port", "query_port") if not getattr(self, name)]
        for _ in range(attempts - 1):
            try:
                return self._start(timeout)
            except PortTaken:
                if not picked:
                    raise
                log.info("%s: one of its ports was taken before it bound it; picking again", self.program)
                for name in picked:
                    setattr(self, name, 0)
        return self._start(timeout)

    def _listening(self) -> bool:
        """Carbon's own process listens on all its ports (Linux); elsewhere, the line port accepts."""
        assert self.proc is not None
        ports = listening_ports(self.proc.pid)
        if ports is not None:
            return set(self.ports) <= ports
        try:
            with socket.create_connection((self.host, self.line_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _start(self, timeout: float) -> CarbonCache:
        conf = self.write_config()
        (self.root / f"{self.program}-a.pid").unlink(missing_ok=True)  # stale pid: twistd would refuse
        self._output = (self.log_dir / "console.log").open("ab")
        begins = self._output.tell()  # the log of earlier starts is not this one's
        self.proc = subprocess.Popen(
            [sys.executable, str(find_carbon_cache(self.program + ".py")), f"--config={conf}", "--nodaemon", "start"],
            stdout=self._output, stderr=subprocess.STDOUT, cwd=self.root,
            start_new_session=True,  # a Ctrl-C meant for the parent does not skip our clean stop
            preexec_fn=die_with_parent,  # a SIGKILLed parent leaves no carbon-cache behind
        )
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.proc.poll() is not None:
                with (self.log_dir / "console.log").open("rb") as f:
                    f.seek(begins)
                    output = f.read().decode(errors="replace")
                self._cleanup()
                error = PortTaken if "Address already in use" in output else CarbonCacheError
                raise error(f"{self.program} exited with {self.proc.returncode}:\n{output[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise CarbonCacheError(f"{self.program} did not listen on {self.host}, ports {self.ports}")
            time.sleep(0.1)
        self._release_ports()
        return self

    def _release_ports(self) -> None:
        for hold in self._holds:
            hold.close()
        self._holds.clear()

    def write_barrier(self, timeout: float) -> bool:
        """Return True once every point carbon received before the call is in Whisper.

        Sends one marker point and waits until it is on disk, then a second one. With
        the ``sorted`` or ``naive`` write strategy a round drains every metric present
        when it began; the round that wrote the first marker began after it arrived,
        so it also drained everything that came before; the second marker, sent after
        the first was written, can only be written by a later round, i.e. after that
        one finished. False (nothing waited for) if the config holds points back
        (another strategy, ``MIN_TIMESTAMP_LAG``), or at the deadline, or if carbon dies.
        """
        if self.barrier_blocker is not None:
            log.warning("carbon-cache runs with %s: no write barrier is possible, "
                        "points still in its cache are lost on stop", self.barrier_blocker)
            return False
        import whisper  # carbon's own dependency

        end = time.monotonic() + timeout
        for metric in BARRIER_MARKERS:
            path = self.whisper_file(metric)
            if not path.exists():  # ours, so carbon's MAX_CREATES_PER_MINUTE cannot drop it
                path.parent.mkdir(parents=True, exist_ok=True)
                whisper.create(str(path), [(1, 600)])
            value, now = float(random.randrange(1, 1_000_000)), int(time.time())
            try:
                with socket.create_connection((self.host, self.line_port), timeout=2) as s:
                    s.sendall(f"{metric} {value:g} {now}\n".encode())
            except OSError as e:
                log.warning("write barrier: cannot reach carbon-cache's line port: %s", e)
                return False
            while not _holds(path, value, now):
                if time.monotonic() > end or not self.running:
                    log.warning("carbon-cache did not confirm its writes within %gs (write barrier); "
                                "points still in its cache may be lost", timeout)
                    return False
                time.sleep(0.05)
        return True

    def stop(self, timeout: float = 15.0, flush: bool = True) -> None:
        """Write barrier (``flush``; unless skipped, at most ``timeout``), then SIGTERM,
        then SIGKILL if carbon has not exited ``timeout`` later."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            if flush:
                self.write_barrier(timeout)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        self._release_ports()
        if self._output is not None:
            self._output.close()
            self._output = None
        for metric in BARRIER_MARKERS:
            path = self.whisper_file(metric)
            path.unlink(missing_ok=True)
            for folder in path.parents:
                if folder == self.whisper_dir:
                    break
                try:
                    folder.rmdir()  # only if empty: carbon.agents.* stays
                except OSError:
                    break

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def whisper_file(self, metric: str) -> Path:
        """Where carbon stores ``metric``; tagged names as carbon encodes them.

        A tagged name (``a.b;k=v``) is normalised by carbon (tags sorted) and kept under
        ``_tagged/`` (see graphite/carbon.conf; the path assumes TAG_HASH_FILENAMES = False).
        """
        if ";" in metric:
            from carbon.util import TaggedSeries  # carbon is this module's business anyway

            return self.whisper_dir / (
                TaggedSeries.encode(TaggedSeries.parse(metric).path, os.sep, hash_only=False) + ".wsp")
        *folders, leaf = metric.split(".")
        return self.whisper_dir.joinpath(*folders, leaf + ".wsp")

    def __enter__(self) -> CarbonCache:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
