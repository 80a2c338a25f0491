"""Algorithms end to end: slices as Cloud Tasks, children through the normal order path, parents aggregating."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest
import requests

from shared.infra.venues import VenueClient, session
from tests.integration.conftest import wait_for

WINDOW_S = 15  # TWAP and VWAP windows here: three slices 5 s apart
GRACE_MS = 3_000  # a parent may end this long after its window (the last IOC children's answers, one poll)


@pytest.fixture(scope="module", autouse=True)
def no_slice_left_behind(stack):
    """After this module, wait until the slice queue is empty: a slice scheduled before its parent ended still
    runs (and reads the parent), and must not count against the next module's Firestore cost checks."""
    yield
    from shared.infra import clients

    queue = clients.tasks().queue_path(stack.project, stack.env["TASKS_LOCATION"], stack.env["SLICES_QUEUE"])
    deadline = time.monotonic() + 30
    while list(clients.tasks().list_tasks(parent=queue)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(clients.tasks().list_tasks(parent=queue)), "slices still queued 30 s after the last test"


def _terminal(o: dict) -> bool:
    return o["status"] in ("filled", "canceled", "rejected", "expired")


@pytest.fixture(scope="module")
def scheduled(api, stack) -> dict[str, dict]:
    """TWAP (taker and maker), VWAP and POV parents started together from the REST API, each followed to its end.

    TWAP buys 4.5 BTC on coinbase in three slices: each slice wants 1.5 or more, and coinbase's whole ask side holds
    about 1.1 (12 levels from ~0.15 BTC, decaying), so its IOC children come back short and the remainder must be
    carried into later slices. The maker TWAP trades on kraken with kraken's market frozen: its post-only bids
    rest at a touch that cannot move away or be reached, so they must be re-priced, and the catch-up must take."""
    coinbase = VenueClient("coinbase", stack.adapters["coinbase"], session())
    touch = coinbase.book("BTC/USDT", 1).asks[0].price
    kraken = stack.simulators["kraken"]
    base = {"strategy_id": "algo-sched", "symbol": "BTC/USDT", "side": "buy", "order_type": "limit"}
    bodies = {
        # its limit well above the touch: the market walks during the window, and a later slice whose touch has
        # moved past the limit sends nothing (its remainder is then never sent again, for another reason)
        "twap": {**base, "exchange": "coinbase", "quantity": "4.5", "price": str(touch + 100),
                 "algorithm": "twap", "algorithm_params": {"duration_s": WINDOW_S, "slices": 3}},
        "maker": {**base, "exchange": "kraken", "quantity": "0.5", "price": "60000",
                  "algorithm": "twap", "algorithm_params": {"duration_s": WINDOW_S, "slices": 3, "mode": "maker",
                                                            "reprice_after_s": 2}},
        "vwap": {**base, "exchange": "binance", "quantity": "0.3", "price": "60000",
                 "algorithm": "vwap", "algorithm_params": {"duration_s": WINDOW_S, "slices": 3,
                                                           "max_participation": "0.5"}},
        "pov": {**base, "exchange": "binance", "quantity": "0.3", "price": "60000",
                "algorithm": "pov", "algorithm_params": {"target_rate": "0.1", "interval_s": 2}},
    }
    ids = {}
    requests.post(f"{kraken}/admin/market", json={"paused": True}, timeout=5).raise_for_status()
    try:
        for name, body in bodies.items():
            resp = api("POST", "/orders", body)
            assert resp.status_code == 201, resp.text
            ids[name] = resp.json()["order_id"]
        return {name: wait_for(api, oid, _terminal, timeout=WINDOW_S + 30) for name, oid in ids.items()}
    finally:
        requests.post(f"{kraken}/admin/market", json={"paused": False}, timeout=5).raise_for_status()


def _children(parent: dict) -> list[dict]:
    return parent["progress"]["children"]


def test_twap_carries_short_fills_forward_and_ends_inside_its_window(scheduled):
    twap = scheduled["twap"]
    assert _terminal(twap), twap
    children = _children(twap)
    sent = sum(Decimal(c["quantity"]) for c in children)
    filled = sum(Decimal(c["filled_quantity"]) for c in children)
    assert any(Decimal(c["filled_quantity"]) < Decimal(c["quantity"]) for c in children), children  # short
    assert sent > Decimal("4.5"), f"the short children's remainders were not sent again: {children}"
    assert Decimal(twap["filled_quantity"]) == filled <= Decimal("4.5")
    assert len({c["slice"] for c in children}) >= 2, children  # spread over slices, not sent at once
    assert twap["terminal_at"] - twap["created_at"] <= WINDOW_S * 1000 + GRACE_MS, twap
    if twap["status"] == "canceled":
        assert "unfilled" in twap["reason"], twap


def test_maker_twap_rests_post_only_at_the_touch_reprices_and_catches_up(scheduled, api):
    twap = scheduled["maker"]
    assert twap["status"] == "filled", twap
    assert twap["terminal_at"] - twap["created_at"] <= WINDOW_S * 1000 + GRACE_MS, twap
    children = [api("GET", f"/orders/{c['order_id']}").json() for c in _children(twap)]
    resting = [c for c in children if c["post_only"] and c["time_in_force"] == "GTC"]
    assert resting and all(Decimal(c["filled_quantity"]) == 0 for c in resting), children  # nobody sold to them
    assert all(c["status"] == "canceled" for c in resting), [c["status"] for c in resting]  # re-priced, then caught up
    # the catch-up takes what is left (what a cancel still holds follows one call later)
    takers = [c for c in children if not c["post_only"]]
    assert takers and all(c["time_in_force"] == "IOC" for c in takers), takers
    assert sum(Decimal(c["filled_quantity"]) for c in takers) == Decimal("0.5")


def test_vwap_fills_inside_its_window_under_its_participation_cap(scheduled):
    vwap = scheduled["vwap"]
    assert vwap["status"] == "filled", vwap
    assert vwap["terminal_at"] - vwap["created_at"] <= WINDOW_S * 1000 + GRACE_MS, vwap
    children = _children(vwap)
    assert len(children) >= 2 and sum(Decimal(c["filled_quantity"]) for c in children) == Decimal("0.3")


def test_pov_trades_a_share_of_the_market_tape(scheduled, stack):
    pov = scheduled["pov"]
    assert pov["status"] == "filled", pov
    children = _children(pov)
    assert len(children) >= 2, children  # followed the market in steps, not all at once
    binance = VenueClient("binance", stack.adapters["binance"], session())
    tape = binance.trades("BTC/USDT", pov["created_at"], pov["terminal_at"])
    market = sum(t.quantity for t in tape.trades)
    assert market > 0
    share = Decimal(pov["filled_quantity"]) / market
    assert share <= Decimal("0.35"), f"POV at 10% took {share:.0%} of {market} traded"


def test_algorithms_from_signals_run_end_to_end(stack, publisher, tap, api):
    """TWAP, VWAP, POV and Iceberg parents made from signals (the same intake as any order)."""
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    topic = f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}"
    base = {"strategy_id": "algo-sig", "exchange": "binance", "symbol": "BTC/USDT", "side": "sell",
            "quantity": 0.2, "order_type": "limit", "price": 40000, "time_in_force": "GTC"}
    params = {"twap": {"duration_s": 10, "slices": 2}, "vwap": {"duration_s": 10, "slices": 2},
              "pov": {"target_rate": 0.2, "interval_s": 1}, "iceberg": {"display_quantity": 0.1, "limit_price": 40000}}
    signals = {name: f"sig_{name}_{uuid.uuid4().hex[:10]}" for name in params}
    for name, signal_id in signals.items():
        publisher.publish(topic, json.dumps({**base, "signal_id": signal_id, "algorithm": name,
                                             "algorithm_params": params[name]}).encode()).result(timeout=10)

    def parents_filled(ms: list[dict]) -> bool:
        done = {m["data"].get("signal_id") for m in ms
                if m["data"].get("status") == "filled" and m["data"].get("algorithm") in params}
        return set(signals.values()) <= done

    got = events.collect(parents_filled, timeout=40)
    for name, signal_id in signals.items():
        final = [m["data"] for m in got if m["data"].get("signal_id") == signal_id and m["data"].get("algorithm")]
        if not (final and final[-1]["status"] == "filled"):
            parent = api("GET", f"/orders/{final[-1]['order_id']}").json() if final else None
            pytest.fail(f"{name} did not fill: {parent}")
        assert final[-1]["algorithm"] == name
        assert Decimal(final[-1]["filled_quantity"]) == Decimal("0.2")

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
    assert parent["progress"]["filled_pct"] == "100.00" and parent["slices_done"] >= 1  # a Decimal, as text


