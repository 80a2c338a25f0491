#!/usr/bin/env bash
# Deploy the service to Google Cloud with Terraform (terraform/), or take it down.
#
#   scripts/deploy.sh [deploy] [PROJECT_ID]   build the source archive, init, plan, apply (asks first); print the API URL
#   scripts/deploy.sh plan [PROJECT_ID]       build, init and plan only: shows what would change, changes nothing
#                                             (no apply of any kind; secrets without a value are only listed)
#   scripts/deploy.sh destroy [PROJECT_ID]    destroy what Terraform created (asks first); see the README for what stays
#
# The command comes first; anything else (an unknown command, the command after the project, an extra argument, a
# project id Google would refuse) stops with this usage before anything is built or called.
#
# Environment:
#   PROJECT_ID        the Google Cloud project, if not given as an argument
#   TF_STATE_BUCKET   an existing GCS bucket for Terraform's state (required; versioned; it holds the Redis AUTH string)
#   TF_STATE_PREFIX   the state's path in the bucket (default execution/PROJECT_ID)
#   REGION            overrides var.region (else terraform.tfvars, else us-central1)
#   TF_VAR_FILE       a .tfvars file (default terraform/terraform.tfvars when it exists)
#   TERRAFORM         the terraform binary (default: terraform on PATH, >= 1.5)
#   BUILD_DIR         where the source archive is built (default build/)
#   AUTO_APPROVE=1    apply or destroy without asking (CI)
# Needs gcloud (authenticated: gcloud auth application-default login) to check that the secrets you fill have a value.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TERRAFORM=${TERRAFORM:-terraform}

die() { echo "deploy.sh: $*" >&2; exit 1; }
usage() { sed -n '4,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }  # the commands, above
bad_usage() { echo "deploy.sh: $*" >&2; echo >&2; usage >&2; exit 2; }
is_project_id() { [[ $1 =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]]; }

command=deploy
case "${1:-}" in
    deploy | plan | destroy) command=$1; shift ;;
    -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) bad_usage "unknown option ${1}" ;;
esac
[ "$#" -le 1 ] || case "$2" in
    deploy | plan | destroy) bad_usage "the command comes first: scripts/deploy.sh $2 $1" ;;
    *) bad_usage "unexpected argument${3:+s} after the project: ${*:2}" ;;
esac
PROJECT_ID=${1:-${PROJECT_ID:-}}
[ -n "$PROJECT_ID" ] || bad_usage "no project: scripts/deploy.sh $command PROJECT_ID (or set PROJECT_ID)"
is_project_id "$PROJECT_ID" || bad_usage "not a command nor a Google Cloud project id: '$PROJECT_ID' (a project id is 6-30 lowercase letters, digits or hyphens)"
[ -n "${TF_STATE_BUCKET:-}" ] || die "set TF_STATE_BUCKET to an existing GCS bucket for Terraform's state
  (once: gcloud storage buckets create gs://NAME --project $PROJECT_ID --uniform-bucket-level-access && gcloud storage buckets update gs://NAME --versioning)"
command -v "$TERRAFORM" >/dev/null 2>&1 || die "terraform not found (install Terraform >= 1.5 or set TERRAFORM=/path/to/terraform)"
command -v gcloud >/dev/null 2>&1 || die "gcloud not found (install the Google Cloud CLI and run gcloud auth application-default login)"

tf() { "$TERRAFORM" -chdir="$ROOT/terraform" "$@"; }

# 1. The source archive every function is built from (reproducible: an unchanged tree gives the same object name).
ARCHIVE=$("$ROOT/scripts/build_source.sh" "${BUILD_DIR:-$ROOT/build}/source.zip")
echo "deploy.sh: source archive $ARCHIVE" >&2

# 2. Terraform's working directory, with the state in the bucket (the backend block in versions.tf is partial).
tf init -input=false -reconfigure \
    -backend-config="bucket=$TF_STATE_BUCKET" \
    -backend-config="prefix=${TF_STATE_PREFIX:-execution/$PROJECT_ID}"

vars=()
var_file=${TF_VAR_FILE:-$ROOT/terraform/terraform.tfvars}
if [ -f "$var_file" ]; then
    vars+=(-var-file="$(cd "$(dirname "$var_file")" && pwd)/$(basename "$var_file")")
fi
vars+=(-var "project_id=$PROJECT_ID" -var "source_archive=$ARCHIVE")
if [ -n "${REGION:-}" ]; then
    vars+=(-var "region=$REGION")
fi
approve=()
if [ "${AUTO_APPROVE:-0}" = 1 ]; then
    approve=(-auto-approve)
fi

if [ "$command" = destroy ]; then
    echo "deploy.sh: destroying the deployment in $PROJECT_ID. Secrets (API keys, venue credentials) go with it;" \
         "the Firestore database and its orders stay (deletion protection)." >&2
    tf destroy -input=false "${approve[@]}" "${vars[@]}"
    exit 0
fi

# 3. The secrets only you fill (API keys, venue credentials): Terraform creates them empty and never sees their
#    values. deploy creates them first (with the APIs they need: this step applies without asking, it creates
#    nothing that costs money), then stops if any has no version yet (the functions could not start). plan
#    changes nothing: it only lists the secrets that exist without a value.
if [ "$command" = deploy ]; then
    tf apply -input=false -auto-approve "${vars[@]}" \
        -target=google_secret_manager_secret.api_keys -target=google_secret_manager_secret.venue_credential
fi
secrets=$(tf show -json | python3 -c '
import json, sys
text = sys.stdin.read().strip()
state = (json.loads(text) if text else {}).get("values") or {}
for r in (state.get("root_module") or {}).get("resources", []):
    if r["type"] == "google_secret_manager_secret" and r["name"] in ("api_keys", "venue_credential"):
        print(r["values"]["secret_id"])
')
missing=()
for secret in $secrets; do
    if [ -z "$(gcloud secrets versions list "$secret" --project "$PROJECT_ID" --filter=state=ENABLED --limit=1 \
               --format='value(name)')" ]; then
        missing+=("$secret")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    then=", then run deploy.sh again"
    [ "$command" = plan ] && then=" before deploying"
    echo "deploy.sh: these secrets have no value yet; add one to each$then:" >&2
    for secret in "${missing[@]}"; do
        echo "  printf %s 'VALUE' | gcloud secrets versions add $secret --project $PROJECT_ID --data-file=-" >&2
    done
    echo "  (*-api-keys: the key file, hashed records: .venv/bin/python -m shared.infra.access_keys new --id ME" \
         "--role admin --file keys.json prints a key once; then --data-file=keys.json; README, Access)" >&2
    [ "$command" = plan ] || exit 1
fi

# 4. Plan, then apply exactly that plan.
if [ "$command" = plan ]; then
    tf plan -input=false "${vars[@]}"
    exit 0
fi
PLAN=$(mktemp "${TMPDIR:-/tmp}/execution-plan.XXXXXX")
trap 'rm -f "$PLAN"' EXIT
tf plan -input=false -out="$PLAN" "${vars[@]}"
if [ "${AUTO_APPROVE:-0}" != 1 ]; then
    read -r -p "Apply this plan to $PROJECT_ID? [y/N] " answer
    [ "$answer" = y ] || [ "$answer" = Y ] || die "not applied"
fi
tf apply -input=false "$PLAN"

echo "API_URL=$(tf output -raw api_url)"
