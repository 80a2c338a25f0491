"""The ccxt adapter's pure parts: error mapping onto the protocol's closed set, URL rebasing, order conversion,
trading rules by ccxt's precision mode, and orders sent exactly as asked or refused."""

import decimal
from decimal import Decimal

import ccxt
import pytest
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS

from shared.adapters.ccxt_venue import AdapterError, CcxtVenue, _error_for, _rebase, build_exchange
from shared.adapters.protocol import ErrorCode, ErrorKind, OrderType, PlaceOrder, Side, VenueStatus


@pytest.mark.parametrize(
    ("exc", "writes", "code"),
    [
        (ccxt.RateLimitExceeded("slow down"), True, ErrorCode.RATE_LIMITED),
        (ccxt.DDoSProtection("418"), False, ErrorCode.RATE_LIMITED),
        (ccxt.OnMaintenance("maintenance"), True, ErrorCode.VENUE_UNAVAILABLE),
        (ccxt.RequestTimeout("timed out"), True, ErrorCode.TIMEOUT),
        (ccxt.RequestTimeout("timed out"), False, ErrorCode.NETWORK),
        (ccxt.ExchangeNotAvailable("500"), True, ErrorCode.TIMEOUT),  # Binance: a 5xx on a write is "unknown"
        (ccxt.ExchangeNotAvailable("500"), False, ErrorCode.VENUE_UNAVAILABLE),
        (ccxt.NetworkError("reset"), False, ErrorCode.NETWORK),
        (ccxt.InsufficientFunds("no money"), True, ErrorCode.INSUFFICIENT_FUNDS),
        (ccxt.OrderNotFound("-2013"), False, ErrorCode.UNKNOWN_ORDER),
        (ccxt.InvalidOrder("-1013 Filter failure: PRICE_FILTER"), True, ErrorCode.INVALID_ORDER),
        (ccxt.BadSymbol("no such market"), True, ErrorCode.INVALID_ORDER),
        (ccxt.DuplicateOrderId("dup"), True, ErrorCode.DUPLICATE),
        (ccxt.BadRequest("bad"), False, ErrorCode.BAD_REQUEST),
        (ccxt.AuthenticationError("-2015"), True, ErrorCode.REJECTED),
    ],
)
def test_ccxt_errors_map_onto_the_closed_set(exc, writes, code):
    err = _error_for(exc, writes=writes)
    assert err.code is code


def test_kinds_follow_codes():
    assert _error_for(ccxt.RequestTimeout("x"), writes=True).kind is ErrorKind.UNKNOWN_OUTCOME
    assert _error_for(ccxt.RateLimitExceeded("x"), writes=True).kind is ErrorKind.RETRYABLE
    assert _error_for(ccxt.InsufficientFunds("x"), writes=True).kind is ErrorKind.FINAL


def test_venue_specific_duplicate_message():
    err = _error_for(ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), writes=True,
                     duplicate_messages=("Duplicate order sent",))
    assert err.code is ErrorCode.DUPLICATE


def test_rebase_moves_every_url_and_keeps_paths():
    urls = {"public": "https://api.binance.com/api/v3", "sapi": {"x": "https://api.binance.com/sapi/v1"}, "n": None}
    assert _rebase(urls, "http://127.0.0.1:9201") == {
        "public": "http://127.0.0.1:9201/api/v3", "sapi": {"x": "http://127.0.0.1:9201/sapi/v1"}, "n": None}


def test_build_exchange_points_ccxt_at_the_override():
    ex = build_exchange("binance", api_url="http://127.0.0.1:9201/", api_key="k", secret="s")
    assert ex.urls["api"]["public"] == "http://127.0.0.1:9201/api/v3"
    assert ex.enableRateLimit and ex.options["fetchMargins"] is False
    with pytest.raises(ValueError, match="unknown ccxt exchange"):
        build_exchange("no-such-venue")


