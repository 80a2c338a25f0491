"""The REST API against the running functions, emulators and simulated exchanges: every endpoint, and bad
input answered with a 4xx naming the field (never a 500)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from shared.domain.orders import order_id_for
from shared.infra.venues import VenueClient, session
from tests.integration.conftest import key_file_env, wait_for
import requests

LIMIT = {"strategy_id": "api-test", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
         "quantity": "0.01", "order_type": "limit", "price": "40000"}  # far below the market: it rests




def cid() -> str:
    return f"it-{uuid.uuid4().hex[:24]}"


def wait_status(api, order_id: str, statuses: set[str], timeout: float = 15) -> dict:
    return wait_for(api, order_id, lambda o: o["status"] in statuses, timeout)


def test_place_a_marketable_order_it_fills_with_fills_and_commission(api):
    resp = api("POST", "/orders", {**LIMIT, "client_order_id": cid(), "price": "51000"})
    assert resp.status_code == 201, resp.text
    order = wait_status(api, resp.json()["order_id"], {"filled"})
    assert order["status"] == "filled" and order["filled_quantity"] == "0.01"
    assert order["fills"] and all(f["trade_id"] for f in order["fills"])
    fees: dict[str, Decimal] = {}
    for f in order["fills"]:
        fees[f["fee_currency"]] = fees.get(f["fee_currency"], Decimal(0)) + Decimal(f["fee"])
    assert {k: Decimal(v) for k, v in order["commissions"].items()} == fees  # per currency, as charged
    # the single figure is in the quote currency: base-currency fees valued at their fill's price
    assert Decimal(order["commission"]) == sum(Decimal(f["fee"]) * (Decimal(f["price"]) if f["fee_currency"] == "BTC"
                                                                   else 1) for f in order["fills"])
    assert order["acknowledged_at"] >= order["created_at"] and order["terminal_at"]


def test_the_same_client_order_id_returns_the_existing_order(api):
    body = {**LIMIT, "client_order_id": cid()}
    first = api("POST", "/orders", body)
    second = api("POST", "/orders", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["order_id"] == second.json()["order_id"]
    api("DELETE", f"/orders/{first.json()['order_id']}")


def test_get_cancel_and_cancel_again(api):
    order = api("POST", "/orders", {**LIMIT, "client_order_id": cid()}).json()
    working = wait_status(api, order["order_id"], {"accepted"})
    assert working["status"] == "accepted" and working["venue_order_id"]
    canceled = api("DELETE", f"/orders/{order['order_id']}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = api("DELETE", f"/orders/{order['order_id']}")
    assert again.status_code == 200 and again.json()["status"] == "canceled"
    assert api("GET", f"/orders/{order['order_id']}").json()["status"] == "canceled"


def test_modify_price_and_quantity_of_a_working_order(api):
    order = api("POST", "/orders", {**LIMIT, "client_order_id": cid()}).json()
    before = wait_status(api, order["order_id"], {"accepted"})
    resp = api("PUT", f"/orders/{order['order_id']}", {"price": "41000", "quantity": "0.02"})
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["status"] == "accepted" and after["price"] == "41000" and after["quantity"] == "0.02"
    assert after["venue_order_id"] != before["venue_order_id"]
    assert after["client_order_id"] == before["client_order_id"]
    api("DELETE", f"/orders/{order['order_id']}")


def test_modify_a_closed_order_is_a_409_with_the_reason(api):
    order = api("POST", "/orders", {**LIMIT, "client_order_id": cid()}).json()
    wait_status(api, order["order_id"], {"accepted"})
    api("DELETE", f"/orders/{order['order_id']}")
    resp = api("PUT", f"/orders/{order['order_id']}", {"price": "41000"})
    assert resp.status_code == 409 and "canceled" in resp.json()["error"]["message"]


def test_list_filters_and_cursor_pagination(api):
    strategy = f"list-{uuid.uuid4().hex[:8]}"
    ids = [api("POST", "/orders", {**LIMIT, "strategy_id": strategy, "client_order_id": cid()}).json()["order_id"]
           for _ in range(3)]
    page1 = api("GET", "/orders", params={"strategy_id": strategy, "limit": 2}).json()
    assert len(page1["orders"]) == 2 and page1["next_cursor"]
    page2 = api("GET", "/orders", params={"strategy_id": strategy, "limit": 2, "cursor": page1["next_cursor"]}).json()
    assert len(page2["orders"]) == 1 and page2["next_cursor"] is None
    listed = [o["order_id"] for o in page1["orders"] + page2["orders"]]
    assert sorted(listed) == sorted(ids)
    created = [o["created_at"] for o in page1["orders"] + page2["orders"]]
    assert created == sorted(created, reverse=True)
    for oid in ids:
        api("DELETE", f"/orders/{oid}")
    canceled = api("GET", "/orders", params={"strategy_id": strategy, "status": "canceled"}).json()["orders"]
    assert len(canceled) == 3
    after = api("GET", "/orders", params={"strategy_id": strategy, "created_after": max(created)}).json()["orders"]
    assert after == []


def test_authentication(api):
    assert api("GET", "/orders", key=None).status_code == 401
    bad = api("GET", "/orders", key="not-a-real-key-at-all")
    assert bad.status_code == 401 and bad.json()["error"]["details"][0]["field"] == "X-API-Key"
    assert api("GET", "/health", key=None).status_code == 200
    assert api("GET", "/openapi.json", key=None).status_code == 200


def test_openapi_document_is_generated_from_the_models(api):
    doc = api("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/orders", "/orders/{order_id}", "/health", "/metrics"} <= set(doc["paths"])
    assert "OrderRequest" in doc["components"]["schemas"]
    assert "quantity" in doc["components"]["schemas"]["OrderRequest"]["properties"]


def test_metrics_as_json_and_prometheus_text(api):
    api("POST", "/orders", {**LIMIT, "client_order_id": cid(), "price": "51000"})
    data = api("GET", "/metrics").json()
    assert any(row["labels"].get("status") == "filled" for row in data["counters"]["orders"])
    text = api("GET", "/metrics", headers={"Accept": "text/plain"}).text
    assert "execution_orders_total{" in text and "execution_submit_latency_seconds_bucket" in text
    assert "execution_firestore_writes_total" in text


def test_unknown_order_is_404(api):
    for method in ("GET", "DELETE"):
        resp = api(method, "/orders/ord_doesnotexist")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert api("PUT", "/orders/ord_doesnotexist", {"price": "1"}).status_code == 404


BAD_BODIES = [
    ("not json", b"{not json", 400, "body"),
    ("array body", b"[1,2]", 422, "body"),
    ("missing strategy", {k: v for k, v in LIMIT.items() if k != "strategy_id"}, 422, "strategy_id"),
    ("unknown field", {**LIMIT, "leverage": 3}, 422, "leverage"),
    ("bad side", {**LIMIT, "side": "hold"}, 422, "side"),
    ("negative quantity", {**LIMIT, "quantity": "-1"}, 422, "quantity"),
    ("zero quantity", {**LIMIT, "quantity": "0"}, 422, "quantity"),
    ("NaN quantity", {**LIMIT, "quantity": "NaN"}, 422, "quantity"),
    ("text quantity", {**LIMIT, "quantity": "lots"}, 422, "quantity"),
    ("infinite price", {**LIMIT, "price": "Infinity"}, 422, "price"),
    ("limit without price", {**LIMIT, "price": None}, 422, "price"),
    ("market with price", {**LIMIT, "order_type": "market"}, 422, "price"),
    ("stop without stop price", {**LIMIT, "order_type": "stop", "price": None}, 422, "stop_price"),
    ("bad symbol", {**LIMIT, "symbol": "BTCUSDT"}, 422, "symbol"),
    ("unknown exchange", {**LIMIT, "exchange": "nasdaq"}, 422, "exchange"),
    ("bad order type", {**LIMIT, "order_type": "iceberg"}, 422, "order_type"),
    ("bad time in force", {**LIMIT, "time_in_force": "GTX"}, 422, "time_in_force"),
    ("GTD without expiry", {**LIMIT, "time_in_force": "GTD"}, 422, "expire_at"),
    ("GTD in the past", {**LIMIT, "time_in_force": "GTD", "expire_at": 1000}, 422, "expire_at"),
    ("post-only IOC", {**LIMIT, "post_only": True, "time_in_force": "IOC"}, 422, "post_only"),
    ("client id too long", {**LIMIT, "client_order_id": "x" * 40}, 422, "client_order_id"),
    ("client id bad chars", {**LIMIT, "client_order_id": "a b"}, 422, "client_order_id"),
    ("zero slippage bound", {**LIMIT, "max_slippage_bps": "0"}, 422, "max_slippage_bps"),
    ("tags not strings", {**LIMIT, "tags": {"a": {"b": 1}}}, 422, "tags"),
]


@pytest.mark.parametrize(("name", "body", "status", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_order_input_is_a_4xx_naming_the_field(api, name, body, status, field):
    resp = api("POST", "/orders", body)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] and err["message"]
    fields = [d["field"] for d in err["details"]]
    assert any(field in f for f in fields), fields


BAD_QUERIES = [
    ({"status": "sleeping"}, "status"),
    ({"limit": "501"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "garbage!"}, "cursor"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"color": "red"}, "color"),
]


@pytest.mark.parametrize(("params", "field"), BAD_QUERIES, ids=[f for _, f in BAD_QUERIES])
def test_bad_list_queries_are_422_naming_the_parameter(api, params, field):
    resp = api("GET", "/orders", params=params)
    assert resp.status_code == 422, resp.text
    assert any(d["field"] == field for d in resp.json()["error"]["details"])


def test_bad_modify_bodies(api):
    order = api("POST", "/orders", {**LIMIT, "client_order_id": cid()}).json()
    wait_status(api, order["order_id"], {"accepted"})
    assert api("PUT", f"/orders/{order['order_id']}", {}).status_code == 422
    assert api("PUT", f"/orders/{order['order_id']}", {"price": "-5"}).status_code == 422
    assert api("PUT", f"/orders/{order['order_id']}", {"side": "sell"}).status_code == 422
    api("DELETE", f"/orders/{order['order_id']}")


def test_rate_limit_answers_429(stack, spawn_function, http, tmp_path):
    key = f"rate-limit-{uuid.uuid4().hex}"  # its own key: the window is shared with every other caller of that key
    url = spawn_function("api", API_RATE_LIMIT="3", **key_file_env(tmp_path, key))
    codes = [http.get(f"{url}/api/v1/orders", headers={"X-API-Key": key}, timeout=10).status_code for _ in range(8)]
    assert 429 in codes and codes[0] == 200


def test_routes_list_venues_by_symbols_with_fees_status_latency_and_top_of_book(api):
    routes = api("GET", "/routes").json()["routes"]
    pairs = {(r["venue"], r["symbol"]) for r in routes}
    assert {(v, s) for v in ("binance", "coinbase", "kraken") for s in ("BTC/USDT", "ETH/USDT")} <= pairs
    for r in routes:
        assert r["healthy"] is True and Decimal(r["taker_fee"]) > 0
        assert Decimal(r["best_bid"]) < Decimal(r["best_ask"]) and Decimal(r["spread_bps"]) > 0
        assert r["latency_ms_p50"] is not None
    fees = {r["venue"]: Decimal(r["taker_fee"]) for r in routes if r["symbol"] == "BTC/USDT"}
    assert len(set(fees.values())) == 3


def test_optimize_allocates_across_venues_and_beats_the_best_single_venue(api, stack):
    # More than any one venue's book shows (sized from the books now: earlier tests trade them down): only a
    # router can fill it all.
    bids = {v: sum(lv.quantity for lv in VenueClient(v, url, session()).book("BTC/USDT", 100).bids)
            for v, url in stack.adapters.items()}
    deepest = max(bids.values())
    rest = sum(bids.values()) - deepest
    assert rest > 1, bids
    quantity = (deepest + min(rest / 2, Decimal(5))).quantize(Decimal("0.001"))
    resp = api("POST", "/routes/optimize", {"side": "sell", "symbol": "BTC/USDT", "quantity": str(quantity),
                                            "depth": 100})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    smart, single, optimum = body["allocation"], body["best_single_venue"], body["consolidated_optimum"]
    assert sum(Decimal(s["quantity"]) for s in smart["slices"]) == Decimal(smart["total_quantity"])
    assert len({s["venue"] for s in smart["slices"]}) >= 2, (bids, quantity, body)
    assert Decimal(smart["total_quantity"]) > Decimal(single["total_quantity"])
    unit = {k: Decimal(a["total_cost"]) / Decimal(a["total_quantity"]) for k, a in
            (("smart", smart), ("optimum", optimum))}
    assert unit["optimum"] >= unit["smart"]  # a sell: the optimum's proceeds per unit are the upper bound
    bad = api("POST", "/routes/optimize", {"side": "buy", "symbol": "DOGE/USDT", "quantity": "1"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "symbol"
    assert api("POST", "/routes/optimize", {"side": "buy", "symbol": "BTC/USDT", "quantity": "-1"}).status_code == 422


def test_market_orders_go_out_as_ioc_limits_collared_by_the_slippage_bound(api, stack):
    sim = stack.simulators["binance"]
    requests.post(f"{sim}/admin/market", json={"paused": True}, timeout=5)  # the book holds still meanwhile
    market = {**LIMIT, "order_type": "market", "price": None}
    filled = api("POST", "/orders", {**market, "client_order_id": cid()}).json()
    done = wait_status(api, filled["order_id"], {"filled", "expired"})
    assert done["status"] == "filled" and done["arrival_mid"] is not None
    assert done["time_in_force"] == "GTC" and done["order_type"] == "market"  # the record keeps what was asked
    # A bound tighter than half the spread: the collared IOC cannot trade, and nothing fills beyond the bound.
    tight = api("POST", "/orders", {**market, "client_order_id": cid(), "max_slippage_bps": "0.0001"}).json()
    capped = wait_status(api, tight["order_id"], {"filled", "expired", "canceled"})
    requests.post(f"{sim}/admin/market", json={"paused": False}, timeout=5)
    assert capped["status"] == "expired" and capped["filled_quantity"] == "0"


def test_a_price_sent_as_a_json_number_keeps_every_digit_in_the_record(api, stack):
    """12345.123456789012345678 as a float is 12345.123456789011: the body must never be parsed through one."""
    from google.cloud import firestore

    price = "12345.123456789012345678"
    # A SmartRouter parent (its children fit the venue's tick): the record keeps the price exactly as sent.
    body = json.dumps({**LIMIT, "exchange": "smart", "client_order_id": cid(), "price": 0}).replace(
        '"price": 0', f'"price": {price}')
    resp = api("POST", "/orders", body)
    assert resp.status_code == 201, resp.text
    order_id = resp.json()["order_id"]
    assert resp.json()["price"] == price
    assert api("GET", f"/orders/{order_id}").json()["price"] == price
    stored = firestore.Client(project=stack.project).collection("orders").document(order_id).get().to_dict()
    assert stored["price"] == price
    api("DELETE", f"/orders/{order_id}")


# ---- the venue's rules at intake (simulated binance BTC/USDT: tick 0.01, lot 0.00001, min notional 5) -----
VENUE_MISFITS = [
    ("quantity finer than the lot", {"quantity": "0.000015"}, "quantity", "lot size 0.00001"),
    ("price finer than the tick", {"price": "40000.005"}, "price", "tick size 0.01"),
    ("below the minimum notional", {"quantity": "0.0001"}, "quantity", "minimum notional 5"),
    ("above the maximum quantity", {"quantity": "9000.5"}, "quantity", "maximum quantity 9000"),
    ("stop price finer than the tick", {"order_type": "stop_limit", "side": "sell", "price": "60000",
                                        "stop_price": "59000.001"}, "stop_price", "tick size 0.01"),
]


@pytest.mark.parametrize(("name", "change", "field", "rule"), VENUE_MISFITS, ids=[m[0] for m in VENUE_MISFITS])
def test_an_order_the_venue_cannot_take_is_a_422_naming_the_field_and_the_rule(api, name, change, field, rule):
    client_order_id = cid()
    resp = api("POST", "/orders", {**LIMIT, "client_order_id": client_order_id, **change})
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "invalid_order"
    assert any(d["field"] == field and rule in d["issue"] and "binance" in d["issue"] for d in err["details"]), err
    assert api("GET", f"/orders/{order_id_for(LIMIT['strategy_id'], client_order_id)}").status_code == 404  # nothing recorded
