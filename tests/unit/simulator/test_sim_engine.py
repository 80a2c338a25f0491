"""The matching engine against Binance-spot semantics, one behaviour per test."""

from __future__ import annotations

import pytest
from sim_helpers import CONFIG, FEES, SYMBOL, D, check_invariants, limit, market, new_engine, totals

from shared.simulator.engine import Engine
from shared.simulator.model import ExchangeError, Fees, OrderStatus, OrderType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL


def rejects(code: int, msg: str | None = None) -> pytest.RaisesExc:
    """Expect an ExchangeError with this code (and message)."""
    return pytest.raises(ExchangeError, check=lambda e: e.code == code and (msg is None or e.msg == msg))


def free(engine: Engine, account: str, asset: str) -> D:
    return engine.balances(account)[asset].free


def locked(engine: Engine, account: str, asset: str) -> D:
    return engine.balances(account)[asset].locked


# --- priority and fills ---------------------------------------------------------------------------------


def test_same_price_fills_in_arrival_order(engine: Engine) -> None:
    first = limit(engine, "bob", SELL, "1", "100").order
    second = limit(engine, "carol", SELL, "1", "100").order
    limit(engine, "alice", BUY, "1", "100")
    assert [t.order_id for t in engine.my_trades("bob", SYMBOL)] == [first.order_id]
    assert engine.get_order("bob", SYMBOL, order_id=first.order_id).status is OrderStatus.FILLED
    assert engine.get_order("carol", SYMBOL, order_id=second.order_id).status is OrderStatus.NEW


def test_better_price_fills_first_regardless_of_arrival(engine: Engine) -> None:
    limit(engine, "bob", SELL, "1", "101")
    cheaper = limit(engine, "carol", SELL, "1", "100").order
    fill, = limit(engine, "alice", BUY, "1", "101").fills
    assert fill.price == D("100")
    assert engine.get_order("carol", SYMBOL, order_id=cheaper.order_id).status is OrderStatus.FILLED


def test_taker_sweeps_levels_at_maker_prices(engine: Engine) -> None:
    limit(engine, "bob", SELL, "1", "100")
    limit(engine, "carol", SELL, "2", "101")
    placed = limit(engine, "alice", BUY, "2.5", "102")
    assert [(f.price, f.qty, f.is_maker) for f in placed.fills] == [
        (D("100"), D("1"), False), (D("101"), D("1.5"), False)]
    assert placed.order.status is OrderStatus.FILLED
    assert placed.order.cummulative_quote_qty == D("251.5")
    assert engine.depth(SYMBOL).asks == [(D("101"), D("0.5"))]


def test_partial_fill_rests_the_remainder(engine: Engine) -> None:
    limit(engine, "bob", SELL, "0.4", "100")
    placed = limit(engine, "alice", BUY, "1", "100")
    assert placed.order.status is OrderStatus.PARTIALLY_FILLED
    assert (placed.order.executed_qty, placed.order.orig_qty) == (D("0.4"), D("1"))
    assert engine.depth(SYMBOL).bids == [(D("100"), D("0.6"))]
    limit(engine, "carol", SELL, "0.6", "99")
    assert engine.get_order("alice", SYMBOL, order_id=placed.order.order_id).status is OrderStatus.FILLED


def test_ids_increase_and_timestamps_come_from_now_ms(engine: Engine) -> None:
    maker = limit(engine, "bob", SELL, "1", "100", now_ms=1_000).order
    taker = limit(engine, "alice", BUY, "0.5", "100", now_ms=2_000)
    assert taker.order.order_id == maker.order_id + 1
    assert (maker.time, taker.order.time, taker.fills[0].time) == (1_000, 2_000, 2_000)
    assert taker.fills[0].id == 1
    assert engine.get_order("bob", SYMBOL, order_id=maker.order_id).update_time == 2_000


# --- time in force and order types ----------------------------------------------------------------------


