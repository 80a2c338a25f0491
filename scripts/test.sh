#!/usr/bin/env bash
# The whole test suite: prepares the venvs, starts a private local stack (emulators, Redis, functions) on free
# ports, runs pytest against it, and stops everything it started, also on failure or Ctrl-C.
# Runs beside a running ./emulator.sh; two runs never collide. Arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/bootstrap.sh"
PY="$ROOT/.venv/bin/python"

mkdir -p "$ROOT/.local/test-runs"
STATE=$(mktemp -d "$ROOT/.local/test-runs/run-XXXXXX")
status=1
cleanup() {
    "$PY" "$ROOT/scripts/localstack.py" stop --state-dir "$STATE" >/dev/null 2>&1 || true
    if [ "$status" -eq 0 ]; then
        rm -rf "$STATE"
    else
        echo "test.sh: logs of this run kept in $STATE/logs" >&2
    fi
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM

# --with-prometheus: tests/integration/test_prometheus.py reads PROMETHEUS_URL (about a second more to start)
"$PY" "$ROOT/scripts/localstack.py" start --state-dir "$STATE" --free-ports --own-redis --with-prometheus >/dev/null
set -a
# shellcheck disable=SC1091
source "$STATE/env"
set +a
export LOCALSTACK_STATE="$STATE"
cd "$ROOT"
set +e
"$PY" -m pytest "$@"
status=$?
set -e
exit "$status"
