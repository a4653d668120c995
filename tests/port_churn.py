"""Take ports the way other work on a busy machine does: bind port 0 over and over.

    python tests/port_churn.py [N]      (N TCP ports, listening, and N/2 UDP ports; default 2000)

Holds N ports at a time and renews them every second, until killed. A test that picks a
port, lets it go and has a program bind it later loses that port to this now and then;
``tests/under_load.sh`` runs it beside the suite. Not a test module (pytest collects
``test_*.py`` only).
"""

from __future__ import annotations

import resource
import socket
import sys
import time


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, (hard - 50) * 2 // 3)
    while True:
        held = []
        for i in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            held.append(s)
            if i % 2:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.bind(("127.0.0.1", 0))
                held.append(u)
        time.sleep(1)
        for s in held:
            s.close()


if __name__ == "__main__":
    main()
