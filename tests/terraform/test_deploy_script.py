"""scripts/deploy.sh run offline against a fake ``terraform`` and ``gcloud`` on PATH that record their arguments.

``plan`` must change nothing (no apply of any kind, targeted or not), and a mistake in the arguments (the command
after the project, an unknown command, an extra argument) must stop with the usage before anything is built or
called. The ``deploy`` run shows the fakes do record an apply, so the plan test's "no apply" can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.terraform import tfcheck

DEPLOY_SH = tfcheck.ROOT / "scripts" / "deploy.sh"

# terraform show -json: a state holding the two operator secrets deploy.sh checks for a value.
STATE = {"values": {"root_module": {"resources": [
    {"type": "google_secret_manager_secret", "name": "api_keys", "values": {"secret_id": "exec-api-keys"}},
    {"type": "google_secret_manager_secret", "name": "venue_credential",
     "values": {"secret_id": "exec-venue-binance-api-key"}},
]}}}

FAKE_TERRAFORM = """#!/usr/bin/env bash
printf '%s\\n' "terraform $*" >> "$FAKE_LOG"
for a in "$@"; do
    case "$a" in
        show) cat "$FAKE_STATE" ;;
        output) echo https://exec-api.example/api/v1 ;;
    esac
done
"""
FAKE_GCLOUD = """#!/usr/bin/env bash
printf '%s\\n' "gcloud $*" >> "$FAKE_LOG"
# secrets versions list: a version exists unless FAKE_NO_VERSIONS is set
[ -n "${FAKE_NO_VERSIONS:-}" ] || echo projects/p/secrets/s/versions/1
"""


@pytest.fixture()
def fakes(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("terraform", FAKE_TERRAFORM), ("gcloud", FAKE_GCLOUD)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    (tmp_path / "state.json").write_text(json.dumps(STATE))
    env = {k: v for k, v in os.environ.items() if k not in ("PROJECT_ID", "REGION", "TF_VAR_FILE", "AUTO_APPROVE")}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", FAKE_LOG=str(tmp_path / "calls.log"),
               FAKE_STATE=str(tmp_path / "state.json"), TF_STATE_BUCKET="my-state", TERRAFORM="terraform",
               BUILD_DIR=str(tmp_path / "build"), TF_VAR_FILE=str(tmp_path / "none.tfvars"))
    return env


def run(env: dict[str, str], *args: str, **more: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run(["bash", str(DEPLOY_SH), *args], env={**env, **more}, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    log = Path(env["FAKE_LOG"])
    return proc, log.read_text().splitlines() if log.exists() else []


def terraform_commands(calls: list[str]) -> list[str]:
    """The terraform subcommand of each call (the first argument after -chdir=...)."""
    found = []
    for call in calls:
        words = call.split()
        if words[0] == "terraform":
            found.append(next(w for w in words[1:] if not w.startswith("-chdir")))
    return found


def test_plan_only_plans(fakes):
    proc, calls = run(fakes, "plan", "my-project")
    assert proc.returncode == 0, proc.stderr
    assert terraform_commands(calls) == ["init", "show", "plan"], calls
    assert not any("-target" in c or " apply" in c or " destroy" in c or " import" in c for c in calls), calls
    assert all(c.startswith("gcloud secrets versions list") for c in calls if c.startswith("gcloud")), calls
    plan = next(c for c in calls if " plan " in c)
    assert "-var project_id=my-project" in plan and "-out" not in plan


def test_plan_lists_secrets_without_a_value_and_still_changes_nothing(fakes):
    proc, calls = run(fakes, "plan", "my-project", FAKE_NO_VERSIONS="1")
    assert proc.returncode == 0, proc.stderr
    assert "exec-api-keys" in proc.stderr and "exec-venue-binance-api-key" in proc.stderr
    assert terraform_commands(calls) == ["init", "show", "plan"], calls


def test_deploy_applies_what_it_planned(fakes):
    # The fakes see an apply when there is one: the plan tests' "no apply" is not vacuous.
    proc, calls = run(fakes, "deploy", "my-project", AUTO_APPROVE="1")
    assert proc.returncode == 0, proc.stderr
    assert terraform_commands(calls) == ["init", "apply", "show", "plan", "apply", "output"], calls
    assert "-target=google_secret_manager_secret.api_keys" in calls[1]
    assert "API_URL=https://exec-api.example/api/v1" in proc.stdout


def test_deploy_stops_when_a_secret_has_no_value(fakes):
    proc, calls = run(fakes, "my-project", AUTO_APPROVE="1", FAKE_NO_VERSIONS="1")
    assert proc.returncode == 1
    assert "plan" not in terraform_commands(calls), calls


@pytest.mark.parametrize("args, phrase", [
    (("my-project", "plan"), "the command comes first: scripts/deploy.sh plan my-project"),
    (("my-project", "destroy"), "the command comes first"),
    (("plan", "my-project", "extra"), "unexpected argument after the project: extra"),
    (("my-project", "x", "y"), "unexpected arguments after the project: x y"),
    (("plann", "my-project"), "unexpected argument after the project"),
    (("Plan",), "not a command nor a Google Cloud project id: 'Plan'"),
    (("plan", "my_project"), "not a command nor a Google Cloud project id"),
    (("--force", "my-project"), "unknown option --force"),
    (("plan",), "no project"),
])
def test_argument_mistakes_stop_with_the_usage_before_anything_runs(fakes, args, phrase):
    proc, calls = run(fakes, *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert phrase in proc.stderr
    assert "scripts/deploy.sh plan [PROJECT_ID]" in proc.stderr  # the usage
    assert calls == []
    assert not Path(fakes["BUILD_DIR"]).exists()  # nothing was built either


def test_project_from_the_environment(fakes):
    proc, calls = run(fakes, "plan", PROJECT_ID="my-project")
    assert proc.returncode == 0, proc.stderr
    assert terraform_commands(calls) == ["init", "show", "plan"]
