"""The order-events contract on the stack: every message seen on the topic during orders' lives (a filled order,
a cancelled one, a SmartRouter parent and its children, a signal rejected before it became an order) validates
against docs/events.schema.json, with quantities, prices and fees as exact JSON numbers equal to the record's."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from pathlib import Path

import jsonschema

from tests.integration.conftest import wait_for

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ORDER = {"strategy_id": "contract", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01",
         "order_type": "limit"}


def _terminal(order: dict) -> bool:
    return order["status"] in ("filled", "canceled", "rejected", "expired")


def test_every_event_of_an_orders_life_fits_the_published_schema(stack, api, tap, publisher):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    run = uuid.uuid4().hex[:10]
    filled = api("POST", "/orders", {**ORDER, "client_order_id": f"fill-{run}", "price": "51000"}).json()
    resting = api("POST", "/orders", {**ORDER, "client_order_id": f"rest-{run}", "price": "40000"}).json()
    smart = api("POST", "/orders", {**ORDER, "exchange": "smart", "client_order_id": f"smart-{run}",
                                    "quantity": "0.02", "price": "51000", "time_in_force": "IOC"}).json()
    wait_for(api, resting["order_id"], lambda o: o["status"] == "accepted", 60)
    assert api("DELETE", f"/orders/{resting['order_id']}").status_code == 200
    bad_signal = {**ORDER, "signal_id": f"sig-{run}", "price": "51000", "quantity": "lots"}
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}",
                      json.dumps(bad_signal).encode()).result(timeout=10)

    ids = {filled["order_id"], resting["order_id"], smart["order_id"]}
    final = {oid: wait_for(api, oid, _terminal, 90) for oid in ids}

    def seen_all(ms: list[dict]) -> bool:
        ended = {m["data"].get("order_id") for m in ms if m["data"].get("status") in ("filled", "canceled")}
        rejected = any(m["data"].get("signal_id") == bad_signal["signal_id"] for m in ms)
        return ids <= ended and rejected and any(m["data"].get("parent_id") == smart["order_id"] for m in ms)

    got = events.collect(seen_all, timeout=90)
    assert seen_all(got), [m["data"] for m in got]

    for m in got:  # every message on the topic, whoever's
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in VALIDATOR.iter_errors(json.loads(m["raw"]))]
        assert not errors, (m["raw"], errors)

    mine = [m for m in got if m["data"].get("order_id") in ids]
    for m in mine:  # numbers on the wire, never strings
        for name in ("filled_quantity", "commission", "quantity", "remaining_quantity"):
            assert re.search(rb'"%s":-?[0-9]' % name.encode(), m["raw"]), (name, m["raw"])
    for oid, order in final.items():
        last = max((m["data"] for m in mine if m["data"]["order_id"] == oid), key=lambda e: e["sequence"])
        assert last["status"] == order["status"]
        assert last["filled_quantity"] == Decimal(order["filled_quantity"])
        assert last["commission"] == Decimal(order["commission"])
        assert last["average_price"] == (Decimal(order["average_price"]) if order["average_price"] else None)
    assert final[filled["order_id"]]["status"] == "filled" and final[resting["order_id"]]["status"] == "canceled"
    assert any(m["data"].get("algorithm") == "smart" for m in mine)

    [rejected] = [m["data"] for m in got if m["data"].get("signal_id") == bad_signal["signal_id"]]
    assert rejected["status"] == "rejected" and rejected["order_id"] is None
    assert (rejected["filled_quantity"], rejected["quantity"], rejected["average_price"]) == (0, 0, None)
    assert rejected["strategy_id"] == "contract" and "quantity" in rejected["reason"]
