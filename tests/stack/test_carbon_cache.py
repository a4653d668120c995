"""CarbonCache.start with one of carbon's ports taken by another socket before carbon binds it.

Ports are picked free and bound by carbon a moment later; anything binding port 0 in
between can get one. Carbon then exits, and the port's new owner still accepts
connections: ``start`` must neither take that owner for carbon nor leave the caller
with a dead carbon.
"""

from __future__ import annotations

import socket

import pytest

from tests.conftest import require_import

require_import("whisper")  # carbon's dependency: says whether carbon is installed

from django_statsd_push.stack.carbon_cache import CarbonCache, PortTaken, listening_ports

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("port", ["line_port", "pickle_port", "query_port"])
def test_a_taken_port_it_was_given_fails_start_instead_of_passing_for_carbon(tmp_path, port):
    with socket.create_server(("127.0.0.1", 0)) as stranger:  # listens: a connect succeeds
        carbon = CarbonCache(tmp_path, **{port: stranger.getsockname()[1]})
        with pytest.raises(PortTaken, match="Address already in use"):
            carbon.start()
            carbon.stop(flush=False)  # only reached when start took the stranger for carbon
        assert not carbon.running


def test_a_port_it_picked_and_lost_before_carbon_bound_it_is_picked_again(tmp_path):
    strangers: list[socket.socket] = []

    class Unlucky(CarbonCache):
        """The query port of its first config is taken before carbon starts."""

        def write_config(self):
            conf = super().write_config()
            if not strangers:
                strangers.append(socket.create_server((self.host, self.query_port)))
            return conf

    try:
        with Unlucky(tmp_path) as carbon:
            taken = strangers[0].getsockname()[1]
            assert carbon.query_port != taken
            assert set(carbon.ports) <= listening_ports(carbon.proc.pid)
    finally:
        for s in strangers:
            s.close()
