"""The simulated exchange as ccxt sees it: a real ``python -m shared.simulator.server`` process on a free port,
driven by a plain ``ccxt.binance`` client pointed at it. No local stack needed (these tests do not use the
``stack`` fixture), so they also run directly:

    .venv/bin/pytest tests/integration/test_simulator_ccxt.py -q -p no:cacheprovider

Each test trades under its own fresh API key (a fresh, funded account); tests that depend on the book's exact
state pause the background market first.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest
import requests

from tests.integration.sim_fixtures import ROOT, SimProcess, SimulatorDidNotStart, new_key, start_simulator

D = Decimal
BTC = "BTC/USDT"


def _start(venue: str, log_dir: Path, **kwargs: object) -> SimProcess:
    try:
        return start_simulator(venue, log_dir, **kwargs)  # type: ignore[arg-type]
    except SimulatorDidNotStart as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    process = _start("binance", tmp_path_factory.mktemp("sim"), step_ms=50)
    try:
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(autouse=True)
def _clean(sim: SimProcess) -> Iterator[None]:
    yield
    sim.admin("faults", {"clear": True})
    sim.admin("market", {"paused": False})


@pytest.fixture
def paused(sim: SimProcess) -> SimProcess:
    sim.admin("market", {"paused": True})
    return sim


@pytest.fixture
def ex(sim: SimProcess) -> ccxt.binance:
    client = sim.client()
    client.load_markets()
    return client


def info_balances(client: ccxt.binance) -> dict[str, tuple[Decimal, Decimal]]:
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in client.fetch_balance()["info"]["balances"]}


def far_below(client: ccxt.binance) -> str:
    bid = client.fetch_order_book(BTC, 5)["bids"][0][0]
    return client.price_to_precision(BTC, bid * 0.9)


# ---- markets, book, fees ----------------------------------------------------------------------------------
def test_markets_have_binance_precision_and_limits(ex):
    assert {BTC, "ETH/USDT"} <= set(ex.markets)
    m = ex.markets[BTC]
    assert m["spot"] and m["active"] and m["id"] == "BTCUSDT"
    assert m["precision"]["price"] == 0.01 and m["precision"]["amount"] == 0.00001
    assert m["limits"]["amount"]["min"] == 0.00001 and m["limits"]["cost"]["min"] == 5
    assert {"LIMIT", "MARKET", "LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT"} <= set(m["info"]["orderTypes"])
    assert ex.markets["ETH/USDT"]["precision"]["amount"] == 0.0001


def test_order_book_is_deep_and_uncrossed(ex):
    book = ex.fetch_order_book(BTC, 10)
    assert len(book["bids"]) == len(book["asks"]) == 10
    assert book["bids"][0][0] < book["asks"][0][0]
    assert 40_000 < book["bids"][0][0] < 60_000
    assert [p for p, _ in book["bids"]] == sorted((p for p, _ in book["bids"]), reverse=True)
    assert [p for p, _ in book["asks"]] == sorted(p for p, _ in book["asks"])
    eth = ex.fetch_order_book("ETH/USDT", 5)
    assert 2_500 < eth["bids"][0][0] < eth["asks"][0][0] < 3_500


def test_public_market_data_for_a_volume_profile(ex):
    trades = ex.fetch_trades(BTC, limit=50)
    assert trades and all(t["amount"] > 0 for t in trades)
    candles = ex.fetch_ohlcv(BTC, "1m", limit=10)
    assert candles and candles[-1][5] > 0
    assert all(low <= o <= high and low <= c <= high for _, o, high, low, c, _ in candles)
    ticker = ex.fetch_ticker(BTC)
    assert ticker["bid"] < ticker["ask"] and ticker["last"] > 0 and ticker["baseVolume"] > 0


def test_trading_fees_differ_per_venue(ex, tmp_path):
    assert {k: (v["maker"], v["taker"]) for k, v in ex.fetch_trading_fees().items()} == {
        BTC: (0.001, 0.001), "ETH/USDT": (0.001, 0.001)}
    others = {}
    try:
        for venue in ("coinbase", "kraken"):
            others[venue] = _start(venue, tmp_path, paused=True)
        fees = {}
        for venue, process in others.items():
            client = process.client()
            fee = client.fetch_trading_fees()[BTC]
            fees[venue] = (fee["maker"], fee["taker"])
            assert client.fetch_order_book(BTC, 50)["bids"][0][0] != ex.fetch_order_book(BTC, 1)["bids"][0][0]
            assert process.admin("state")["latency_ms"] > 0
        assert fees == {"coinbase": (0.0006, 0.0011), "kraken": (0.0008, 0.00105)}
        thin = others["coinbase"].client().fetch_order_book(BTC, 100)
        deep = ex.fetch_order_book(BTC, 100)
        assert sum(q for _, q in thin["bids"]) < sum(q for _, q in deep["bids"])
    finally:
        for process in others.values():
            process.stop()


def test_unknown_venue_is_refused_with_the_known_names():
    out = subprocess.run([sys.executable, "-m", "shared.simulator.server", "--venue", "nope", "--port", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "nope" in out.stderr and "binance, coinbase, kraken" in out.stderr


# ---- orders -----------------------------------------------------------------------------------------------
def test_resting_limit_order_lookup_and_cancel_twice(ex):
    cid = new_key("rest")
    order = ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)), {"clientOrderId": cid})
    assert order["status"] == "open" and order["filled"] == 0 and order["clientOrderId"] == cid
    fetched = ex.fetch_order(None, BTC, {"clientOrderId": cid})
    assert fetched["id"] == order["id"] and fetched["status"] == "open" and fetched["remaining"] == 0.01
    assert [o["id"] for o in ex.fetch_open_orders(BTC)] == [order["id"]]
    assert ex.fetch_balance()["USDT"]["used"] == pytest.approx(0.01 * order["price"])

    canceled = ex.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"], BTC)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(None, BTC, {"clientOrderId": new_key("none")})
    assert ex.fetch_order(order["id"], BTC)["status"] == "canceled"
    assert ex.fetch_open_orders(BTC) == []
    assert ex.fetch_balance()["USDT"]["used"] == 0


def test_market_order_fills_and_moves_balances_by_fills_and_fees(paused, ex):
    before = info_balances(ex)
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["average"] > 0
    fills = order["info"]["fills"]
    cost = sum(D(f["price"]) * D(f["qty"]) for f in fills)
    fee = sum(D(f["commission"]) for f in fills)
    assert fee == D("0.00001") and {f["commissionAsset"] for f in fills} == {"BTC"}  # taker 0.1% of 0.01
    after = info_balances(ex)
    assert after["BTC"][0] == before["BTC"][0] + D("0.01") - fee
    assert after["USDT"][0] == before["USDT"][0] - cost

    mine = ex.fetch_my_trades(BTC)
    assert {t["id"] for t in mine} == {str(f["tradeId"]) for f in fills}
    assert all(t["order"] == order["id"] and t["takerOrMaker"] == "taker" and t["side"] == "buy" for t in mine)
    assert ex.fetch_my_trades(BTC, params={"fromId": int(mine[-1]["id"]) + 1}) == []

    sold = ex.create_order(BTC, "market", "sell", 0.01)
    assert sold["status"] == "closed" and sold["fee"]["currency"] == "USDT" and sold["fee"]["cost"] > 0
    state = paused.admin("state")
    assert D(state["fees_collected"]["BTC"]) > 0 and D(state["fees_collected"]["USDT"]) > 0
    account = state["accounts"][ex.apiKey]
    assert account["open_orders"] == 0 and D(account["balances"]["BTC"]["free"]) < before["BTC"][0]


def test_limit_order_partially_fills_then_rests(paused, ex):
    ask_price, ask_qty = ex.fetch_order_book(BTC, 1)["asks"][0]
    qty = float(D(str(ask_qty)) + D("0.005"))  # in float, 1.45908 + 0.005 truncates to 1.46407
    order = ex.create_order(BTC, "limit", "buy", qty, ask_price)
    assert order["status"] == "open"
    assert order["filled"] == pytest.approx(ask_qty) and order["remaining"] == pytest.approx(0.005)
    book = ex.fetch_order_book(BTC, 1)
    assert book["bids"][0] == [ask_price, pytest.approx(0.005)]  # the rest is now the best bid
    assert ex.fetch_open_orders(BTC)[0]["id"] == order["id"]
    canceled = ex.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled" and canceled["filled"] == pytest.approx(ask_qty)


def test_post_only_that_would_cross_is_refused(ex):
    ask = ex.fetch_order_book(BTC, 1)["asks"][0][0]
    with pytest.raises(ccxt.InvalidOrder) as err:  # OrderImmediatelyFillable
        ex.create_order(BTC, "limit", "buy", 0.01, ask + 50, {"postOnly": True})
    assert isinstance(err.value, ccxt.OrderImmediatelyFillable)
    resting = ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)), {"postOnly": True})
    assert resting["status"] == "open" and resting["info"]["type"] == "LIMIT_MAKER"
    ex.cancel_order(resting["id"], BTC)


def test_stop_loss_waits_then_triggers_when_the_last_price_reaches_it(paused, ex, sim):
    bids = ex.fetch_order_book(BTC, 50)["bids"]
    last = ex.fetch_ticker(BTC)["last"]
    k = next(i for i, (p, _) in enumerate(bids) if i > 0 and p < min(last, bids[0][0]))
    stop_price = bids[k][0]
    stop = ex.create_order(BTC, "market", "sell", 0.001, None, {"stopPrice": stop_price})
    assert stop["info"]["type"] == "STOP_LOSS"
    waiting = ex.fetch_order(stop["id"], BTC)
    assert waiting["status"] == "open" and waiting["info"]["isWorking"] is False
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # a stop the last price already passed
        ex.create_order(BTC, "market", "sell", 0.001, None, {"stopPrice": bids[0][0] + 100})

    pusher = sim.client()
    through = float(ex.amount_to_precision(BTC, sum(q for _, q in bids[:k]) + 0.001))
    pushed = pusher.create_order(BTC, "market", "sell", through)
    assert pushed["status"] == "closed" and min(float(f["price"]) for f in pushed["info"]["fills"]) == stop_price
    triggered = ex.fetch_order(stop["id"], BTC)
    assert triggered["status"] == "closed" and triggered["filled"] == 0.001
    assert triggered["info"]["isWorking"] is True and float(triggered["info"]["stopPrice"]) == stop_price


def test_resting_order_near_the_touch_fills_as_the_market_moves(sim, ex):
    """With the market running, a bid just inside the spread or an ask at the touch gets hit within moments."""
    sim.admin("market", {"paused": True})
    book = ex.fetch_order_book(BTC, 1)
    bid, ask = book["bids"][0][0], book["asks"][0][0]
    buy = ex.create_order(BTC, "limit", "buy", 0.001, round(min(bid + 0.01, ask - 0.01), 2), {"postOnly": True})
    sell = ex.create_order(BTC, "limit", "sell", 0.001, ask, {"postOnly": True})
    sim.admin("market", {"paused": False})
    deadline = time.monotonic() + 20
    filled = []
    while not filled:
        assert time.monotonic() < deadline, "no resting order near the touch filled within 20 s"
        time.sleep(0.1)
        filled = [o for o in (ex.fetch_order(buy["id"], BTC), ex.fetch_order(sell["id"], BTC))
                  if o["status"] == "closed"]
    ex.cancel_all_orders(BTC)
    order = filled[0]
    trades = [t for t in ex.fetch_my_trades(BTC) if t["order"] == order["id"]]
    assert sum(t["amount"] for t in trades) == pytest.approx(0.001)
    assert all(t["takerOrMaker"] == "maker" and t["fee"]["cost"] > 0 for t in trades)


# ---- injected faults --------------------------------------------------------------------------------------
def test_injected_reject_is_invalid_order_and_places_nothing(sim, ex):
    sim.admin("faults", {"reject_next": 1})
    cid = new_key("rej")
    with pytest.raises(ccxt.InvalidOrder, match="injected"):
        ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)), {"clientOrderId": cid})
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(None, BTC, {"clientOrderId": cid})
    assert ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)))["status"] == "open"  # only one
    ex.cancel_all_orders(BTC)


def test_injected_500_is_exchange_not_available_and_places_nothing(sim, ex):
    sim.admin("faults", {"error_500_next": 1})
    cid = new_key("e500")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)), {"clientOrderId": cid})
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(None, BTC, {"clientOrderId": cid})


def test_injected_rate_limit_is_a_429(sim, ex):
    sim.admin("faults", {"rate_limit_next": 1})
    with pytest.raises((ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)))
    assert ex.fetch_open_orders(BTC) == []


def test_injected_timeout_times_the_client_out_but_the_order_exists(sim, ex):
    slow = sim.client(ex.apiKey, timeout_ms=1000)
    slow.load_markets()
    sim.admin("faults", {"timeout_next": 1, "timeout_s": 2.5})
    cid = new_key("tmo")
    t0 = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        slow.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)), {"clientOrderId": cid})
    assert time.monotonic() - t0 < 2.4
    assert ex.fetch_order(None, BTC, {"clientOrderId": cid})["status"] == "open"
    ex.cancel_all_orders(BTC)


def test_injected_dropped_ack_is_a_network_error_but_the_order_exists(sim, ex):
    sim.admin("faults", {"drop_ack_next": 1})
    cid = new_key("drop")
    with pytest.raises(ccxt.NetworkError):
        ex.create_order(BTC, "limit", "buy", 0.01, float(far_below(ex)), {"clientOrderId": cid})
    assert ex.fetch_order(None, BTC, {"clientOrderId": cid})["status"] == "open"
    assert len(ex.fetch_open_orders(BTC)) == 1
    ex.cancel_all_orders(BTC)


def test_latency_spike_slows_exactly_the_next_calls(sim, ex):
    def timed() -> float:
        t0 = time.perf_counter()
        ex.fetch_order_book(BTC, 5)
        return time.perf_counter() - t0

    # Only lower bounds on time (a shared machine can always be slower); "exactly" is the simulator's own count.
    sim.admin("faults", {"latency_spike_ms": 300, "latency_spike_next": 2})
    spiked = [timed(), timed()]
    assert all(s >= 0.3 for s in spiked), spiked
    assert sim.admin("faults", {})["latency_spike_next"] == 0  # spent on those two: none is left for later calls


def test_trades_lag_hides_the_newest_trades_while_the_order_counts_them(paused, ex):
    order = ex.create_order(BTC, "market", "buy", 0.01)
    assert D(order["info"]["executedQty"]) == D("0.01")
    paused.admin("faults", {"trades_lag_ms": 60_000})
    assert ex.fetch_order_trades(order["id"], BTC) == []  # the trades list lags ...
    assert D(ex.fetch_order(order["id"], BTC)["info"]["executedQty"]) == D("0.01")  # ... the order does not
    assert paused.admin("faults", {})["trades_lag_ms"] == 60_000
    paused.admin("faults", {"trades_lag_ms": 0})
    assert sum(D(t["info"]["qty"]) for t in ex.fetch_order_trades(order["id"], BTC)) == D("0.01")


def test_halted_symbol_refuses_orders_until_resumed(sim, ex):
    price = float(far_below(ex))
    halted = sim.admin("faults", {"halt": ["BTCUSDT"]})
    assert halted["halted"] == ["BTCUSDT"]
    with pytest.raises(ccxt.MarketClosed):
        ex.create_order(BTC, "limit", "buy", 0.01, price)
    assert ex.load_markets(reload=True)[BTC]["active"] is False
    assert ex.create_order("ETH/USDT", "market", "buy", 0.01)["status"] == "closed"  # only that symbol
    sim.admin("faults", {"resume": ["BTCUSDT"]})
    assert ex.load_markets(reload=True)[BTC]["active"] is True
    assert ex.create_order(BTC, "limit", "buy", 0.01, price)["status"] == "open"
    ex.cancel_all_orders(BTC)


def test_signed_endpoints_need_a_key_and_admin_state_reports_faults(sim):
    resp = requests.get(f"{sim.url}/api/v3/account", params={"timestamp": 1, "signature": "x"}, timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == -2014
    resp = requests.get(f"{sim.url}/api/v3/account", headers={"X-MBX-APIKEY": new_key()}, timeout=5)
    assert resp.status_code == 400 and resp.json()["code"] == -1102
    sim.admin("faults", {"reject_next": 2, "latency_spike_ms": 5, "latency_spike_next": 1})
    faults = sim.admin("state")["faults"]
    assert faults["reject_next"] == 2 and faults["latency_spike_next"] == 1
    resp = requests.post(f"{sim.url}/admin/faults", json={"explode_next": 1}, timeout=5)
    assert resp.status_code == 400 and "explode_next" in resp.json()["error"]
    stepped = sim.admin("step", {"steps": 3})
    assert set(stepped["symbols"]) == {"BTCUSDT", "ETHUSDT"}