def test_ioc_expires_the_unfilled_remainder(engine: Engine) -> None:
    limit(engine, "bob", SELL, "0.3", "100")
    placed = limit(engine, "alice", BUY, "1", "100", TimeInForce.IOC)
    assert placed.order.status is OrderStatus.EXPIRED
    assert placed.order.executed_qty == D("0.3")
    assert engine.depth(SYMBOL).bids == []
    assert locked(engine, "alice", "USDT") == 0


def test_fok_fills_completely_or_not_at_all(engine: Engine) -> None:
    limit(engine, "bob", SELL, "0.3", "100")
    limit(engine, "bob", SELL, "0.3", "101")
    killed = limit(engine, "alice", BUY, "0.7", "101", TimeInForce.FOK)
    assert killed.order.status is OrderStatus.EXPIRED and killed.fills == []
    assert engine.my_trades("alice", SYMBOL) == []
    assert engine.depth(SYMBOL).asks == [(D("100"), D("0.3")), (D("101"), D("0.3"))]
    filled = limit(engine, "alice", BUY, "0.6", "101", TimeInForce.FOK)
    assert filled.order.status is OrderStatus.FILLED and len(filled.fills) == 2


def test_limit_maker_is_rejected_if_it_would_take(engine: Engine) -> None:
    limit(engine, "bob", SELL, "1", "100")
    with rejects(-2010, "Order would immediately match and take."):
        engine.place_order("alice", SYMBOL, BUY, OrderType.LIMIT_MAKER, now_ms=1, quantity=D("1"), price=D("100"))
    resting = engine.place_order("alice", SYMBOL, BUY, OrderType.LIMIT_MAKER, now_ms=1, quantity=D("1"),
                                 price=D("99.99"))
    assert resting.order.status is OrderStatus.NEW


def test_market_order_fills_across_levels_and_expires_the_rest(engine: Engine) -> None:
    limit(engine, "bob", BUY, "1", "100")
    limit(engine, "bob", BUY, "1", "99")
    placed = market(engine, "alice", SELL, "3")
    assert [f.price for f in placed.fills] == [D("100"), D("99")]
    assert placed.order.status is OrderStatus.EXPIRED and placed.order.executed_qty == D("2")
    assert locked(engine, "alice", "BTC") == 0


def test_market_buy_by_quote_amount_never_spends_more(engine: Engine) -> None:
    limit(engine, "bob", SELL, "1", "100")
    limit(engine, "bob", SELL, "1", "200")
    usdt = free(engine, "alice", "USDT")
    placed = engine.place_order("alice", SYMBOL, BUY, OrderType.MARKET, now_ms=1, quote_order_qty=D("150"))
    assert placed.order.status is OrderStatus.FILLED
    assert placed.order.executed_qty == placed.order.orig_qty == D("1.25")
    assert placed.order.cummulative_quote_qty == D("150")
    assert placed.order.orig_quote_order_qty == D("150")
    assert usdt - free(engine, "alice", "USDT") == D("150")


def test_market_buy_by_quote_amount_that_empties_the_book(engine: Engine) -> None:
    limit(engine, "bob", SELL, "1", "100")
    spent_all = engine.place_order("alice", SYMBOL, BUY, OrderType.MARKET, now_ms=1, quote_order_qty=D("100"))
    assert spent_all.order.status is OrderStatus.FILLED
    limit(engine, "bob", SELL, "1", "100")
    book_ran_out = engine.place_order("alice", SYMBOL, BUY, OrderType.MARKET, now_ms=1, quote_order_qty=D("150"))
    assert book_ran_out.order.status is OrderStatus.EXPIRED and book_ran_out.order.executed_qty == D("1")
    assert locked(engine, "alice", "USDT") == 0


def test_market_buy_needs_the_funds_for_what_it_would_take() -> None:
    engine = new_engine()
    engine.deposit("dave", "USDT", D("150"))
    limit(engine, "bob", SELL, "1", "100")
    limit(engine, "bob", SELL, "1", "200")
    with rejects(-2010, "Account has insufficient balance for requested action."):
        market(engine, "dave", BUY, "1.5")
    assert market(engine, "dave", BUY, "1").order.status is OrderStatus.FILLED


# --- stops ----------------------------------------------------------------------------------------------