def test_ccxt_order_becomes_a_protocol_order():
    venue = CcxtVenue("binance", build_exchange("binance"))
    order = venue._order({
        "id": "12", "clientOrderId": "c-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "status": "open",
        "amount": 0.5, "filled": 0.2, "remaining": 0.3, "price": 50000.0, "average": 49990.0,
        "timeInForce": "GTC", "timestamp": 1, "lastUpdateTimestamp": 2,
    })
    assert order.status is VenueStatus.OPEN and order.type is OrderType.LIMIT
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == \
        (Decimal("0.5"), Decimal("0.2"), Decimal("0.3"))
    assert order.average_price == Decimal("49990.0") and order.venue_order_id == "12"
    canceled = venue._order({"id": "13", "symbol": "BTC/USDT", "side": "sell", "type": "stop_loss_limit",
                             "status": "canceled", "amount": 1, "filled": 0.25, "remaining": 0.75})
    assert canceled.status is VenueStatus.CANCELED and canceled.type is OrderType.STOP_LIMIT
    assert canceled.remaining_quantity == 0  # nothing more can fill
    filled = venue._order({"id": "14", "symbol": "BTC/USDT", "side": "sell", "type": "market", "status": "closed",
                           "amount": 1, "filled": 1, "remaining": 0})
    assert filled.status is VenueStatus.FILLED and filled.price is None


# ---- trading rules by ccxt's precision mode, and orders sent exactly as asked -------------------------------
# A ccxt market as binance's parser builds it with exchange.number = str (the venue's own strings).
MARKET = {"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC", "quoteId": "USDT",
          "spot": True, "type": "spot", "active": True, "maker": "0.001", "taker": "0.001",
          "precision": {"amount": "0.00001000", "price": "0.01000000"},
          "limits": {"amount": {"min": "0.00001000", "max": "9000.00000000"},
                     "cost": {"min": "5.00000000", "max": "9000000000.00000000"}}}


def venue_with(market: dict, exchange_id: str = "binance", mode: int | None = None) -> CcxtVenue:
    ex = build_exchange(exchange_id)
    if mode is not None:
        ex.precisionMode = mode
    ex.set_markets([market])
    return CcxtVenue(exchange_id, ex)


def btc(venue: CcxtVenue):
    return next(s for s in venue.info().symbols if s.symbol == "BTC/USDT")


def test_tick_size_mode_reads_the_steps_and_the_limits_as_the_venue_wrote_them():
    s = btc(venue_with(MARKET))
    assert (s.tick_size, s.lot_size, s.min_quantity, s.min_notional) == \
        (Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5"))
    assert (s.max_quantity, s.max_notional) == (Decimal("9000"), Decimal("9000000000"))
    assert s.price_significant_digits is None


def test_tick_size_mode_from_floats_of_an_older_markets_cache():
    s = btc(venue_with({**MARKET, "precision": {"amount": 1e-05, "price": 0.01},
                        "limits": {"amount": {"min": 1e-05, "max": None}, "cost": {"min": 5.0}}}))
    assert (s.tick_size, s.lot_size, s.min_quantity, s.max_quantity) == \
        (Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), None)


def test_decimal_places_mode_turns_digit_counts_into_steps():
    s = btc(venue_with({**MARKET, "precision": {"amount": 3, "price": 2}}, mode=DECIMAL_PLACES))
    assert (s.tick_size, s.lot_size) == (Decimal("0.01"), Decimal("0.001"))


def test_significant_digits_mode_has_no_price_grid_but_a_digit_count():
    s = btc(venue_with({**MARKET, "precision": {"amount": 4, "price": 5}}, mode=SIGNIFICANT_DIGITS))
    assert (s.tick_size, s.price_significant_digits) == (Decimal(0), 5)
    assert (s.lot_size, s.quantity_significant_digits) == (Decimal(0), 4)


def test_bitfinex_prices_count_significant_digits_and_amounts_decimal_places():
    v = venue_with({**MARKET, "id": "tBTCUSD", "precision": {"amount": 8, "price": 5}}, exchange_id="bitfinex")
    assert v.exchange.precisionMode == SIGNIFICANT_DIGITS
    s = btc(v)
    assert (s.tick_size, s.price_significant_digits) == (Decimal(0), 5)
    assert (s.lot_size, s.quantity_significant_digits) == (Decimal("0.00000001"), None)


