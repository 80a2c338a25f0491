#!/usr/bin/env bash
# Create or update the project venvs, idempotently (sourced by emulator.sh and scripts/test.sh).
#   .venv        the service, its tests and tools (Python 3.12, or python3 where 3.12 is missing)
#   .venv-tasks  the Cloud Tasks emulator (its protobuf pin clashes with the service's)
#   .venv-checkov  checkov, for the Terraform checks (its packaging<24 pin clashes with pytest; its module hcl2
#                  with python-hcl2)
# A venv is rebuilt only when its requirement files change (a hash stamp inside it says which it holds).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

find_python() {
    local candidates=("${PYTHON:-}" python3.12)
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)/versions/3.12.1/bin/python3.12")
    fi
    candidates+=(/usr/bin/python3.12 python3)
    for c in "${candidates[@]}"; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$c"; return 0
        fi
    done
    echo "bootstrap: no Python >= 3.11 found (wanted 3.12; set PYTHON=/path/to/python3.12)" >&2
    return 1
}

# ensure_venv DIR STAMP_INPUTS... -- PIP_ARGS...
ensure_venv() {
    local dir=$1; shift
    local inputs=()
    while [ "$1" != "--" ]; do inputs+=("$1"); shift; done; shift
    local want; want=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
    if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
        return 0
    fi
    local py; py=$(find_python)
    echo "bootstrap: preparing $dir with $("$py" --version 2>&1)" >&2
    [ -x "$dir/bin/python" ] || "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    echo "$want" > "$dir/.stamp"
}

# The venvs are independent: build them side by side (a fresh machine spends most of its first start here).
ensure_venv "$ROOT/.venv-tasks" "$ROOT/scripts/tasks-emulator.requirements.txt" -- \
    -r "$ROOT/scripts/tasks-emulator.requirements.txt" &
tasks_pid=$!
ensure_venv "$ROOT/.venv-checkov" "$ROOT/scripts/checkov.requirements.txt" -- \
    --require-hashes -r "$ROOT/scripts/checkov.requirements.txt" &
checkov_pid=$!
ensure_venv "$ROOT/.venv" "$ROOT/requirements.lock" "$ROOT/pyproject.toml" -- \
    --require-hashes -r "$ROOT/requirements.lock"
wait "$tasks_pid" || { echo "bootstrap: could not prepare .venv-tasks (Cloud Tasks emulator)" >&2; exit 1; }
wait "$checkov_pid" || { echo "bootstrap: could not prepare .venv-checkov (checkov, Terraform checks)" >&2; exit 1; }
# promtool (Debian package prometheus) runs the alert rules' tests (tests/monitoring). Not a venv's: installed with
# apt-get where this user may (root), else named here, once; those tests then fail naming it too. The local stack
# does not need it.
if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing promtool (apt-get install prometheus)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || true
    fi
    command -v promtool >/dev/null 2>&1 || \
        echo "bootstrap: promtool not found: tests/monitoring will fail; install it with: apt-get install -y prometheus" >&2
fi
# The project itself: the repo root on the venv's path (what an editable install does, without a build backend).
site=$("$ROOT/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT" > "$site/execution_service.pth"
# execctl, the operator CLI: the console script pyproject.toml declares, as pip writes it for an installed project.
cat > "$ROOT/.venv/bin/execctl" <<EOF
#!$ROOT/.venv/bin/python
import sys
from execctl.main import main
sys.exit(main())
EOF
chmod +x "$ROOT/.venv/bin/execctl"