def stop(engine: Engine, account: str, side: Side, otype: OrderType, qty: str, stop_price: str,
         price: str | None = None, now_ms: int = 1) -> int:
    extra = {} if price is None else {"price": D(price), "time_in_force": TimeInForce.GTC}
    return engine.place_order(account, SYMBOL, side, otype, now_ms=now_ms, quantity=D(qty), stop_price=D(stop_price),
                              **extra).order.order_id


def trade_at(engine: Engine, price: str, now_ms: int = 1) -> None:
    """Print a trade at ``price`` between bob and carol."""
    limit(engine, "bob", SELL, "0.2", price, now_ms=now_ms)
    limit(engine, "carol", BUY, "0.2", price, now_ms=now_ms)


def test_stop_loss_sell_waits_outside_the_book_then_sells_at_market(engine: Engine) -> None:
    trade_at(engine, "100")
    order_id = stop(engine, "alice", SELL, OrderType.STOP_LOSS, "1", "95")
    waiting = engine.get_order("alice", SYMBOL, order_id=order_id)
    assert (waiting.status, waiting.is_working, waiting.working_time) == (OrderStatus.NEW, False, None)
    assert engine.depth(SYMBOL).asks == [] and locked(engine, "alice", "BTC") == D("1")
    limit(engine, "bob", BUY, "2", "94")
    trade_at(engine, "96")
    assert engine.get_order("alice", SYMBOL, order_id=order_id).status is OrderStatus.NEW
    trade_at(engine, "95", now_ms=7)
    fired = engine.get_order("alice", SYMBOL, order_id=order_id)
    assert (fired.status, fired.working_time, fired.executed_qty) == (OrderStatus.FILLED, 7, D("1"))
    assert engine.my_trades("alice", SYMBOL)[0].price == D("94")


def test_stop_loss_limit_buy_triggers_when_the_price_rises_and_rests_as_a_limit(engine: Engine) -> None:
    trade_at(engine, "100")
    order_id = stop(engine, "alice", BUY, OrderType.STOP_LOSS_LIMIT, "1", "105", price="106")
    assert locked(engine, "alice", "USDT") == D("106")
    trade_at(engine, "105")
    fired = engine.get_order("alice", SYMBOL, order_id=order_id)
    assert fired.is_working and fired.status is OrderStatus.NEW
    assert engine.depth(SYMBOL).bids == [(D("106"), D("1"))]


def test_take_profit_sell_triggers_when_the_price_rises(engine: Engine) -> None:
    trade_at(engine, "100")
    order_id = stop(engine, "alice", SELL, OrderType.TAKE_PROFIT_LIMIT, "1", "110", price="110")
    trade_at(engine, "109")
    assert not engine.get_order("alice", SYMBOL, order_id=order_id).is_working
    trade_at(engine, "110")
    assert engine.depth(SYMBOL).asks == [(D("110"), D("1"))]


def test_stop_that_would_trigger_immediately_is_rejected(engine: Engine) -> None:
    trade_at(engine, "100")
    with rejects(-2010, "Order would trigger immediately."):
        stop(engine, "alice", SELL, OrderType.STOP_LOSS, "1", "100")
    with rejects(-2010, "Order would trigger immediately."):
        stop(engine, "alice", BUY, OrderType.TAKE_PROFIT, "1", "101")


def test_stops_cascade(engine: Engine) -> None:
    trade_at(engine, "100")
    first = stop(engine, "alice", SELL, OrderType.STOP_LOSS, "1", "99")
    second = stop(engine, "carol", SELL, OrderType.STOP_LOSS, "1", "97")
    limit(engine, "bob", BUY, "1", "98")
    limit(engine, "bob", BUY, "1", "96")
    trade_at(engine, "99")  # fires alice's stop, which sells at 98: not low enough for carol's
    assert engine.get_order("alice", SYMBOL, order_id=first).status is OrderStatus.FILLED
    assert not engine.get_order("carol", SYMBOL, order_id=second).is_working
    limit(engine, "bob", BUY, "1", "97.5")
    third = stop(engine, "alice", SELL, OrderType.STOP_LOSS, "1", "97.5")
    market(engine, "carol", SELL, "1")  # 97.5 fires alice's new stop, whose trade at 96 fires carol's
    assert engine.get_order("alice", SYMBOL, order_id=third).status is OrderStatus.FILLED
    assert engine.get_order("carol", SYMBOL, order_id=second).status is OrderStatus.EXPIRED
    assert engine.last_price(SYMBOL) == D("96")