def test_markets_are_parsed_with_string_numbers():
    ex = build_exchange("binance")
    seen = []

    def load_markets():
        seen.append(ex.number)
        ex.set_markets([MARKET])
        return ex.markets

    ex.load_markets = load_markets
    CcxtVenue("binance", ex).markets()
    assert seen == [str] and ex.number is str  # for good: no window in which another thread parses floats


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def __call__(self, *args):
        self.sent.append(args)
        return {"id": "1", "clientOrderId": args[-1]["clientOrderId"], "symbol": args[0], "side": args[2],
                "type": args[1], "status": "open", "amount": float(args[3]), "filled": 0.0, "remaining": float(args[3]),
                "price": float(args[4]) if args[4] else None}


class Marks:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def mark(self, client_order_id: str) -> bool:
        self.ids.append(client_order_id)
        return True


def placing(market: dict = MARKET) -> tuple[CcxtVenue, Recorder, Marks]:
    ex = build_exchange("binance")
    ex.set_markets([market])
    rec, marks = Recorder(), Marks()
    ex.create_order = rec
    return CcxtVenue("binance", ex, placed=marks), rec, marks


def order(side: str = "buy", qty: str = "0.001", price: str | None = "50000", **kw) -> PlaceOrder:
    return PlaceOrder(client_order_id="c-1", symbol="BTC/USDT", side=Side(side),
                      type=OrderType.LIMIT if price else OrderType.MARKET, quantity=Decimal(qty),
                      price=Decimal(price) if price else None, **kw)


def test_an_amount_below_the_precision_is_a_final_invalid_order_and_nothing_is_sent_or_marked():
    venue, rec, marks = placing()
    with pytest.raises(AdapterError) as err:
        venue.place(order(qty="0.000001", price=None))  # ccxt itself would raise InvalidOrder: once an HTTP 500
    assert err.value.code is ErrorCode.INVALID_ORDER and err.value.kind is ErrorKind.FINAL
    assert "lot size 0.00001" in str(err.value) and "minimum quantity 0.00001" in str(err.value)
    assert rec.sent == [] and marks.ids == []


def test_ccxts_own_invalid_order_while_formatting_is_final_too():
    venue, rec, _ = placing({**MARKET, "limits": {"amount": {}, "cost": {}}})
    venue.exchange.amount_to_precision = lambda symbol, amount: (_ for _ in ()).throw(ccxt.InvalidOrder("tiny"))
    with pytest.raises(AdapterError) as err:
        venue.place(order())
    assert err.value.code is ErrorCode.INVALID_ORDER and rec.sent == []


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_price_off_the_tick_is_refused_never_rounded(side):
    venue, rec, _ = placing()
    assert venue.exchange.price_to_precision("BTC/USDT", "50000.005") == "50000.01"  # what ccxt would have sent
    with pytest.raises(AdapterError) as err:
        venue.place(order(side=side, price="50000.005"))
    assert err.value.code is ErrorCode.INVALID_ORDER and "price: 50000.005 is not a multiple" in str(err.value)
    assert rec.sent == []


def test_an_order_that_fits_goes_out_with_its_numbers_exactly():
    venue, rec, _ = placing()
    result = venue.place(order(side="sell", qty="0.12345", price="50000.10", stop_price=None))
    (symbol, kind, side, amount, price, params), = rec.sent
    assert (symbol, kind, side) == ("BTC/USDT", "limit", "sell")
    assert (Decimal(amount), Decimal(price)) == (Decimal("0.12345"), Decimal("50000.1"))
    assert params["clientOrderId"] == "c-1" and result.created


def test_a_stop_price_off_the_tick_is_refused():
    venue, rec, _ = placing()
    with pytest.raises(AdapterError, match="stop_price"):
        venue.place(PlaceOrder(client_order_id="c-2", symbol="BTC/USDT", side=Side.SELL, type=OrderType.STOP,
                               quantity=Decimal("0.001"), stop_price=Decimal("49000.001")))
    assert rec.sent == []


