#!/usr/bin/env bash
# Re-resolve the pinned dependency sets (every transitive pin, with hashes):
#   requirements.lock          service + tests (what scripts/bootstrap.sh installs into .venv)
#   requirements-runtime.lock  service only (shipped as requirements.txt in the Cloud Functions source archive)
# Run after changing a dependency in pyproject.toml; commit the three files together.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_bin=${UV:-uv}
command -v "$uv_bin" >/dev/null || { echo "lock.sh needs uv (pip install uv==0.13.8)" >&2; exit 1; }
common=(pyproject.toml --python-version 3.12 --generate-hashes --no-header)
"$uv_bin" pip compile "${common[@]}" --extra dev --output-file requirements.lock
"$uv_bin" pip compile "${common[@]}" --output-file requirements-runtime.lock
