"""TCA of real orders on the stack (issue 11): the record's figures agree with an independent recomputation from
what the simulated venue itself says (its trades for our account, its public tape)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from tests.integration.conftest import wait_for
from tests.integration.venue_truth import D, Venue, symbol_id


@pytest.fixture(scope="module")
def binance(stack) -> Venue:
    return Venue("binance", stack.simulators["binance"])


@pytest.fixture(scope="module")
def venues(stack) -> dict[str, Venue]:
    return {name: Venue(name, url) for name, url in stack.simulators.items()}


def _tape(venue: Venue, start: int, end: int) -> list[dict]:
    """Every public trade of the venue in [start, end] (aggTrades, paged by id to the end)."""
    page = venue._get("/api/v3/aggTrades", symbol=symbol_id("BTC/USDT"), startTime=start, endTime=end, limit=1000)
    trades = list(page)
    while len(page) == 1000:
        page = [t for t in venue._get("/api/v3/aggTrades", symbol=symbol_id("BTC/USDT"), fromId=trades[-1]["a"] + 1,
                                      limit=1000) if t["T"] <= end]
        trades += page
    return trades


def _children(api, parent_id: str) -> list[dict]:
    out, cursor = [], None
    while True:
        page = api("GET", "/orders", params={"parent_id": parent_id, "limit": 500,
                                               **({"cursor": cursor} if cursor else {})}).json()
        out += page["orders"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def _recompute_parent(api, venues: dict[str, Venue], parent: dict, tca: dict, facts: dict) -> None:
    """The parent's arrival cost and interval VWAP, from the venues' own account trades of every child and
    their public tapes over the record's window (every venue the children traded on)."""
    children = _children(api, parent["order_id"])
    trades = [(child["exchange"], t) for child in children if child["venue_order_id"]
              for t in venues[child["exchange"]].trades(child["venue_order_id"])]
    qty = sum((D(t["qty"]) for _, t in trades), D(0))
    notional = sum((D(t["qty"]) * D(t["price"]) for _, t in trades), D(0))
    assert D(tca["filled_quantity"]) == qty == D(parent["filled_quantity"]) > 0
    average = notional / qty
    s = 1 if parent["side"] == "buy" else -1
    arrival_mid = D(facts["arrival_mid"])
    assert D(tca["arrival_cost_bps"]) == _bps(s * (average - arrival_mid) / arrival_mid)
    start, end = tca["window"]
    tape = [t for name in sorted({v for v, _ in trades}) for t in _tape(venues[name], start, end)]
    volume = sum((D(t["q"]) for t in tape), D(0))
    vwap = sum((D(t["q"]) * D(t["p"]) for t in tape), D(0)) / volume
    assert D(tca["interval_vwap"]) == vwap.quantize(D("1E-12"))
    assert D(tca["interval_vwap_cost_bps"]) == _bps(s * (average - vwap) / vwap)


@pytest.fixture(scope="module", autouse=True)
def module_started() -> int:
    return time.time_ns() // 1_000_000 - 1_000


def _bps(x: Decimal) -> Decimal:
    return (x * 10_000).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def test_a_filled_order_has_a_tca_record_that_the_venue_confirms(api, binance):
    bid, ask = binance.touch()
    resp = api("POST", "/orders", {"strategy_id": "tca-it", "client_order_id": f"tca-{uuid.uuid4().hex[:10]}",
                                   "exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01",
                                   "order_type": "limit", "price": str((ask * D("1.01")).quantize(D("0.01")))})
    assert resp.status_code == 201, resp.text
    order = wait_for(api, resp.json()["order_id"], lambda o: o["status"] == "filled", 60)
    assert order["status"] == "filled", order
    got = api("GET", f"/orders/{order['order_id']}/tca")
    assert got.status_code == 200, got.text
    body = got.json()
    facts, tca = body["facts"], body["tca"]
    assert facts["decision_mid"] is not None, "no decision mid recorded at intake"
    arrival_bid, arrival_ask, arrival_mid = (D(facts[k]) for k in ("arrival_bid", "arrival_ask", "arrival_mid"))
    assert arrival_bid <= arrival_mid <= arrival_ask and arrival_mid == (arrival_bid + arrival_ask) / 2

    # the venue's own account trades of this order
    trades = binance.trades(order["venue_order_id"])
    qty = sum((D(t["qty"]) for t in trades), D(0))
    notional = sum((D(t["qty"]) * D(t["price"]) for t in trades), D(0))
    assert D(tca["filled_quantity"]) == qty == D("0.01")
    average = notional / qty
    assert D(tca["average_price"]) == average.quantize(D("1E-12"))
    assert D(tca["arrival_cost_bps"]) == _bps((average - arrival_mid) / arrival_mid)

    # interval VWAP over the record's window, from the venue's public tape (ours included)
    start, end = tca["window"]
    assert start <= min(t["time"] for t in trades) and max(t["time"] for t in trades) <= end
    tape = binance._get("/api/v3/aggTrades", symbol=symbol_id("BTC/USDT"), startTime=start, endTime=end,
                        limit=1000)
    volume = sum((D(t["q"]) for t in tape), D(0))
    vwap = sum((D(t["q"]) * D(t["p"]) for t in tape), D(0)) / volume
    assert D(tca["interval_vwap"]) == vwap.quantize(D("1E-12"))
    assert D(tca["interval_vwap_cost_bps"]) == _bps((average - vwap) / vwap)
    ours = {str(t["id"]) for t in trades}
    assert ours <= {str(t["a"]) for t in tape}, "our trades are on the public tape"
    assert D(tca["participation"]) == (qty / volume).quantize(D("1E-9"))
    assert tca["markouts_bps"]["300"] is None and "markout_300s_pending" in tca["flags"]


