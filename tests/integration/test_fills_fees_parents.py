"""Fills, fees and parents against the venue's own books (issue 10): a fill the venue reports late still reaches
the record, fees are kept per currency as the venue charged them, and a parent with more than 500 children never
executes more than it was given. Every check compares the record with what the simulated venue lists for the
service's account (``venue_truth``), waiting for conditions with generous deadlines."""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal
from typing import Iterator

import pytest

from shared.adapters.ccxt_venue import build_exchange
from tests.integration.conftest import wait_for
from tests.integration.venue_truth import D, Venue, disagreement, until


@pytest.fixture(scope="module")
def venues(stack) -> dict[str, Venue]:
    return {name: Venue(name, url) for name, url in stack.simulators.items()}


@pytest.fixture
def binance(venues) -> Iterator[Venue]:
    v = venues["binance"]
    yield v
    v.admin("faults", {"clear": True})
    v.admin("market", {"paused": False})


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _terminal(o: dict) -> bool:
    return o["status"] in ("filled", "canceled", "rejected", "expired")


# ---- 4. a late fill after a cancel --------------------------------------------------------------------------
LAG_MS = 5_000


def test_a_fill_the_trades_list_reports_after_the_cancel_reaches_the_record(api, stack, binance, tap):
    """The venue answers the cancel with a cumulative filled quantity (0.007) ahead of its trades list (which
    lags LAG_MS: the simulator's `trades_lag_ms`). The record must not close at the fills it can see: it ends
    cancelled with all 0.007 filled, every fill the venue made, and no event ever says it closed with less."""
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    binance.admin("market", {"paused": True})  # the book holds still: our bid is the best, only our taker trades
    taker = build_exchange("binance", api_url=binance.url, api_key=f"taker-{_tag()}", secret="x", rate_limit_ms=0)
    bid, _ = binance.touch()
    strategy, cid = "latefill", f"lf-{_tag()}"
    placed = api("POST", "/orders", {"strategy_id": strategy, "client_order_id": cid, "exchange": "binance",
                                     "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01", "order_type": "limit",
                                     "price": str(bid + D("0.01"))})
    assert placed.status_code == 201, placed.text
    oid = placed.json()["order_id"]
    assert wait_for(api, oid, lambda o: o["status"] == "accepted", 60)["status"] == "accepted"
    taker.create_order("BTC/USDT", "market", "sell", 0.004)
    first = wait_for(api, oid, lambda o: o["filled_quantity"] == "0.004", 60)
    assert first["filled_quantity"] == "0.004", first

    binance.admin("faults", {"trades_lag_ms": LAG_MS})
    taker.create_order("BTC/USDT", "market", "sell", 0.003)
    cancel = api("DELETE", f"/orders/{oid}")
    assert cancel.status_code == 200, cancel.text
    at_cancel = cancel.json()
    assert not (at_cancel["status"] == "canceled" and at_cancel["filled_quantity"] != "0.007"), at_cancel

    final = wait_for(api, oid, lambda o: _terminal(o) and o["filled_quantity"] == "0.007", LAG_MS / 1000 + 90)
    vo = binance.by_client_id([final["venue_client_order_id"]])[final["venue_client_order_id"]]
    assert disagreement(final, vo) is None, (disagreement(final, vo), final)
    assert final["status"] == "canceled" and final["filled_quantity"] == "0.007", final
    trades = binance.trades(vo[0]["orderId"])
    assert sorted(str(t["id"]) for t in trades) == sorted(f["trade_id"] for f in final["fills"]), (trades, final)
    assert sum(D(f["quantity"]) for f in final["fills"]) == D("0.007")

    got = events.collect(lambda ms: any(m["data"].get("order_id") == oid and m["data"].get("status") == "canceled"
                                        for m in ms), timeout=60)
    closed = [m["data"] for m in got if m["data"].get("order_id") == oid
              and m["data"].get("status") in ("canceled", "filled", "expired", "rejected")]
    assert closed, [m["data"] for m in got if m["data"].get("order_id") == oid]
    assert {e["filled_quantity"] for e in closed} == {D("0.007")}, closed  # never closed short of the venue


# ---- 5. mixed fee currencies ----------------------------------------------------------------------------------
def test_fees_in_base_and_quote_currency_are_kept_per_currency_as_the_venue_charged(api, venues):
    """The simulated venues charge a buyer in the base currency (BTC) and a seller in the quote currency (USDT).
    A buy and a sell on each of two venues: each record's `commissions` equal the venue's fees per currency (from
    the venue's own trades list), and `commission` follows the documented rule: quote fees plus base fees valued
    at their fill's price."""
    strategy = f"fees-{_tag()}"
    ids = {}
    for venue in ("binance", "coinbase"):
        bid, ask = venues[venue].touch()
        for side, price in (("buy", (ask * D("1.01")).quantize(D(1))), ("sell", (bid * D("0.99")).quantize(D(1)))):
            resp = api("POST", "/orders", {"strategy_id": strategy, "client_order_id": f"f-{side}-{_tag()}",
                                           "exchange": venue, "symbol": "BTC/USDT", "side": side,
                                           "quantity": "0.02", "order_type": "limit", "price": str(price)})
            assert resp.status_code == 201, resp.text
            ids[(venue, side)] = resp.json()["order_id"]
    for (venue, side), oid in ids.items():
        record = wait_for(api, oid, _terminal, 60)
        assert record["status"] == "filled", record
        vo = venues[venue].by_client_id([record["venue_client_order_id"]])[record["venue_client_order_id"]]
        assert disagreement(record, vo) is None, disagreement(record, vo)
        trades = venues[venue].trades(vo[0]["orderId"])
        fees: dict[str, Decimal] = {}
        for t in trades:
            fees[t["commissionAsset"]] = fees.get(t["commissionAsset"], D(0)) + D(t["commission"])
        assert set(fees) == {"BTC" if side == "buy" else "USDT"}, (venue, side, trades)
        assert {k: D(v) for k, v in record["commissions"].items()} == fees, (venue, side, record["commissions"], fees)
        in_quote = sum((D(t["commission"]) * (D(t["price"]) if t["commissionAsset"] == "BTC" else 1) for t in trades),
                       D(0))
        assert D(record["commission"]) == in_quote, (venue, side, record["commission"], in_quote)


