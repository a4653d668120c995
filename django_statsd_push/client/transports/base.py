"""What every transport is: something that takes finished datagrams and never raises."""

from __future__ import annotations


class Transport:
    """Sends already formatted datagrams (lines joined by ``\\n``); never raises.

    ``dropped`` counts the datagrams that could not be sent (and, for the state a bad
    setting leaves behind, the metrics refused because of it).
    """

    packet_size = 512
    dropped = 0

    def send(self, data: str) -> None:
        pass

    def close(self) -> None:
        pass