def test_formatting_that_would_change_a_value_is_refused():
    venue, rec, _ = placing()
    venue.exchange.amount_to_precision = lambda symbol, amount: "0.001"  # a venue-specific formatter that rounds
    with pytest.raises(AdapterError) as err:
        venue.place(order(qty="0.00123"))
    assert err.value.code is ErrorCode.INVALID_ORDER and "would go out as 0.001" in str(err.value)
    assert rec.sent == []


# ---- every ccxt number read exactly: values a float round trip would change ----------------------------------
# 12345678.123456789 has 17 significant digits (a float keeps 12345678.12345679), 0.30000000000000004 is what a float
# sum prints, 1e-9 is where float reprs turn scientific, 12345679.30000000000000004 has 25 digits.
BIG, SUM, TINY, LONG = "12345678.123456789", "0.30000000000000004", "0.000000001", "12345679.30000000000000004"

BINANCE = {  # what Binance (and its simulators) answer, numbers as decimal strings
    "/api/v3/depth": {"lastUpdateId": 1, "bids": [[BIG, TINY], ["9.5", SUM]], "asks": [[LONG, "2.00000000"]]},
    "/api/v3/order": {"symbol": "BTCUSDT", "orderId": 12, "orderListId": -1, "clientOrderId": "c-1", "price": BIG,
                      "origQty": SUM, "executedQty": TINY, "cummulativeQuoteQty": "0.012345678123456789",
                      "status": "PARTIALLY_FILLED", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
                      "stopPrice": "0.00000000", "time": 1, "updateTime": 2, "isWorking": True},
    "/api/v3/myTrades": [{"symbol": "BTCUSDT", "id": 7, "orderId": 12, "orderListId": -1, "price": BIG, "qty": TINY,
                          "quoteQty": "0.012345678123456789", "commission": SUM, "commissionAsset": "USDT",
                          "time": 3, "isBuyer": True, "isMaker": False, "isBestMatch": True}],
    "/api/v3/aggTrades": [{"a": 1, "p": BIG, "q": TINY, "f": 1, "l": 1, "T": 1000, "m": True, "M": True}],
    "/api/v3/klines": [[60_000, BIG, LONG, TINY, SUM, "1e-9", 119_999, "1", 1, "0", "0", "0"]],
    "/api/v3/ticker/24hr": {"symbol": "BTCUSDT", "lastPrice": BIG, "bidPrice": SUM, "bidQty": TINY, "askPrice": LONG,
                            "askQty": "1", "volume": TINY, "quoteVolume": "1", "openTime": 1, "closeTime": 2},
    "/api/v3/account": {"balances": [{"asset": "BTC", "free": SUM, "locked": TINY},
                                     {"asset": "USDT", "free": BIG, "locked": "0"}], "accountType": "SPOT"},
}


def answering(responses: dict = BINANCE) -> CcxtVenue:
    """A venue on ccxt's real binance parsers whose HTTP answers are the canned ones above."""
    ex = build_exchange("binance", api_key="k", secret="s")
    ex.set_markets([{**MARKET, "margin": False, "swap": False, "future": False, "option": False, "contract": False,
                     "linear": None, "inverse": None, "settle": None, "settleId": None}])

    def fetch(url, method="GET", headers=None, body=None):
        path = url.split("?")[0].removeprefix("https://api.binance.com")
        return responses[path]

    ex.fetch = fetch
    return CcxtVenue("binance", ex)


def test_an_orders_numbers_are_the_venues_own():
    order = answering().get(venue_order_id="12", symbol="BTC/USDT")
    assert (order.price, order.quantity, order.filled_quantity) == (Decimal(BIG), Decimal(SUM), Decimal(TINY))
    assert order.remaining_quantity == Decimal(SUM) - Decimal(TINY)  # ccxt's own string arithmetic, exact
    assert order.average_price == Decimal(BIG)


def test_a_fills_price_quantity_and_fee_are_the_venues_own():
    (fill,) = answering().fills("BTC/USDT").fills
    assert (fill.price, fill.quantity, fill.fee, fill.fee_currency) == (Decimal(BIG), Decimal(TINY), Decimal(SUM),
                                                                        "USDT")


