"""Fixtures the daemon tests share."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A directory with a short path: a Unix socket path has at most 107 bytes."""
    path = tempfile.mkdtemp(prefix="sp-unix-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)