def test_a_signal_without_an_exchange_goes_to_the_smart_router(stack, publisher, tap):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal_id = f"sig_{uuid.uuid4().hex[:12]}"
    signal = {"signal_id": signal_id, "strategy_id": "algo-it", "symbol": "BTC/USDT", "side": "sell",
              "quantity": 0.5, "order_type": "limit", "price": 49000, "time_in_force": "GTC"}
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}",
                      json.dumps(signal).encode()).result(timeout=10)
    got = events.collect(lambda ms: any(m["data"].get("signal_id") == signal_id and m["data"]["status"] == "filled"
                                        and m["data"]["exchange"] == "smart" for m in ms), timeout=30)
    parent_events = [m["data"] for m in got
                     if m["data"].get("signal_id") == signal_id and m["data"]["exchange"] == "smart"]
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


def test_cancelling_a_parent_stops_its_slices_and_cancels_working_children(api, stack, http):
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
    # the closed parent folds its children's last state (working_quantity from its own record falls to 0)
    after = wait_for(api, order_id, lambda o: all(c["status"] == "canceled" for c in o["progress"]["children"])
                     and Decimal(str(o["progress"]["working_quantity"])) == 0)
    assert all(c["status"] == "canceled" for c in after["progress"]["children"])
    slices = after["slices_done"]
    time.sleep(2)
    assert api("GET", f"/orders/{order_id}").json()["slices_done"] == slices  # no slice after the cancel
    # a slice task that arrives late, after the cancel, does nothing
    late = http.post(stack.env["SLICES_FUNCTION_URL"], json={"order_id": order_id, "slice_index": slices}, timeout=30)
    assert late.status_code == 200
    final = api("GET", f"/orders/{order_id}").json()
    assert final["version"] == after["version"] and len(final["progress"]["children"]) == len(
        after["progress"]["children"])


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


