"""The ccxt adapter's pure parts: error mapping onto the protocol's closed set, URL rebasing, order conversion."""

from decimal import Decimal

import ccxt
import pytest

from shared.adapters.ccxt_venue import CcxtVenue, _error_for, _rebase, build_exchange
from shared.adapters.protocol import ErrorCode, ErrorKind, OrderType, VenueStatus


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
