"""The bridge's tests need the ``prometheus`` extra (prometheus_client, PyYAML)."""

from tests.conftest import require_modules

require_modules("prometheus_client", "yaml")
