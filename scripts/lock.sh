#!/usr/bin/env bash
# Re-resolve the pinned dependency sets (every transitive pin, with hashes):
#   requirements.lock          service + tests + execctl (what scripts/bootstrap.sh installs into .venv)
#   requirements-runtime.lock  service only (shipped as requirements.txt in the Cloud Functions source archive)
#   scripts/checkov.requirements.txt  checkov for the Terraform checks (its own venv, .venv-checkov), from
#                                     scripts/checkov.requirements.in
# Run after changing a dependency in pyproject.toml or scripts/checkov.requirements.in; commit them together.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_bin=${UV:-uv}
command -v "$uv_bin" >/dev/null || { echo "lock.sh needs uv (pip install uv==0.13.8)" >&2; exit 1; }
common=(pyproject.toml --python-version 3.12 --generate-hashes --no-header)
"$uv_bin" pip compile "${common[@]}" --extra dev --extra cli --output-file requirements.lock
"$uv_bin" pip compile "${common[@]}" --output-file requirements-runtime.lock
"$uv_bin" pip compile scripts/checkov.requirements.in --python-version 3.12 --generate-hashes --no-header \
    --output-file scripts/checkov.requirements.txt
