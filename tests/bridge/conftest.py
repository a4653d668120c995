"""The bridge's tests need the ``prometheus`` extra (prometheus_client, PyYAML)."""

from tests.conftest import require_import

require_import("prometheus_client")
require_import("yaml")
