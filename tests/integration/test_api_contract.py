"""The OpenAPI document the stack serves is the generated one, valid OpenAPI 3.1, and the API answers what it says
for an algorithm's parameters (a 422 naming the parameter the schema refuses)."""

from __future__ import annotations

from openapi_spec_validator import validate

from shared.app.openapi import api_document


def test_the_served_document_is_valid_openapi_3_1_and_the_generated_one(api):
    resp = api("GET", "/openapi.json", key=None)
    assert resp.status_code == 200
    served = resp.json()
    validate(served)
    assert served == api_document()
    assert "/routes/optimize" in served["paths"] and "TwapParams" in served["components"]["schemas"]


def test_params_the_schema_refuses_are_refused_naming_the_parameter(api):
    base = {"strategy_id": "contract", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
            "quantity": "0.01", "order_type": "limit", "price": "40000", "algorithm": "twap"}
    for params, field in [({"duration_s": 600, "mode": "sniper"}, "algorithm_params.mode"),
                          ({"duration_s": "6e2"}, "algorithm_params.duration_s"),
                          ({"duration_s": 600, "slices": 5, "bogus": True}, "algorithm_params.bogus")]:
        resp = api("POST", "/orders", {**base, "algorithm_params": params})
        assert resp.status_code == 422, resp.text
        assert field in [d["field"] for d in resp.json()["error"]["details"]], resp.text
