"""Every route of functions/api.py has its rule in ROUTE_ROLES (the one table of who may call what), read from
the Flask app's url_map: a route added without a rule fails here (and is refused at run time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.domain.access import Role, record_for
from shared.infra.access_keys import write_key_file

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from functions import api
rules = sorted({r.endpoint for r in api.app.url_map.iter_rules() if r.endpoint != "static"})
print(json.dumps({"routes": rules, "table": {k: (v.value if v else None) for k, v in api.ROUTE_ROLES.items()}}))
"""


def routes_and_table(tmp_path: Path) -> dict:
    """Import the API in a process of its own (its module builds the process's clients, which connect lazily:
    nothing is called), with a key file and emulator hosts nothing listens on."""
    keys = tmp_path / "keys.json"
    write_key_file(keys, [record_for("ek_" + "0" * 64, "probe", Role.ADMIN)])
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST") and k != "API_KEYS"}
    env.update(API_KEYS_FILE=str(keys), PUBSUB_EMULATOR_HOST="127.0.0.1:9", FIRESTORE_EMULATOR_HOST="127.0.0.1:9",
               CLOUD_TASKS_EMULATOR_HOST="127.0.0.1:9", REDIS_URL="redis://127.0.0.1:9/0",
               GOOGLE_CLOUD_PROJECT="execution-local")
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_route_has_a_rule_and_every_rule_a_route(tmp_path):
    found = routes_and_table(tmp_path)
    routes, table = set(found["routes"]), found["table"]
    assert len(routes) > 15  # the probe saw the real app
    assert routes - set(table) == set(), "routes without an access rule in functions/api.py ROUTE_ROLES"
    assert set(table) - routes == set(), "rules for routes that no longer exist"
    # The decisions that matter, pinned: operator routes, open routes, order routes open to traders.
    assert {e for e, r in table.items() if r == "operator"} == {
        "v1.enable_strategy", "v1.get_heartbeats", "v1.get_adapters", "v1.get_metrics"}
    assert {e for e, r in table.items() if r is None} == {"v1.get_health", "v1.get_openapi"}
    assert {table[e] for e in ("v1.create_order", "v1.get_order", "v1.cancel_order", "v1.modify_order",
                               "v1.list_orders", "v1.execute", "v1.get_order_tca", "v1.pause_order")} == {"trader"}
