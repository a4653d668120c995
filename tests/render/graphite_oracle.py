"""Run render requests through the real graphite-web 1.1.8, in a virtualenv of its own.

graphite-web pins Django<3.1, so it cannot live in the project's environment; this
module builds a separate venv once (``$GRAPHITE_WEB_PYTHON`` names an existing one's
python instead) under ``~/.cache/django-statsd-push/`` and drives graphite-web's own
Django view through Django's test client, with ``now`` fixed, over a Whisper directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VERSION = "1.1.8"
REQUIREMENTS = [f"graphite-web=={VERSION}", "Django<3.1", "pyparsing<3", "whisper==1.1.10"]

LOCAL_SETTINGS = '''
import os
_root = os.environ["ORACLE_STORAGE_DIR"]
SECRET_KEY = "oracle"
TIME_ZONE = "UTC"
STORAGE_DIR = _root
WHISPER_DIR = os.path.join(_root, "whisper")
STANDARD_DIRS = [WHISPER_DIR]
LOG_DIR = os.path.join(_root, "log")
INDEX_FILE = os.path.join(_root, "index")
CARBONLINK_HOSTS = []
TAGDB = ""  # the tag tests use their own settings module (see environ)
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(_root, "graphite.db")}}
DEFAULT_CACHE_DURATION = 0
ALLOWED_HOSTS = ["*"]
'''

DRIVER = '''
import inspect, json, os, sys
import django


def _formatargspec(args, varargs=None, varkw=None, defaults=None):
    """Python 3.10's inspect.formatargspec, gone in 3.11, which graphite-web's /functions uses."""
    first_default = len(args) - len(defaults or ())
    parts = [a if i < first_default else a + "=" + repr(defaults[i - first_default]) for i, a in enumerate(args)]
    parts += ["*" + varargs] if varargs else []
    parts += ["**" + varkw] if varkw else []
    return "(" + ", ".join(parts) + ")"


inspect.getargspec = lambda func: inspect.getfullargspec(func)[:4]
inspect.formatargspec = _formatargspec
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)  # /metrics/find reads the user profile table
client = Client(raise_request_exception=False)  # a graphite-web crash is a 500 answer
for line in sys.stdin:
    params = json.loads(line)
    path = params.pop("_path", "/render")
    method = params.pop("_method", "GET")
    if path == "/render":
        params.setdefault("format", "json")
        params["now"] = sys.argv[1]
    if "_json" in params:  # a raw JSON body (the events API)
        response = client.post(path, params.pop("_json"), content_type="application/json")
    elif method == "POST":
        response = client.post(path, params)
    else:
        response = client.get(path, params)
    body = response.content
    text = body.hex() if params.get("format") in ("pickle", "png", "pdf") else body.decode()
    print(json.dumps({"status": response.status_code, "body": text}), flush=True)
'''


class OracleUnavailable(RuntimeError):
    pass


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "django-statsd-push" / f"graphite-web-{VERSION}"


def graphite_python() -> Path:
    """The python of a venv holding graphite-web, built on first use."""
    if os.environ.get("GRAPHITE_WEB_PYTHON"):
        return Path(os.environ["GRAPHITE_WEB_PYTHON"])
    target = _cache_dir()
    python = target / "bin" / "python"
    if (target / "ready").exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="graphite-web-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(building / "bin" / "pip"), "install", "-q", *REQUIREMENTS], check=True,
                       capture_output=True, timeout=600)
        (building / "ready").touch()
        try:
            building.rename(target)  # atomic: a concurrent builder's venv wins, ours is dropped
        except OSError:
            pass
    except (subprocess.SubprocessError, OSError) as exc:
        raise OracleUnavailable(f"cannot build a graphite-web {VERSION} venv: {exc}") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    if not (target / "ready").exists():
        raise OracleUnavailable("graphite-web venv missing after build")
    # venv scripts hold absolute paths: a renamed venv still works through bin/python itself
    return python


TAG_SETTINGS = """from graphite.settings import *  # noqa
TAGDB = "graphite.tags.localdatabase.LocalDatabaseTagDB"
"""


def environ(storage_dir: Path, tagdb: bool = False) -> dict[str, str]:
    """Only what graphite-web needs: none of this project's settings module or path.

    ``tagdb``: graphite-web's local TagDB, set by a settings module of this storage
    directory's own (the venv's local_settings.py is shared by every concurrent run)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env = dict(keep, ORACLE_STORAGE_DIR=str(storage_dir), DJANGO_SETTINGS_MODULE="graphite.settings")
    if tagdb:
        (storage_dir / "oracle_tag_settings.py").write_text(TAG_SETTINGS)
        env.update(DJANGO_SETTINGS_MODULE="oracle_tag_settings", PYTHONPATH=str(storage_dir))
    return env


def prepare(storage_dir: Path) -> Path:
    """graphite-web's python, configured (by environment) for storage_dir/whisper."""
    python = graphite_python()
    site = subprocess.run([str(python), "-c", "import graphite, os; print(os.path.dirname(graphite.__file__))"],
                          check=True, capture_output=True, text=True, env=environ(storage_dir)).stdout.strip()
    Path(site, "local_settings.py").write_text(LOCAL_SETTINGS)
    (storage_dir / "log").mkdir(exist_ok=True)
    return python


def render(storage_dir: Path, requests: list[dict], now: int, tagdb: bool = False) -> list[dict]:
    """graphite-web's answers ({"status", "body"}) to requests over storage_dir/whisper
    (``/render`` unless a request's ``_path`` names another view; ``_method``: POST;
    ``_json``: a JSON body to POST). ``tagdb``: with graphite-web's local TagDB."""
    python = prepare(storage_dir)
    done = subprocess.run([str(python), "-c", DRIVER, str(now)], input="\n".join(json.dumps(r) for r in requests),
                          capture_output=True, text=True, timeout=300,
                          env=environ(storage_dir, tagdb))
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    if len(answers) != len(requests):
        raise OracleUnavailable(f"graphite-web driver failed: {done.stderr[-2000:]}")
    return answers
