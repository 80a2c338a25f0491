#!/usr/bin/env bash
# The whole service, locally: Pub/Sub, Firestore and Cloud Tasks emulators, Redis, and every Cloud Function.
#   ./emulator.sh [start] [--with-prometheus]   bring it up (idempotent), write .local/env, print the API URL
#                           (--with-prometheus: also a Prometheus scraping the metrics, alert rules loaded)
#   ./emulator.sh stop      end exactly what start started
#   ./emulator.sh status    what runs where
#   ./emulator.sh logs [NAME]
# Ports: PUBSUB_PORT FIRESTORE_PORT TASKS_PORT API_PORT SIGNALS_PORT ... (see README); REDIS_URL is used when it
# answers PING, else a redis-server is started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-start}
[ $# -gt 0 ] && shift
if [ "$cmd" = start ]; then
    "$ROOT/scripts/bootstrap.sh"
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    echo "emulator.sh: no .venv yet; run ./emulator.sh start first" >&2
    exit 1
fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/localstack.py" "$cmd" "$@"
