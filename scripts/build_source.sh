#!/usr/bin/env bash
# Build the Cloud Functions (2nd gen) source archive: one archive serves every function.
#   main.py           functions/main.py, which exposes every entry point (each function picks one by name)
#   functions/        the thin entry points
#   shared/           the library they import
#   requirements.txt  requirements-runtime.lock (pinned, hashed; no test tools)
# Usage: scripts/build_source.sh [OUT.zip]   (default build/source.zip); prints the archive path.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build/source.zip}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$(dirname "$OUT")"
cp "$ROOT/functions/main.py" "$STAGE/main.py"
cp "$ROOT/requirements-runtime.lock" "$STAGE/requirements.txt"
(cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - functions shared) | tar -xf - -C "$STAGE"
rm -f "$OUT"
# Fixed timestamps and order: the same tree gives the same archive (and the same object name in Terraform).
(cd "$STAGE" && find . -type f | LC_ALL=C sort | "${PYTHON:-python3}" -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for line in sys.stdin:
        path = line.strip()[2:]
        info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, open(path, "rb").read())
' "$OUT")
echo "$OUT"
