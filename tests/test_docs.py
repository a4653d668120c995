"""The README and docs/ render without a docutils warning (PyPI refuses a broken README)."""

from pathlib import Path

import pytest

from tests.conftest import require_import

docutils_core = require_import("docutils.core")
SystemMessage = require_import("docutils.utils").SystemMessage

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_renders_cleanly(path):
    try:
        docutils_core.publish_doctree(
            path.read_text(),
            source_path=str(path),
            settings_overrides={"halt_level": 2, "report_level": 2, "warning_stream": False},
        )
    except SystemMessage as problem:
        pytest.fail(f"{path.relative_to(ROOT)}: {problem}")


def test_readme_gives_the_test_command_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    command = "python3 -m pip install --quiet nox && python3 -m nox"
    assert command in (ROOT / "README.rst").read_text()
    assert command in ci