def test_smart_router_leaves_a_gtc_remainder_resting_until_the_parent_is_cancelled(api):
    # a buy far under the market: nothing fills in the rounds, so all of it rests on the lowest maker fee
    fees = {r["venue"]: Decimal(r["maker_fee"]) for r in api("GET", "/routes").json()["routes"]
            if r["symbol"] == "BTC/USDT"}
    cheapest = min(fees, key=fees.__getitem__)
    resp = api("POST", "/orders", {"strategy_id": "algo-it", "exchange": "smart", "symbol": "BTC/USDT",
                                   "side": "buy", "quantity": "0.2", "order_type": "limit", "price": "45000",
                                   "time_in_force": "GTC", "max_slippage_bps": "2000",
                                   "algorithm_params": {"rounds": 1}})
    assert resp.status_code == 201, resp.text
    order_id = resp.json()["order_id"]
    parent = wait_for(api, order_id, lambda o: any(c["status"] == "accepted" for c in o["progress"]["children"]))
    resting = [c for c in parent["progress"]["children"] if c["status"] == "accepted"]
    assert len(resting) == 1 and resting[0]["exchange"] == cheapest, (fees, parent["progress"])
    assert Decimal(resting[0]["quantity"]) == Decimal("0.2") and Decimal(resting[0]["price"]) == Decimal("45000")
    assert parent["status"] == "accepted" and any("left resting" in n for n in parent["progress"]["notes"])
    time.sleep(6)  # a later check leaves it as it is: no second resting child
    again = api("GET", f"/orders/{order_id}").json()
    assert [c["order_id"] for c in again["progress"]["children"] if c["status"] == "accepted"] == \
        [resting[0]["order_id"]] and again["status"] == "accepted"
    assert api("DELETE", f"/orders/{order_id}").json()["status"] == "canceled"
    after = wait_for(api, order_id, lambda o: all(c["status"] == "canceled" for c in o["progress"]["children"]))
    assert all(c["status"] == "canceled" for c in after["progress"]["children"]), after["progress"]
