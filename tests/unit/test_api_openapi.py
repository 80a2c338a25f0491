"""The served OpenAPI document (shared/app/openapi.py): valid OpenAPI 3.1, every route of functions/api.py with the
statuses it can answer, enums as enums, and each algorithm's parameters as the schema of the model that validates
them (a document and a validator that agree on what they accept)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate

from shared.app.openapi import api_document
from shared.domain.access import Role, record_for
from shared.domain.algorithms import PARAMS, InvalidParams, parse_params
from shared.domain.orders import Side, Status
from shared.infra.access_keys import write_key_file

METHODS = {"get", "put", "post", "delete", "patch"}
DOC = api_document()


PROBE = """
import json
from functions import api
print(json.dumps([[r.rule, r.endpoint, sorted(r.methods)] for r in api.app.url_map.iter_rules()]))
"""


@pytest.fixture(scope="module")
def url_map(tmp_path_factory):
    """functions/api.py's routes, read in a process of its own (its module builds the process's clients, which
    connect to nothing until used, and reads its key file at start), as (rule, endpoint, methods)."""
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    write_key_file(keys, [record_for("ek_" + "0" * 64, "probe", Role.ADMIN)])
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST") and k != "API_KEYS"}
    env.update(API_KEYS_FILE=str(keys), PUBSUB_EMULATOR_HOST="127.0.0.1:9", FIRESTORE_EMULATOR_HOST="127.0.0.1:9",
               CLOUD_TASKS_EMULATOR_HOST="127.0.0.1:9", REDIS_URL="redis://127.0.0.1:9/0",
               GOOGLE_CLOUD_PROJECT="execution-local")
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=Path(__file__).resolve().parents[2], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [(rule, endpoint, set(methods)) for rule, endpoint, methods in json.loads(out.stdout.splitlines()[-1])]


def operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in DOC["paths"].items() for method in item if method in METHODS}


def test_the_document_is_valid_openapi_3_1():
    assert DOC["openapi"] == "3.1.0"
    validate(DOC)


def test_every_route_is_documented_and_nothing_else(url_map):
    routes = set()
    for rule, endpoint, methods in url_map:
        if endpoint == "static":  # Flask's own, outside /api/v1
            continue
        assert rule.startswith("/api/v1/"), rule
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.removeprefix("/api/v1"))
        routes |= {(path, m.lower()) for m in methods - {"HEAD", "OPTIONS"}}
    assert routes - operations() == set(), "routes missing from the OpenAPI document"
    assert operations() - routes == set(), "documented operations no route serves"
    for must in [("/execute", "post"), ("/routes", "get"), ("/routes/optimize", "post"), ("/heartbeat", "post"),
                 ("/heartbeat", "get"), ("/orders/{order_id}/pause", "post"), ("/orders/{order_id}/resume", "post"),
                 ("/strategies/{strategy_id}/enable", "post")]:
        assert must in routes


def test_every_operation_lists_the_statuses_it_can_answer():
    open_routes = {"/health", "/openapi.json"}
    for path, method in operations():
        op = DOC["paths"][path][method]
        statuses = {int(s) for s in op["responses"]}
        assert any(200 <= s < 300 for s in statuses), (path, method)
        if path in open_routes:
            assert op["security"] == [] and 401 not in statuses
            continue
        assert {401, 403, 429, 503} <= statuses, (path, method, statuses)
        if "requestBody" in op:
            assert {400, 413, 422} <= statuses, (path, method)
        if "{order_id}" in path or "{strategy_id}" in path:
            assert 404 in statuses, (path, method)
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"}
    assert 409 in {int(s) for s in DOC["paths"]["/orders/{order_id}"]["put"]["responses"]}
    assert {"200", "201", "409"} <= set(DOC["paths"]["/orders"]["post"]["responses"])
    assert "202" in DOC["paths"]["/orders/{order_id}"]["put"]["responses"]


def test_enums_are_enums_and_numbers_say_their_form():
    schemas = DOC["components"]["schemas"]
    assert set(schemas["Status"]["enum"]) == {s.value for s in Status}
    assert set(schemas["Side"]["enum"]) == {s.value for s in Side}
    [status_param] = [p for p in DOC["paths"]["/orders"]["get"]["parameters"] if p["name"] == "status"]
    assert set(status_param["schema"]["enum"]) == {s.value for s in Status}
    algorithm = schemas["OrderRequest"]["properties"]["algorithm"]
    assert {"type": "string", "enum": [a.value for a in PARAMS]} in algorithm["anyOf"]
    quantity_in = schemas["OrderRequest"]["properties"]["quantity"]
    assert {o["type"] for o in quantity_in["anyOf"]} == {"number", "string"}  # read: a number or a decimal string
    assert schemas["OrderView"]["properties"]["quantity"]["type"] == "string"  # written: a decimal string
    assert "decimal string" in DOC["info"]["description"]


def test_each_algorithm_has_its_params_model_as_its_schema():
    schemas = DOC["components"]["schemas"]
    for model in PARAMS.values():
        assert schemas[model.__name__] == model.model_json_schema(ref_template="#/components/schemas/{model}")
    assert {"TwapParams", "VwapParams", "IcebergParams", "PovParams", "SmartParams"} <= set(schemas)


ORDER = {"strategy_id": "s", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "1",
         "order_type": "limit", "price": "50000"}


@pytest.mark.parametrize("algorithm, params, valid", [
    ("twap", {"duration_s": 600, "slices": "5", "mode": "maker", "reprice_after_s": 10}, True),
    ("twap", {"duration_s": 5}, False),
    ("twap", {"duration_s": 600, "mode": "sniper"}, False),
    ("twap", {"duration_s": 600, "bogus": 1}, False),
    ("twap", {"slices": 5}, False),
    ("vwap", {"duration_s": 600, "profile": [1, "2.5", 0], "max_participation": "0.1"}, True),
    ("vwap", {"duration_s": 600, "profile": []}, False),
    ("iceberg", {"display_quantity": "0.1", "limit_price": 50000}, True),
    ("iceberg", {"display_quantity": "0.1"}, False),
    ("pov", {"target_rate": "0.1", "interval_s": None}, True),
    ("pov", {"target_rate": 0.6}, False),  # (a decimal string's range only the model can check)
    ("pov", {"target_rate": "١"}, False),  # an Arabic-Indic digit is no ASCII decimal
    ("smart", {"rounds": 2, "limit_price": "51000.5"}, True),
    ("smart", {"rounds": 11}, False),
    ("direct", {}, True),
    ("direct", {"x": 1}, False),
])
def test_the_schema_and_the_model_agree_on_algorithm_params(algorithm, params, valid):
    validator = jsonschema.Draft202012Validator({**DOC, "$ref": "#/components/schemas/OrderRequest"})
    by_schema = validator.is_valid({**ORDER, "algorithm": algorithm, "algorithm_params": params})
    try:
        parse_params(algorithm, params)
        by_model = True
    except InvalidParams:
        by_model = False
    assert by_schema == by_model == valid


def test_a_smart_order_without_an_algorithm_is_checked_against_the_routers_params():
    validator = jsonschema.Draft202012Validator({**DOC, "$ref": "#/components/schemas/OrderRequest"})
    smart = {k: v for k, v in ORDER.items() if k != "exchange"}
    assert validator.is_valid({**smart, "algorithm_params": {"rounds": 3}})
    assert not validator.is_valid({**smart, "algorithm_params": {"rounds": 30}})
    assert validator.is_valid({**ORDER, "algorithm_params": {}})
