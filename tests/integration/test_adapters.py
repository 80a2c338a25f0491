"""Every adapter-protocol operation and every injected fault, through the real chain:
service VenueClient -> HTTP -> ccxt adapter function -> ccxt.binance -> simulated exchange."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
import requests

from shared.adapters.protocol import ErrorCode, ErrorKind, OrderType, PlaceOrder, Side, TimeInForce, VenueStatus
from shared.infra.venues import VenueCallError, VenueClient, session

SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def endpoints(stack) -> dict[str, str]:
    return stack.adapters


@pytest.fixture(scope="module")
def sims(stack) -> dict[str, str]:
    return stack.simulators


@pytest.fixture(scope="module")
def http_session():
    with session() as s:
        yield s


@pytest.fixture(scope="module")
def venue(endpoints) -> VenueClient:
    return VenueClient("binance", endpoints["binance"], session())


@pytest.fixture
def admin(sims):
    """Fault injection and market control on the binance simulator; cleared afterwards."""
    base = sims["binance"]

    def call(path: str, body: dict) -> dict:
        resp = requests.post(f"{base}/admin/{path}", json=body, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    yield call
    call("faults", {"clear": True})
    call("market", {"paused": False})


def cid(tag: str) -> str:
    return f"t-{tag}-{uuid.uuid4().hex[:16]}"


def limit(side: Side, qty: str, price: Decimal, **kw) -> PlaceOrder:
    return PlaceOrder(client_order_id=kw.pop("client_order_id", cid("lim")), symbol=SYMBOL, side=side,
                      type=OrderType.LIMIT, quantity=Decimal(qty), price=price, **kw)


def far_below(venue: VenueClient) -> Decimal:
    """A buy price that will not fill soon: 10% under the best bid, on the tick."""
    bid = venue.book(SYMBOL, 5).bids[0].price
    return (bid * Decimal("0.9")).quantize(Decimal("0.01"))


def test_three_healthy_venues_with_their_own_fees(stack, endpoints):
    assert set(endpoints) == {"binance", "coinbase", "kraken"}
    fees = {}
    for name, url in endpoints.items():
        client = VenueClient(name, url, session())
        assert client.health().status == "ok"
        info = client.info()
        btc = next(s for s in info.symbols if s.symbol == SYMBOL)
        assert btc.tick_size > 0 and btc.lot_size > 0 and btc.min_notional and btc.min_notional > 0
        assert {"BTC/USDT", "ETH/USDT"} <= {s.symbol for s in info.symbols}
        assert info.cancel_all_after == "watchdog"  # Binance spot has no native switch
        fees[name] = (btc.maker_fee, btc.taker_fee)
    assert len(set(fees.values())) == 3, fees


def test_book_snapshot_is_uncrossed_at_depth(venue):
    book = venue.book(SYMBOL, 10)
    assert 1 <= len(book.bids) <= 10 and 1 <= len(book.asks) <= 10
    assert book.bids[0].price < book.asks[0].price
    assert Decimal(40000) < book.bids[0].price < Decimal(60000)
    assert [lvl.price for lvl in book.bids] == sorted((lvl.price for lvl in book.bids), reverse=True)


def test_place_is_idempotent_get_list_and_cancel_twice(venue):
    order = limit(Side.BUY, "0.01", far_below(venue))
    first = venue.place(order)
    assert first.created and first.order.status is VenueStatus.OPEN
    again = venue.place(order)
    assert not again.created and again.order.venue_order_id == first.order.venue_order_id

    by_client = venue.get(SYMBOL, client_order_id=order.client_order_id)
    by_venue = venue.get(SYMBOL, venue_order_id=first.order.venue_order_id)
    assert by_client.venue_order_id == by_venue.venue_order_id == first.order.venue_order_id
    assert order.client_order_id in {o.client_order_id for o in venue.open_orders(SYMBOL)}

    canceled = venue.cancel(SYMBOL, client_order_id=order.client_order_id)
    assert canceled.status is VenueStatus.CANCELED
    assert venue.cancel(SYMBOL, client_order_id=order.client_order_id).status is VenueStatus.CANCELED
    assert order.client_order_id not in {o.client_order_id for o in venue.open_orders(SYMBOL)}
    # Placing the same id after it closed still makes no second order.
    assert not venue.place(order).created


def test_unknown_order_is_final(venue):
    with pytest.raises(VenueCallError) as err:
        venue.get(SYMBOL, client_order_id=cid("none"))
    assert err.value.code is ErrorCode.UNKNOWN_ORDER and err.value.kind is ErrorKind.FINAL
    with pytest.raises(VenueCallError) as err:
        venue.cancel(SYMBOL, client_order_id=cid("none"))
    assert err.value.code is ErrorCode.UNKNOWN_ORDER


def test_market_order_fills_and_fills_page_by_cursor(venue):
    start = venue.fills(SYMBOL, limit=1000).cursor
    order = PlaceOrder(client_order_id=cid("mkt"), symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                       quantity=Decimal("0.002"))
    before = int(time.time() * 1000)
    result = venue.place(order)
    placed = result.order
    assert placed.status is VenueStatus.FILLED and placed.filled_quantity == Decimal("0.002")
    assert placed.average_price and placed.average_price > 0
    # the fills that came with the answer carry the venue's execution time (Binance's answer gives only the order's)
    assert result.fills and all(before - 5_000 <= f.timestamp_ms <= int(time.time() * 1000) for f in result.fills)
    page = venue.fills(SYMBOL, since=start)
    mine = [f for f in page.fills if f.venue_order_id == placed.venue_order_id]
    assert sum(f.quantity for f in mine) == Decimal("0.002")
    assert all(f.fee > 0 and f.liquidity == "taker" for f in mine)
    assert len({f.trade_id for f in page.fills}) == len(page.fills)
    assert venue.fills(SYMBOL, since=page.cursor).fills == []


def test_partial_fill_then_rest_then_cancel_keeps_the_filled_part(venue, admin):
    admin("market", {"paused": True})
    ask = venue.book(SYMBOL, 1).asks[0]
    order = limit(Side.BUY, str(ask.quantity + Decimal("0.5")), ask.price)
    placed = venue.place(order).order
    assert placed.status is VenueStatus.OPEN
    assert placed.filled_quantity == ask.quantity
    assert placed.remaining_quantity == Decimal("0.5")
    canceled = venue.cancel(SYMBOL, client_order_id=order.client_order_id)
    assert canceled.status is VenueStatus.CANCELED and canceled.filled_quantity == ask.quantity


def test_post_only_that_would_take_is_refused(venue):
    ask = venue.book(SYMBOL, 1).asks[0].price
    with pytest.raises(VenueCallError) as err:
        venue.place(limit(Side.BUY, "0.01", ask + Decimal("100"), post_only=True))
    assert err.value.kind is ErrorKind.FINAL


def test_ioc_remainder_expires(venue, admin):
    admin("market", {"paused": True})
    ask = venue.book(SYMBOL, 1).asks[0]
    placed = venue.place(limit(Side.BUY, str(ask.quantity + Decimal("1")), ask.price,
                               time_in_force=TimeInForce.IOC)).order
    assert placed.status is VenueStatus.EXPIRED and placed.filled_quantity == ask.quantity


def test_insufficient_funds_is_final(venue):
    with pytest.raises(VenueCallError) as err:
        venue.place(limit(Side.BUY, "5000", far_below(venue)))
    assert err.value.code is ErrorCode.INSUFFICIENT_FUNDS and err.value.kind is ErrorKind.FINAL


def test_bad_request_names_the_field(endpoints):
    resp = requests.post(f"{endpoints['binance']}/orders", json={"symbol": "BTCUSDT", "side": "up"}, timeout=5)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["kind"] == "final" and err["code"] == "bad_request"
    assert {"symbol", "side", "client_order_id"} <= {d["field"] for d in err["details"]}


def test_cancel_all_for_a_symbol(venue):
    placed = [venue.place(limit(Side.BUY, "0.01", far_below(venue))).order for _ in range(2)]
    result = venue.cancel_all(SYMBOL)
    ids = {o.venue_order_id for o in result.canceled}
    assert {o.venue_order_id for o in placed} <= ids
    assert all(o.status is VenueStatus.CANCELED for o in result.canceled)
    assert venue.open_orders(SYMBOL) == []


def test_cancel_all_after_watchdog_cancels_when_not_refreshed(venue):
    order = limit(Side.BUY, "0.01", far_below(venue))
    venue.place(order)
    state = venue.cancel_all_after(3000)
    assert state.armed and state.mode == "watchdog" and state.timeout_ms == 3000
    time.sleep(1.6)
    assert venue.cancel_all_after(3000).armed  # refreshed: the deadline moves
    time.sleep(1.8)  # past the first deadline, well before the refreshed one
    assert venue.get(SYMBOL, client_order_id=order.client_order_id).status is VenueStatus.OPEN
    deadline = time.monotonic() + 6
    while venue.get(SYMBOL, client_order_id=order.client_order_id).status is VenueStatus.OPEN:
        assert time.monotonic() < deadline, "the watchdog did not cancel"
        time.sleep(0.2)
    assert venue.get(SYMBOL, client_order_id=order.client_order_id).status is VenueStatus.CANCELED
    assert not venue.cancel_all_after(0).armed


# ---- injected faults ----------------------------------------------------------------------------------
def test_injected_reject_is_final(venue, admin):
    admin("faults", {"reject_next": 1})
    with pytest.raises(VenueCallError) as err:
        venue.place(limit(Side.BUY, "0.01", far_below(venue)))
    assert err.value.kind is ErrorKind.FINAL and err.value.code is ErrorCode.INVALID_ORDER
    assert venue.place(limit(Side.BUY, "0.01", far_below(venue))).created  # only the next one


def test_injected_500_on_place_is_an_unknown_outcome_and_retry_makes_one_order(venue, admin):
    admin("faults", {"error_500_next": 1})
    order = limit(Side.BUY, "0.01", far_below(venue))
    with pytest.raises(VenueCallError) as err:
        venue.place(order)
    assert err.value.kind is ErrorKind.UNKNOWN_OUTCOME
    retried = venue.place(order)  # the 500 came before the engine: this creates it, once
    assert retried.order.status is VenueStatus.OPEN
    assert venue.place(order).order.venue_order_id == retried.order.venue_order_id


def test_injected_rate_limit_is_retryable_and_nothing_was_placed(venue, admin):
    admin("faults", {"rate_limit_next": 1})
    order = limit(Side.BUY, "0.01", far_below(venue))
    with pytest.raises(VenueCallError) as err:
        venue.place(order)
    assert err.value.code is ErrorCode.RATE_LIMITED and err.value.kind is ErrorKind.RETRYABLE
    assert venue.place(order).created  # the retry places it, once


@pytest.mark.parametrize("fault", [{"timeout_next": 1, "timeout_s": 4}, {"drop_ack_next": 1}])
def test_lost_answer_after_the_venue_accepted_still_one_venue_order(venue, admin, fault):
    admin("faults", fault)
    order = limit(Side.BUY, "0.01", far_below(venue))
    with pytest.raises(VenueCallError) as err:
        venue.place(order)
    assert err.value.kind is ErrorKind.UNKNOWN_OUTCOME
    again = venue.place(order)
    assert not again.created  # the venue had it: found by client order id, not placed twice
    matching = [o for o in venue.open_orders(SYMBOL) if o.client_order_id == order.client_order_id]
    assert len(matching) == 1


def test_latency_spike_slows_the_call(venue, admin):
    # The stack's own work also calls this simulator and may take a spike first: leave some to spare.
    admin("faults", {"latency_spike_ms": 400, "latency_spike_next": 3})
    t0 = time.perf_counter()
    venue.book(SYMBOL, 1)
    assert time.perf_counter() - t0 >= 0.4
    assert admin("faults", {})["latency_spike_next"] < 3


def test_halted_market_refuses_orders_until_resumed(venue, admin):
    admin("faults", {"halt": ["BTCUSDT"]})
    with pytest.raises(VenueCallError) as err:
        venue.place(limit(Side.BUY, "0.01", far_below(venue)))
    assert err.value.kind is ErrorKind.FINAL
    admin("faults", {"resume": ["BTCUSDT"]})
    assert venue.place(limit(Side.BUY, "0.01", far_below(venue))).created


def test_registry_lists_three_healthy_adapters_with_shared_stats(stack, http):
    resp = http.get(f"{stack.api_url}/adapters", headers={"X-API-Key": stack.env["API_KEY"]}, timeout=10)
    assert resp.status_code == 200
    adapters = {a["name"]: a for a in resp.json()["adapters"]}
    assert set(adapters) == {"binance", "coinbase", "kraken"}
    assert all(a["healthy"] for a in adapters.values())
    stats = adapters["binance"]["stats"]
    assert stats["calls"] >= 1 and stats["latency_ms"]["p50"] is not None
    assert stats["latency_ms"]["p99"] >= stats["latency_ms"]["p50"]
    assert "armed" in stats["dead_mans_switch"] and stats["last_success_ms"]
    health = http.get(f"{stack.api_url}/health", timeout=10).json()
    assert {"adapter:binance", "adapter:coinbase", "adapter:kraken"} <= set(health["dependencies"])


def test_public_trades_in_a_time_range_oldest_first(venue):
    now = int(time.time() * 1000)
    page = venue.trades(SYMBOL, now - 30_000)
    assert page.trades, "the simulated market trades every step: 30 s of tape cannot be empty"
    times = [t.timestamp_ms for t in page.trades]
    assert times == sorted(times) and times[0] >= now - 30_000
    assert all(t.quantity > 0 and t.price > 0 for t in page.trades)
    upto = times[len(times) // 2]
    cut = venue.trades(SYMBOL, now - 30_000, until_ms=upto)
    assert cut.trades and all(t.timestamp_ms <= upto for t in cut.trades)
    one = venue.trades(SYMBOL, now - 30_000, limit=1)
    assert len(one.trades) == 1 and one.complete is False


def test_candles_are_one_minute_volume_bars(venue):
    now = int(time.time() * 1000)
    bars = venue.candles(SYMBOL, now - 5 * 60_000)
    assert bars.timeframe == "1m" and bars.candles
    assert all(c.open_ms % 60_000 == 0 and c.low <= c.close <= c.high and c.volume >= 0 for c in bars.candles)
    with pytest.raises(VenueCallError) as err:
        venue.candles(SYMBOL, now, timeframe="7x")
    assert err.value.code is ErrorCode.BAD_REQUEST and "timeframe" in str(err.value)


@pytest.mark.parametrize(("qty", "price", "rule"), [
    ("0.000001", None, "minimum quantity"),  # below the amount precision: ccxt raises before any request
    ("0.0001", "40000", "minimum notional"),
    ("0.001", "40000.005", "tick size"),  # ccxt would round it to 40000.01: past a buyer's price
])
def test_an_order_the_venue_cannot_take_is_a_final_invalid_order_not_a_500(endpoints, http_session, qty, price, rule):
    body = {"client_order_id": cid("fit"), "symbol": SYMBOL, "side": "buy", "type": "limit" if price else "market",
            "quantity": qty, **({"price": price} if price else {})}
    resp = http_session.post(f"{endpoints['binance']}/orders", json=body, timeout=10)
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert (err["code"], err["kind"]) == ("invalid_order", "final") and rule in err["message"]
    lookup = http_session.get(f"{endpoints['binance']}/order", params={"symbol": SYMBOL,
                                                                      "client_order_id": body["client_order_id"]},
                              timeout=10)
    assert lookup.status_code == 404  # nothing reached the venue


def test_the_venue_client_sees_the_refusal_as_final(venue):
    with pytest.raises(VenueCallError) as err:
        venue.place(PlaceOrder(client_order_id=cid("fit"), symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                               quantity=Decimal("0.000001")))
    assert err.value.code is ErrorCode.INVALID_ORDER and err.value.kind is ErrorKind.FINAL


def test_info_gives_the_maximum_quantity_and_notional(venue):
    btc = next(s for s in venue.info().symbols if s.symbol == SYMBOL)
    assert btc.max_quantity == Decimal("9000") and btc.max_notional == Decimal("9000000000")
    assert (btc.tick_size, btc.lot_size, btc.min_quantity) == (Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"))