def test_book_levels_are_the_venues_own_and_stay_in_price_order():
    book = answering().book("BTC/USDT", 5)
    assert [(lvl.price, lvl.quantity) for lvl in book.bids] == [(Decimal(BIG), Decimal(TINY)),
                                                                (Decimal("9.5"), Decimal(SUM))]
    assert [(lvl.price, lvl.quantity) for lvl in book.asks] == [(Decimal(LONG), Decimal(2))]


def test_public_trades_and_candles_are_the_venues_own():
    venue = answering()
    (trade,) = venue.trades("BTC/USDT", 0).trades
    assert (trade.price, trade.quantity) == (Decimal(BIG), Decimal(TINY))
    (candle,) = venue.candles("BTC/USDT", 0).candles
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == \
        (Decimal(BIG), Decimal(LONG), Decimal(TINY), Decimal(SUM), Decimal(TINY))


def test_tickers_and_balances_come_as_the_venues_strings_too():
    exchange = answering().exchange
    ticker = exchange.fetch_ticker("BTC/USDT")
    assert (ticker["last"], ticker["bid"], ticker["ask"], ticker["baseVolume"]) == (BIG, SUM, LONG, TINY)
    balance = exchange.fetch_balance()
    assert (balance["BTC"]["free"], balance["BTC"]["used"], balance["USDT"]["free"]) == (SUM, TINY, BIG)
    assert Decimal(balance["BTC"]["total"]) == Decimal(SUM) + Decimal(TINY)


def test_numbers_are_plain_decimals_with_every_digit_kept_whatever_the_context():
    from shared.adapters.ccxt_venue import _dec
    with decimal.localcontext() as context:
        context.prec = 6
        assert _dec(LONG) == Decimal(LONG) and _dec("0.00100000") == Decimal("0.001")
    assert str(_dec("5.00000000")) == "5" and str(_dec("1E+2")) == "100" and _dec("") is None


def test_ccxt_leaves_this_threads_decimal_context_as_it_was():
    """ccxt's decimal_to_precision sets ROUND_HALF_UP and traps Underflow on the calling thread's context."""
    with decimal.localcontext() as context:
        context.rounding, context.traps[decimal.Underflow] = decimal.ROUND_HALF_EVEN, False  # Python's defaults
        before = (context.prec, context.rounding, dict(context.traps))
        venue, rec, _ = placing()
        venue.place(order(side="sell", qty="0.12345", price="50000.10"))  # amount_ and price_to_precision
        answering().book("BTC/USDT", 5)
        after = decimal.getcontext()
        assert rec.sent and (after.prec, after.rounding, dict(after.traps)) == before
        assert Decimal(1) / Decimal(8) * Decimal("0.5") == Decimal("0.0625")
        assert (Decimal("2.5") / Decimal(1)).quantize(Decimal(1)) == Decimal(2)  # half-even, as before the calls


# ---- one order's fills are paged to the end -----------------------------------------------------------------
class Account:
    """An account's trades of one symbol as ccxt's fetch_my_trades gives them: oldest first from `since`, else
    the newest `limit` (Binance's myTrades); counts the calls."""

    def __init__(self, trades: list[dict]) -> None:
        self.trades = trades
        self.calls: list[tuple] = []

    def fetch_my_trades(self, symbol, since=None, limit=None, params=None):
        self.calls.append((since, limit))
        if since is None:
            return self.trades[-limit:]
        return [t for t in self.trades if t["timestamp"] >= since][:limit]

    def fetch_order_trades(self, order_id, symbol, since=None, limit=None, params=None):
        mine = Account([t for t in self.trades if t["order"] == order_id])
        return mine.fetch_my_trades(symbol, since, limit)


def trade(n: int, order: str, ms: int) -> dict:
    return {"id": str(n), "order": order, "symbol": "BTC/USDT", "side": "buy", "price": "50000", "amount": "0.001",
            "fee": {"cost": "0.05", "currency": "USDT"}, "takerOrMaker": "taker", "timestamp": ms}