def test_the_tca_of_an_unknown_order_is_a_404(api):
    resp = api("GET", "/orders/ord_000000000000000000000000/tca")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def _tca_until(api, order_id: str, done, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = api("GET", f"/orders/{order_id}/tca").json()
        if done(body["tca"]) or time.monotonic() > deadline:
            return body["tca"]
        time.sleep(0.5)


def test_markouts_appear_after_their_horizons_and_the_row_is_published(api, binance, tap):
    rows = tap("tca-records")
    bid, ask = binance.touch()
    resp = api("POST", "/orders", {"strategy_id": "tca-it", "client_order_id": f"tcam-{uuid.uuid4().hex[:10]}",
                                   "exchange": "binance", "symbol": "BTC/USDT", "side": "sell", "quantity": "0.01",
                                   "order_type": "limit", "price": str((bid * D("0.99")).quantize(D("0.01")))})
    assert resp.status_code == 201, resp.text
    order_id = resp.json()["order_id"]
    order = wait_for(api, order_id, lambda o: o["status"] == "filled", 60)
    assert order["status"] == "filled", order

    # the tca function saw the ended order: its row goes to tca-records (version 1, markouts still pending)
    got = rows.collect(lambda ms: any(m["data"]["order_id"] == order_id for m in ms), timeout=90)
    first = next(m["data"] for m in got if m["data"]["order_id"] == order_id)
    assert first["version"] == 1 and first["complete"] is False and first["side"] == "sell"
    assert first["algorithm"] == "DIRECT" and first["venue"] == "binance" and first["status"] == "filled"
    assert D(first["fill_ratio"]) == 1 and first["markout_300s_bps"] is None

    # +1 s and +10 s markouts are sampled by their tasks (Cloud Tasks, a book read each), not before their time
    tca = _tca_until(api, order_id, lambda t: t["markouts_bps"]["10"] is not None, timeout=120)
    assert tca["markouts_bps"]["1"] is not None and tca["markouts_bps"]["10"] is not None, tca["flags"]
    assert tca["markouts_bps"]["60"] is None and "markout_60s_pending" in tca["flags"]
    (fill,) = tca["fills"]
    assert fill["markouts_bps"]["1"] == tca["markouts_bps"]["1"]  # one fill: the order's is the fill's
    # a sell: s*(m - p)/p with s = -1, so the markout is (p - m)/p; the sampled mid lies inside the venue's spread
    p = D(fill["price"])
    implied_mid = p - D(tca["markouts_bps"]["1"]) / 10_000 * p
    low, high = binance.touch()
    assert abs(implied_mid - (low + high) / 2) / implied_mid < D("0.05"), (implied_mid, low, high)
    assert D(first["arrival_cost_bps"]) == D(tca["arrival_cost_bps"])


def _filled_parent_tca(api, venues: dict[str, Venue], created) -> dict:
    """Wait for the created parent to fill; its TCA answer, whose costs were checked against the venues."""
    assert created.status_code == 201, created.text
    parent = wait_for(api, created.json()["order_id"], lambda o: o["status"] in ("filled", "canceled"), 60)
    assert parent["status"] == "filled", parent
    body = api("GET", f"/orders/{parent['order_id']}/tca").json()
    _recompute_parent(api, venues, parent, body["tca"], body["facts"])
    return body


def test_a_twap_parent_has_a_full_tca_record_over_all_its_children(api, venues, binance):
    bid, ask = binance.touch()
    resp = api("POST", "/orders", {"strategy_id": "tca-it", "client_order_id": f"tcat-{uuid.uuid4().hex[:10]}",
                                   "exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.04",
                                   "order_type": "limit", "price": str((ask * D("1.01")).quantize(D("0.01"))),
                                   "algorithm": "twap", "algorithm_params": {"duration_s": 20, "slices": 4}})
    body = _filled_parent_tca(api, venues, resp)
    tca = body["tca"]
    assert tca["schedule_deviation_max"] is not None and tca["schedule_deviation_rms"] is not None, tca["flags"]
    assert D(tca["schedule_deviation_rms"]) <= D(tca["schedule_deviation_max"]) <= 1
    assert len(tca["fills"]) >= 4 and tca["shortfall"] is not None  # every child's fill, one record
    assert tca["latencies_ms"]["decision_to_submit"] is not None


def test_a_smart_router_parent_has_its_router_value_add_and_venue_confirmed_costs(api, venues):
    resp = api("POST", "/orders", {"strategy_id": "tca-it", "client_order_id": f"tcas-{uuid.uuid4().hex[:10]}",
                                   "exchange": "smart", "symbol": "BTC/USDT", "side": "sell", "quantity": "45",
                                   "order_type": "limit", "price": "49000"})
    body = _filled_parent_tca(api, venues, resp)
    tca = body["tca"]
    facts = body["facts"]
    best, ideal = D(facts["router_best_price"]), D(facts["router_consolidated_price"])
    average = D(tca["average_price"])
    # a sell: s = -1, so s*(P_best - P)/P_best is (P - P_best)/P_best: positive when routing beat the venue
    assert D(tca["router_vs_best_venue_bps"]) == _bps((average - best) / best)
    assert D(tca["router_vs_consolidated_bps"]) == _bps((average - ideal) / ideal)


def test_the_aggregates_group_the_ended_orders_and_refuse_what_they_cannot_do(api, module_started):
    """After the orders above: their rows (written by the tca function when each ended) are grouped."""

    def groups() -> dict[tuple[str, str], dict]:
        body = api("GET", "/analytics/tca", params={"group_by": "algorithm,venue", "since": module_started,
                                                    "seed": 7}).json()
        return {(g["key"]["algorithm"], g["key"]["venue"]): g for g in body["groups"]}

    deadline = time.monotonic() + 60
    got = groups()
    while not {("twap", "binance"), ("smart", "smart"), ("DIRECT", "binance")} <= set(got):
        assert time.monotonic() < deadline, f"rows not aggregated after 60 s: {sorted(got)}"
        time.sleep(1)
        got = groups()
    direct, twap = got[("DIRECT", "binance")], got[("twap", "binance")]
    assert direct["count"] >= 2 and twap["count"] >= 1
    assert D(twap["fill_ratio"]) == 1 and D(twap["reject_rate"]) == 0
    assert twap["costs"]["arrival_cost_bps"]["n"] == twap["count"]
    low, high = (D(x) for x in direct["arrival_cost_ci95"])
    assert low <= D(direct["costs"]["arrival_cost_bps"]["mean"]) <= high
    assert got == groups()  # the same seed, the same answer

    bad = api("GET", "/analytics/tca", params={"group_by": "venue,colour"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "group_by"
    assert api("GET", "/analytics/tca", params={"since": 10, "until": 5}).status_code == 422


def test_the_execution_quality_series_are_exported_and_promtool_accepts_them(api):
    """After the orders above: their costs and markouts are in the Prometheus text, with buckets below zero, and
    the whole exposition passes promtool's own check (the format Prometheus will scrape)."""
    text = api("GET", "/metrics", params={"format": "prometheus"}).text
    for series in ('execution_arrival_cost_bps_bucket{', 'le="-100.0"', 'execution_markout_bps_bucket{',
                   'horizon="1"', 'execution_fill_ratio_bucket{', 'execution_venue_ack_latency_seconds_bucket{',
                   'execution_market_data_reads_total{', 'caller="tca"'):
        assert series in text, f"{series} not exported"
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install -y prometheus (./scripts/bootstrap.sh does, as root)"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