# ---- 7. a parent with more than 500 children -----------------------------------------------------------------
# More than 500 children do not fit a test run on this stack: the iceberg sends one tranche when the last one
# ended and slices come 1 s apart (two or three slices per child, each 1-2 s on a loaded 2-core machine), so
# 510 children take 15-60 minutes. The default is the closest honest size for the suite; INTEGRITY_PARENT_CHILDREN=510 runs the
# full case (with INTEGRITY_PARENT_TIMEOUT_S raised to match). Run in full on 2026-12-02 (beside a 10k-order sweep
# bench, load 9-17): INTEGRITY_PARENT_CHILDREN=510 INTEGRITY_PARENT_TIMEOUT_S=4500 ./scripts/test.sh
# tests/integration/test_fills_fees_parents.py -k many_children: passed in 17 min 50 s.
CHILDREN = int(os.environ.get("INTEGRITY_PARENT_CHILDREN", "30"))
PARENT_TIMEOUT_S = int(os.environ.get("INTEGRITY_PARENT_TIMEOUT_S", "240"))
CLIP = D("0.0001")  # the venue's minimum at ~50,000 (minimum notional 5): one tranche per child


def _children(api, parent_id: str) -> list[dict]:
    out: list[dict] = []
    cursor = None
    while True:
        params = {"parent_id": parent_id, "limit": 500, **({"cursor": cursor} if cursor else {})}
        resp = api("GET", "/orders", params=params)
        assert resp.status_code == 200, resp.text
        out += resp.json()["orders"]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            return out


@pytest.mark.timeout(PARENT_TIMEOUT_S + 180)
def test_a_parent_with_many_children_never_over_executes(api, venues):
    """An iceberg buying CHILDREN clips of the venue's minimum, one tranche (a marketable child that fills at
    once) after the other, driven only by its own slice tasks. Afterwards: CHILDREN children; their fills, as the
    venue lists them, add up to the parent's filled quantity, which is its quantity and no more.

    (Delivering the slice task by hand as well, to go faster, made the deliveries and the children's updates
    contend for the parent: slice tasks answered 500 on Contended and some took over 60 s. Reported, not tested
    here: the lead is changing how a parent is written.)"""
    quantity = CLIP * CHILDREN
    resp = api("POST", "/orders", {"strategy_id": f"big-{_tag()}", "client_order_id": f"ice-{_tag()}",
                                   "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
                                   "quantity": str(quantity), "order_type": "limit", "price": "60000",
                                   "algorithm": "iceberg",
                                   "algorithm_params": {"display_quantity": str(CLIP), "limit_price": "60000"}})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["order_id"]
    deadline = time.monotonic() + PARENT_TIMEOUT_S
    parent = resp.json()
    while not _terminal(parent) and time.monotonic() < deadline:
        time.sleep(1)
        parent = api("GET", f"/orders/{pid}").json()
    assert _terminal(parent), f"not done in time: {parent['filled_quantity']} of {quantity} filled"
    children = _children(api, pid)
    assert len(children) >= CHILDREN, len(children)

    def agree() -> list[str]:
        nonlocal children, parent
        children = _children(api, pid)
        parent = api("GET", f"/orders/{pid}").json()
        wrong = [c["order_id"] for c in children if not _terminal(c)]
        # a child's venue client id is the one its record names (children derive theirs from the parent's)
        at_venue = venues["binance"].by_client_id(c["venue_client_order_id"] for c in children)
        wrong += [p for c in children if (p := disagreement(c, at_venue.get(c["venue_client_order_id"], [])))]
        wrong += [f"{cid}: {len(vos)} venue orders" for cid, vos in at_venue.items() if len(vos) > 1]
        venue_filled = sum((D(vo["executedQty"]) for vos in at_venue.values() for vo in vos), D(0))
        if D(parent["filled_quantity"]) != venue_filled:
            wrong.append(f"parent filled {parent['filled_quantity']}, its children at the venue {venue_filled}")
        return wrong

    until(agree, 120, "the children are done and the parent's filled quantity is the venue's", pause=2)
    filled = sum((D(c["filled_quantity"]) for c in children), D(0))
    assert filled == D(parent["filled_quantity"]) <= quantity, (filled, parent["filled_quantity"], quantity)
    assert parent["status"] == "filled", parent["status"]
