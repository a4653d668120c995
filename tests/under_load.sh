#!/usr/bin/env bash
# The test suite beside two CPU-bound processes and a port churner (tests/port_churn.py:
# 2,000 TCP and 1,000 UDP ports bound to port 0, renewed every second), N times: proof
# that no test depends on an idle machine (every wait is on a condition, with a deadline
# a loaded 2-core box meets) or on a port nobody else takes (a port a test picks is held,
# or bound by the program itself, or its start is retried).
#
#   tests/under_load.sh [N] [pytest arguments...]     (N defaults to 3, arguments to "tests")
#   PYTHON=/path/to/venv/bin/python tests/under_load.sh 1 tests/bridge tests/server
#
# Runs the pytest command nox runs (noxfile.py) with $PYTHON, by default the interpreter of
# nox's Django 5.2 session when it exists. Prints "runs: N, failures: K"; exits 1 if K > 0.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
shift || true
[ $# -gt 0 ] || set -- tests
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .nox/tests-django-5-2/bin/python ] && PYTHON=.nox/tests-django-5-2/bin/python
fi

burners=()
stop_burners() {
    for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${burners[@]}"; do wait "$pid" 2>/dev/null; done
    burners=()
}
trap stop_burners EXIT INT TERM

failures=0
for run in $(seq 1 "$runs"); do
    for _ in 1 2; do
        "$PYTHON" -c 'while True: pass' &
        burners+=($!)
    done
    "$PYTHON" tests/port_churn.py &
    burners+=($!)
    echo "under_load: run $run of $runs: $PYTHON -m pytest $* (beside 2 CPU-bound processes and a port churner)"
    if ! "$PYTHON" -m pytest -q -p no:cacheprovider "$@"; then
        failures=$((failures + 1))
    fi
    stop_burners
done
echo "runs: $runs, failures: $failures"
[ "$failures" -eq 0 ]
