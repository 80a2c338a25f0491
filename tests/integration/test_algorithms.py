"""Algorithms end to end: slices as Cloud Tasks, children through the normal order path, parents aggregating."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal


from tests.integration.conftest import wait_for






def test_smart_router_sweeps_several_venues_and_the_parent_aggregates(api):
    # More than the cheapest venue's whole book (binance shows ~40 BTC of bids): the rest goes elsewhere.
    resp = api("POST", "/orders", {"strategy_id": "algo-it", "exchange": "smart", "symbol": "BTC/USDT",
                                   "side": "sell", "quantity": "45", "order_type": "limit", "price": "49000",
                                   "client_order_id": f"smart-{uuid.uuid4().hex[:20]}"})
    assert resp.status_code == 201, resp.text
    parent = wait_for(api, resp.json()["order_id"], lambda o: o["status"] in ("filled", "canceled"))
    assert parent["algorithm"] == "smart" and parent["status"] == "filled", parent
    children = parent["progress"]["children"]
    assert len({c["exchange"] for c in children}) >= 2
    assert sum(Decimal(c["filled_quantity"]) for c in children) == Decimal("45")
    assert Decimal(parent["filled_quantity"]) == Decimal("45")
    assert Decimal(parent["commission"]) == sum(Decimal(c["commission"]) for c in children)
    assert parent["progress"]["filled_pct"] == 100.0 and parent["slices_done"] >= 1


def test_a_signal_without_an_exchange_goes_to_the_smart_router(stack, publisher, tap):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal_id = f"sig_{uuid.uuid4().hex[:12]}"
    signal = {"signal_id": signal_id, "strategy_id": "algo-it", "symbol": "BTC/USDT", "side": "sell",
              "quantity": 0.5, "order_type": "limit", "price": 49000, "time_in_force": "GTC"}
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}",
                      json.dumps(signal).encode()).result(timeout=10)
    got = events.collect(lambda ms: any(m["data"].get("signal_id") == signal_id and m["data"]["status"] == "filled"
                                        and m["data"]["exchange"] == "smart" for m in ms), timeout=30)
    parent_events = [m["data"] for m in got if m["data"].get("signal_id") == signal_id and m["data"]["exchange"] == "smart"]
    assert parent_events and parent_events[-1]["status"] == "filled"
    assert Decimal(parent_events[-1]["filled_quantity"]) == Decimal("0.5")


def test_iceberg_shows_one_display_slice_at_a_time_and_completes(api):
    resp = api("POST", "/orders", {"strategy_id": "algo-it", "exchange": "binance", "symbol": "BTC/USDT",
                                   "side": "buy", "quantity": "0.3", "order_type": "limit", "price": "51000",
                                   "algorithm": "iceberg",
                                   "algorithm_params": {"display_quantity": "0.1", "limit_price": "51000"}})
    assert resp.status_code == 201, resp.text
    parent = wait_for(api, resp.json()["order_id"], lambda o: o["status"] in ("filled", "canceled"), timeout=40)
    assert parent["status"] == "filled", parent
    children = parent["progress"]["children"]
    assert len(children) >= 3 and all(Decimal(c["quantity"]) <= Decimal("0.1") for c in children)


def test_cancelling_a_parent_stops_its_slices_and_cancels_working_children(api):
    resp = api("POST", "/orders", {"strategy_id": "algo-it", "exchange": "binance", "symbol": "BTC/USDT",
                                   "side": "buy", "quantity": "0.3", "order_type": "limit", "price": "40000",
                                   "algorithm": "iceberg",
                                   "algorithm_params": {"display_quantity": "0.1", "limit_price": "40000"}})
    order_id = resp.json()["order_id"]
    working = wait_for(api, order_id, lambda o: any(c["status"] == "accepted"
                                                    for c in (o.get("progress") or {}).get("children", [])))
    assert working["progress"]["children"], working
    canceled = api("DELETE", f"/orders/{order_id}").json()
    assert canceled["status"] == "canceled"
    after = wait_for(api, order_id, lambda o: all(c["status"] == "canceled" for c in o["progress"]["children"]))
    assert all(c["status"] == "canceled" for c in after["progress"]["children"])
    slices = after["slices_done"]
    time.sleep(2)
    assert api("GET", f"/orders/{order_id}").json()["slices_done"] == slices  # no slice after the cancel


def test_bad_algorithm_params_are_422_naming_the_parameter(api):
    base = {"strategy_id": "algo-it", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
            "quantity": "1", "order_type": "limit", "price": "40000"}
    for algorithm, params, field in [("twap", {"duration_s": 5}, "algorithm_params.duration_s"),
                                     ("iceberg", {}, "algorithm_params.display_quantity"),
                                     ("teleport", {}, "algorithm")]:
        resp = api("POST", "/orders", {**base, "algorithm": algorithm, "algorithm_params": params})
        assert resp.status_code == 422, resp.text
        assert field in [d["field"] for d in resp.json()["error"]["details"]], resp.json()


def test_a_duplicated_slice_task_does_nothing(api, stack, http):
    resp = api("POST", "/orders", {"strategy_id": "algo-it", "exchange": "smart", "symbol": "BTC/USDT", "side": "buy",
                                   "quantity": "0.2", "order_type": "limit", "price": "51000"})
    parent = wait_for(api, resp.json()["order_id"], lambda o: o["status"] in ("filled", "canceled"))
    children = len(parent["progress"]["children"])
    for index in range(parent["slices_done"]):  # every slice again, as an at-least-once queue may deliver them
        again = http.post(stack.env["SLICES_FUNCTION_URL"], json={"order_id": parent["order_id"],
                                                                  "slice_index": index}, timeout=30)
        assert again.status_code == 200
    after = api("GET", f"/orders/{parent['order_id']}").json()
    assert len(after["progress"]["children"]) == children and after["version"] == parent["version"]


def test_an_injected_venue_fault_mid_algorithm_is_survived(api, stack):
    sim = stack.simulators["binance"]
    import requests

    resp = api("POST", "/orders", {"strategy_id": "algo-it", "exchange": "binance", "symbol": "BTC/USDT",
                                   "side": "buy", "quantity": "0.3", "order_type": "limit", "price": "51000",
                                   "algorithm": "iceberg",
                                   "algorithm_params": {"display_quantity": "0.1", "limit_price": "51000"}})
    order_id = resp.json()["order_id"]
    wait_for(api, order_id, lambda o: len((o.get("progress") or {}).get("children", [])) >= 1)
    requests.post(f"{sim}/admin/faults", json={"reject_next": 1}, timeout=5)  # the next tranche is refused
    try:
        parent = wait_for(api, order_id, lambda o: o["status"] in ("filled", "canceled"), timeout=40)
    finally:
        requests.post(f"{sim}/admin/faults", json={"clear": True}, timeout=5)
    assert parent["status"] == "filled", parent
    statuses = [c["status"] for c in parent["progress"]["children"]]
    assert "rejected" in statuses and statuses.count("filled") >= 3