def test_triggered_stop_market_buy_spends_at_most_the_free_quote() -> None:
    engine = new_engine()
    engine.deposit("dave", "USDT", D("150"))
    trade_at(engine, "100")
    order_id = stop(engine, "dave", BUY, OrderType.STOP_LOSS, "2", "101")
    assert locked(engine, "dave", "USDT") == 0
    limit(engine, "bob", SELL, "1", "101")
    limit(engine, "bob", SELL, "1", "102")
    market(engine, "carol", BUY, "0.5")
    fired = engine.get_order("dave", SYMBOL, order_id=order_id)  # 0.5 left at 101, then 99.5 USDT buys 0.975 at 102
    assert fired.status is OrderStatus.EXPIRED and fired.executed_qty == D("1.475")
    assert free(engine, "dave", "USDT") == D("0.05") and locked(engine, "dave", "USDT") == 0


def test_cancel_a_waiting_stop_releases_its_funds(engine: Engine) -> None:
    trade_at(engine, "100")
    order_id = stop(engine, "alice", SELL, OrderType.STOP_LOSS_LIMIT, "1", "95", price="94")
    canceled = engine.cancel_order("alice", SYMBOL, order_id=order_id, now_ms=2)
    assert canceled.status is OrderStatus.CANCELED and locked(engine, "alice", "BTC") == 0
    trade_at(engine, "90")
    assert engine.my_trades("alice", SYMBOL) == []


# --- fees and balances ----------------------------------------------------------------------------------


def test_fees_use_the_role_rate_in_the_received_asset(engine: Engine) -> None:
    before = totals(engine)
    limit(engine, "bob", SELL, "2", "100")
    fill, = limit(engine, "alice", BUY, "2", "100").fills
    assert (fill.commission, fill.commission_asset) == (D("2") * FEES.taker, "BTC")
    maker_fill, = engine.my_trades("bob", SYMBOL)
    assert (maker_fill.commission, maker_fill.commission_asset) == (D("200") * FEES.maker, "USDT")
    assert maker_fill.is_maker and not fill.is_maker
    assert free(engine, "alice", "BTC") == D("100") + D("2") - D("0.004")
    assert free(engine, "bob", "USDT") == D("10000000") + D("200") - D("0.2")
    assert engine.fees_collected() == {"BTC": D("0.004"), "USDT": D("0.2")}
    assert totals(engine) == before


def test_commission_rounds_up_to_a_whole_atom() -> None:
    engine = Engine(Fees(maker=D("0.00075"), taker=D("0.00075")))
    engine.add_symbol(CONFIG)
    engine.deposit("alice", "USDT", D("100"))
    engine.deposit("bob", "BTC", D("1"))
    before = totals(engine)
    limit(engine, "bob", SELL, "0.101", "99.99")
    limit(engine, "alice", BUY, "0.101", "99.99")
    maker_fill, = engine.my_trades("bob", SYMBOL)
    assert maker_fill.commission == D("0.00757425")  # 10.09899 * 0.00075 = 0.0075742425, rounded up
    assert totals(engine) == before


def test_limit_buy_locks_quote_and_refunds_price_improvement(engine: Engine) -> None:
    placed = limit(engine, "alice", BUY, "1", "100").order
    assert locked(engine, "alice", "USDT") == D("100")
    assert free(engine, "alice", "USDT") == D("9999900")
    engine.cancel_order("alice", SYMBOL, order_id=placed.order_id, now_ms=2)
    assert (locked(engine, "alice", "USDT"), free(engine, "alice", "USDT")) == (0, D("10000000"))
    limit(engine, "bob", SELL, "0.5", "90")
    limit(engine, "alice", BUY, "1", "100")
    assert locked(engine, "alice", "USDT") == D("50")
    assert free(engine, "alice", "USDT") == D("10000000") - D("45") - D("50")


