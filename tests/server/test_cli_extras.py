"""Every command says which extra to install when an optional dependency is missing,
before anything else fails on it (checked with the imports really failing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("numpy", "twisted", "whisper", "carbon", "prometheus_client", "yaml")

BLOCKED = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # "import name" raises ModuleNotFoundError, as if not installed
from django_statsd_push.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run(blocked: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, ",".join(blocked), *argv], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(("argv", "extra"), [
    (("render", "--whisper-root", "/nonexistent", "--port", "0"), "server"),
    (("bridge", "--listen", "127.0.0.1:0", "--statsd-port", "0"), "prometheus"),
    (("stack", "--dir", "/nonexistent"), "server,prometheus"),
    (("serve", "--port", "0", "--mgmt-port", "0", "--no-graphite", "--prometheus-listen", "127.0.0.1:0"),
     "prometheus"),
    (("serve", "--port", "0", "--mgmt-port", "0"), "server"),  # the Carbon sink computes with numpy
], ids=lambda v: v[0] if isinstance(v, tuple) else v)
def test_a_missing_dependency_names_the_extra(argv, extra):
    result = run(OPTIONAL, *argv)
    assert result.returncode != 0
    assert f"django-statsd-push[{extra}]" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_one_missing_module_is_named():
    result = run(("numpy",), "render", "--whisper-root", "/nonexistent", "--port", "0")
    assert result.returncode == 2
    assert "statsd-push render: numpy not installed; install the [server] extra" in result.stderr