def account_venue(trades: list[dict], *, order_trades: bool = False, created_ms: int | None = 10_000,
                  scan_page: int = 6):
    """A venue on `trades` whose scans by time ask for `scan_page` trades a call (the trades_page quirk)."""
    ex = build_exchange("binance")
    ex.set_markets([MARKET])
    ex.has = {**ex.has, "fetchOrderTrades": order_trades}
    account = Account(trades)
    ex.fetch_my_trades = account.fetch_my_trades
    ex.fetch_order_trades = account.fetch_order_trades
    ex.fetch_order = lambda order_id, symbol, params=None: {
        "id": order_id, "symbol": symbol, "side": "buy", "type": "limit", "status": "closed", "amount": "1",
        "filled": "1", "remaining": "0", "price": "50000", "timestamp": created_ms}
    venue = CcxtVenue("binance", ex)
    venue._quirks["trades_page"] = scan_page
    return venue, account


def every_fill(venue: CcxtVenue, order_id: str, limit: int) -> list[str]:
    """What the service does (shared.app.orders.all_fills): follow the cursor until a short page."""
    ids, since = [], None
    while True:
        page = venue.fills("BTC/USDT", since=since, limit=limit, venue_order_id=order_id)
        ids += [f.trade_id for f in page.fills]
        if len(page.fills) < limit:
            return ids
        since = page.cursor


def test_without_fetch_order_trades_an_orders_fills_older_than_the_newest_page_are_all_found():
    old = [trade(n, "A", 10_000 + n) for n in range(1, 8)]  # order A's 7 fills, then 40 trades of other orders
    others = [trade(n, "B", 20_000 + n) for n in range(8, 48)]
    venue, account = account_venue(old + others)
    assert all(t["order"] == "B" for t in account.fetch_my_trades("BTC/USDT", None, 10))  # the newest page
    assert every_fill(venue, "A", 10) == [str(n) for n in range(1, 8)]
    assert account.calls[1][0] == 10_000 - 5_000  # from the order's creation, less the look-back


def test_more_fills_than_a_page_come_page_by_page_each_once():
    mixed = [trade(n, "A" if n % 3 else "B", 10_000 + n) for n in range(1, 100)]
    venue, _ = account_venue(mixed)
    assert every_fill(venue, "A", 7) == [str(n) for n in range(1, 100) if n % 3]


def test_trades_sharing_a_millisecond_across_a_page_boundary_are_not_lost():
    same_ms = [trade(n, "A", 10_000 + n // 4) for n in range(1, 30)]  # four trades per millisecond
    venue, _ = account_venue(same_ms)
    assert every_fill(venue, "A", 5) == [str(n) for n in range(1, 30)]


def test_a_full_page_within_one_millisecond_is_an_error_not_a_silent_cut():
    venue, _ = account_venue([trade(n, "A", 10_000) for n in range(1, 12)], scan_page=6)
    with pytest.raises(AdapterError, match="cannot be paged by time"):
        venue.fills("BTC/USDT", limit=5, venue_order_id="A")
    roomy, _ = account_venue([trade(n, "A", 10_000) for n in range(1, 12)], scan_page=20)
    assert every_fill(roomy, "A", 5) == [str(n) for n in range(1, 12)]


def test_with_fetch_order_trades_a_full_page_is_followed_to_the_end():
    venue, account = account_venue([trade(n, "A", 10_000 + n) for n in range(1, 24)], order_trades=True)
    assert every_fill(venue, "A", 10) == [str(n) for n in range(1, 24)]
    few, _ = account_venue([trade(n, "A", 10_000 + n) for n in range(1, 4)], order_trades=True)
    assert [f.trade_id for f in few.fills("BTC/USDT", limit=10, venue_order_id="A").fills] == ["1", "2", "3"]


def test_an_order_without_a_creation_time_is_scanned_from_the_epoch():
    venue, account = account_venue([trade(1, "A", 5), trade(2, "B", 6)], created_ms=None)
    assert [f.trade_id for f in venue.fills("BTC/USDT", limit=10, venue_order_id="A").fills] == ["1"]
    assert account.calls[0][0] == 0