def test_sell_locks_base_until_filled_or_canceled(engine: Engine) -> None:
    placed = limit(engine, "bob", SELL, "3", "100").order
    assert (locked(engine, "bob", "BTC"), free(engine, "bob", "BTC")) == (D("3"), D("97"))
    limit(engine, "alice", BUY, "1", "100")
    assert locked(engine, "bob", "BTC") == D("2")
    engine.cancel_order("bob", SYMBOL, order_id=placed.order_id, now_ms=2)
    assert (locked(engine, "bob", "BTC"), free(engine, "bob", "BTC")) == (0, D("99"))


def test_insufficient_balance_is_rejected_and_moves_nothing() -> None:
    engine = new_engine()
    engine.deposit("dave", "USDT", D("99.99"))
    with rejects(-2010, "Account has insufficient balance for requested action."):
        limit(engine, "dave", BUY, "1", "100")
    with rejects(-2010, "Account has insufficient balance for requested action."):
        limit(engine, "dave", SELL, "1", "100")
    assert engine.balances("dave")["USDT"].free == D("99.99")
    assert engine.open_orders("dave") == []


# --- self-trade prevention and halts --------------------------------------------------------------------


def test_self_trade_expires_the_taker(engine: Engine) -> None:
    limit(engine, "bob", SELL, "1", "100")
    own = limit(engine, "alice", SELL, "1", "101").order
    limit(engine, "bob", SELL, "1", "102")
    placed = limit(engine, "alice", BUY, "3", "102")
    assert placed.order.status is OrderStatus.EXPIRED_IN_MATCH
    assert placed.order.executed_qty == D("1")
    assert engine.get_order("alice", SYMBOL, order_id=own.order_id).status is OrderStatus.NEW
    assert engine.depth(SYMBOL).bids == []
    assert locked(engine, "alice", "USDT") == 0


def test_halted_symbol_refuses_orders_but_allows_cancels(engine: Engine) -> None:
    resting = limit(engine, "alice", BUY, "1", "100").order
    engine.set_halted(SYMBOL, True)
    assert engine.is_halted(SYMBOL)
    with rejects(-2010, "Market is closed."):
        limit(engine, "bob", SELL, "1", "100")
    assert engine.cancel_order("alice", SYMBOL, order_id=resting.order_id, now_ms=2).status is OrderStatus.CANCELED
    engine.set_halted(SYMBOL, False)
    assert limit(engine, "bob", SELL, "1", "100").order.status is OrderStatus.NEW


# --- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "code", "msg"), [
    ({"price": D("100.001")}, -1013, "Filter failure: PRICE_FILTER"),
    ({"price": D("2000000")}, -1013, "Filter failure: PRICE_FILTER"),
    ({"price": D("0")}, -1013, "Invalid price."),
    ({"quantity": D("0.0015")}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": D("10000")}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": D("-1")}, -1013, "Invalid quantity."),
    ({"quantity": D("NaN")}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": D("0.099")}, -1013, "Filter failure: NOTIONAL"),
    ({"price": None}, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed."),
    ({"time_in_force": None}, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
    ({"stop_price": D("90")}, -1106, "Parameter 'stopPrice' sent when not required."),
    ({"time_in_force": "GTX"}, -1115, "Invalid timeInForce."),
    ({"side": "HOLD"}, -1117, "Invalid side."),
    ({"order_type": "ICEBERG"}, -1116, "Invalid orderType."),
    ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
    ({"client_order_id": "has space"}, -1100, None),
])
def test_invalid_orders_are_rejected_with_binance_codes(engine: Engine, kwargs: dict, code: int, msg: str) -> None:
    request = {"account": "alice", "symbol": SYMBOL, "side": "BUY", "order_type": "LIMIT", "now_ms": 1,
               "quantity": D("1"), "price": D("100"), "time_in_force": "GTC"} | kwargs
    with rejects(code, msg):
        engine.place_order(**request)


@pytest.mark.parametrize(("kwargs", "code", "msg"), [
    ({}, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
    ({"quantity": D("1"), "time_in_force": "GTC"}, -1114, "TimeInForce parameter sent when not required."),
    ({"quantity": D("1"), "price": D("100")}, -1106, "Parameter 'price' sent when not required."),
    ({"quote_order_qty": D("100"), "side": "SELL"}, -1014, "Unsupported order combination."),
    ({"quote_order_qty": D("0.000000001")}, -1111, "Parameter 'quoteOrderQty' has too much precision."),
    ({"quote_order_qty": D("5")}, -1013, "Filter failure: NOTIONAL"),
])
def test_invalid_market_orders_are_rejected(engine: Engine, kwargs: dict, code: int, msg: str) -> None:
    request = {"account": "alice", "symbol": SYMBOL, "side": "BUY", "order_type": "MARKET", "now_ms": 1} | kwargs
    with rejects(code, msg):
        engine.place_order(**request)


def test_market_notional_is_valued_at_the_opposite_touch(engine: Engine) -> None:
    limit(engine, "bob", BUY, "1", "50")
    with rejects(-1013, "Filter failure: NOTIONAL"):
        market(engine, "alice", SELL, "0.199")
    assert market(engine, "alice", SELL, "0.2").order.status is OrderStatus.FILLED


def test_strings_are_accepted_for_enums(engine: Engine) -> None:
    placed = engine.place_order("alice", SYMBOL, "BUY", "LIMIT", now_ms=1, quantity=D("1"), price=D("100"),
                                time_in_force="GTC")
    assert (placed.order.side, placed.order.type, placed.order.time_in_force) == (BUY, OrderType.LIMIT,
                                                                                 TimeInForce.GTC)


# --- client order ids, cancels and queries --------------------------------------------------------------


def test_duplicate_client_order_id_is_rejected_while_open(engine: Engine) -> None:
    limit(engine, "alice", BUY, "1", "100", client_order_id="mine-1")
    with rejects(-2010, "Duplicate order sent."):
        limit(engine, "alice", BUY, "1", "99", client_order_id="mine-1")
    limit(engine, "bob", BUY, "1", "99", client_order_id="mine-1")  # another account may use it
    engine.cancel_order("alice", SYMBOL, orig_client_order_id="mine-1", now_ms=2)
    reused = limit(engine, "alice", BUY, "1", "98", client_order_id="mine-1").order
    assert engine.get_order("alice", SYMBOL, orig_client_order_id="mine-1").order_id == reused.order_id


def test_cancel_by_either_id_and_a_second_cancel_is_unknown(engine: Engine) -> None:
    placed = limit(engine, "alice", BUY, "1", "100", client_order_id="c1").order
    canceled = engine.cancel_order("alice", SYMBOL, orig_client_order_id="c1", now_ms=5)
    assert (canceled.status, canceled.update_time, canceled.order_id) == (OrderStatus.CANCELED, 5, placed.order_id)
    with rejects(-2011, "Unknown order sent."):
        engine.cancel_order("alice", SYMBOL, order_id=placed.order_id, now_ms=6)
    assert engine.get_order("alice", SYMBOL, order_id=placed.order_id).status is OrderStatus.CANCELED


def test_cancel_and_query_errors(engine: Engine) -> None:
    theirs = limit(engine, "bob", BUY, "1", "100", client_order_id="b1").order
    with rejects(-2011, "Unknown order sent."):
        engine.cancel_order("alice", SYMBOL, order_id=theirs.order_id, now_ms=1)
    with rejects(-2011, "Unknown order sent."):
        engine.cancel_order("bob", SYMBOL, order_id=theirs.order_id, orig_client_order_id="other", now_ms=1)
    with rejects(-2011):
        engine.cancel_order("alice", SYMBOL, order_id=999, now_ms=1)
    with rejects(-1102):
        engine.cancel_order("alice", SYMBOL, now_ms=1)
    with rejects(-2013, "Order does not exist."):
        engine.get_order("alice", SYMBOL, orig_client_order_id="b1")
    filled = market(engine, "alice", SELL, "1").order
    with rejects(-2011):
        engine.cancel_order("alice", SYMBOL, order_id=filled.order_id, now_ms=1)


def test_cancel_open_orders_and_open_order_queries(engine: Engine) -> None:
    a = limit(engine, "alice", BUY, "1", "100").order
    b = limit(engine, "alice", SELL, "1", "110").order
    limit(engine, "bob", SELL, "1", "111")
    assert [o.order_id for o in engine.open_orders("alice", SYMBOL)] == [a.order_id, b.order_id]
    assert engine.open_orders("alice") == engine.open_orders("alice", SYMBOL)
    canceled = engine.cancel_open_orders("alice", SYMBOL, now_ms=3)
    assert [o.status for o in canceled] == [OrderStatus.CANCELED] * 2
    assert engine.open_orders("alice") == []
    assert engine.depth(SYMBOL).asks == [(D("111"), D("1"))]


def test_all_orders_and_my_trades_page_by_id(engine: Engine) -> None:
    for i in range(5):
        limit(engine, "bob", SELL, "1", str(100 + i))
        limit(engine, "alice", BUY, "1", str(100 + i))
    orders = engine.all_orders("alice", SYMBOL)
    assert [o.order_id for o in orders] == [2, 4, 6, 8, 10]
    assert [o.order_id for o in engine.all_orders("alice", SYMBOL, from_order_id=5, limit=2)] == [6, 8]
    assert [o.order_id for o in engine.all_orders("alice", SYMBOL, limit=2)] == [8, 10]
    trades = engine.my_trades("alice", SYMBOL)
    assert [t.id for t in trades] == [1, 2, 3, 4, 5]
    assert [t.id for t in engine.my_trades("alice", SYMBOL, from_id=3, limit=2)] == [3, 4]
    assert [t.id for t in engine.my_trades("alice", SYMBOL, limit=2)] == [4, 5]
    public = engine.recent_trades(SYMBOL, limit=2)
    assert [(t.id, t.price, t.is_buyer_maker) for t in public] == [(4, D("103"), False), (5, D("104"), False)]
    assert engine.last_price(SYMBOL) == D("104")


def test_history_keeps_the_last_closed_orders_per_account() -> None:
    engine = new_engine(history_limit=2)
    ids = [limit(engine, "alice", BUY, "1", "100", client_order_id=f"c{i}").order.order_id for i in range(3)]
    for order_id in ids:
        engine.cancel_order("alice", SYMBOL, order_id=order_id, now_ms=2)
    with rejects(-2013):
        engine.get_order("alice", SYMBOL, order_id=ids[0])
    with rejects(-2013):
        engine.get_order("alice", SYMBOL, orig_client_order_id="c0")
    assert [o.order_id for o in engine.all_orders("alice", SYMBOL)] == ids[1:]


def test_depth_aggregates_levels_best_first(engine: Engine) -> None:
    for price in ("99", "100", "100", "98"):
        limit(engine, "alice", BUY, "1", price)
    limit(engine, "bob", SELL, "2", "101")
    depth = engine.depth(SYMBOL, limit=2)
    assert depth.bids == [(D("100"), D("2")), (D("99"), D("1"))]
    assert depth.asks == [(D("101"), D("2"))]
    assert depth.last_update_id == 5


def test_random_operations_keep_the_invariants() -> None:
    engine = new_engine()
    before = totals(engine)
    limit(engine, "bob", SELL, "1", "100")
    limit(engine, "carol", SELL, "2", "100.5")
    limit(engine, "alice", BUY, "2.5", "101")
    limit(engine, "alice", BUY, "1", "99")
    market(engine, "bob", SELL, "0.5")
    check_invariants(engine, before)


def test_configuration_errors_are_value_errors() -> None:
    engine = Engine()
    engine.add_symbol(CONFIG)
    with pytest.raises(ValueError):
        engine.add_symbol(CONFIG)
    with pytest.raises(ValueError):
        engine.add_symbol(CONFIG.__class__("X", "A", "B", D("0.01"), D("0.000000001"), D("0.000000001"), D("1")))
    with pytest.raises(ValueError):
        engine.deposit("alice", "BTC", D("0.000000001"))
