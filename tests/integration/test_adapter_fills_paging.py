"""One order's fills are paged to the end, against the stack's simulated Binance and ccxt's real binance class:
through the stack's adapter (ccxt's fetchOrderTrades, an order with more fills than a page), and for a venue
without fetchOrderTrades (the same class with that capability taken away), whose fallback pages the account's
trades from the order's creation (the order's fills are older than the newest page of account trades)."""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal

import pytest
import requests

from shared.adapters.ccxt_venue import CcxtVenue, build_exchange
from shared.adapters.protocol import OrderType, PlaceOrder, Side, VenueStatus
from shared.infra.venues import VenueClient, session

SYMBOL = "BTC/USDT"
PAGE = 3  # fills per call: small, so that a handful of trades spans several pages


@pytest.fixture(scope="module")
def sim(stack) -> str:
    return stack.simulators["binance"]


@pytest.fixture
def paused(sim):
    """The simulator's background market paused (nothing moves the book while a test sweeps it), resumed after."""
    def market(paused: bool) -> None:
        resp = requests.post(f"{sim}/admin/market", json={"paused": paused}, timeout=10)
        assert resp.status_code == 200, resp.text

    market(True)
    yield
    market(False)


def own_account(sim: str, *, order_trades: bool) -> CcxtVenue:
    """A CcxtVenue on an account of its own at the simulator; without fetchOrderTrades when asked."""
    exchange = build_exchange("binance", api_url=sim, api_key=f"paging-{uuid.uuid4().hex[:12]}", secret="x",
                              rate_limit_ms=0, timeout_ms=30_000)
    if not order_trades:
        exchange.has = {**exchange.has, "fetchOrderTrades": False}
    return CcxtVenue("binance", exchange)


def sweeping_quantity(venue, levels: int = 3) -> Decimal:
    """A quantity that takes the best `levels` ask levels and some of the next: at least `levels` + 1 fills."""
    book = venue.book(SYMBOL, levels + 1)
    lot = next(s for s in venue.info().symbols if s.symbol == SYMBOL).lot_size
    wanted = sum(level.quantity for level in book.asks[:levels]) + book.asks[levels].quantity / 2
    return wanted.quantize(lot, rounding=ROUND_DOWN)


def market(side: Side, quantity: Decimal) -> PlaceOrder:
    return PlaceOrder(client_order_id=f"pg-{uuid.uuid4().hex[:16]}", symbol=SYMBOL, side=side,
                      type=OrderType.MARKET, quantity=quantity)


def every_fill(venue, venue_order_id: str) -> list:
    """What the service does (shared.app.orders.all_fills), with a small page: follow the cursor to a short page."""
    fills, since = [], None
    for _ in range(1_000):
        page = venue.fills(SYMBOL, since=since, limit=PAGE, venue_order_id=venue_order_id)
        fills += page.fills
        if len(page.fills) < PAGE:
            return fills
        since = page.cursor
    raise AssertionError("the cursor never reached a short page")


def test_without_fetch_order_trades_fills_older_than_the_newest_page_are_all_found(sim, paused):
    venue = own_account(sim, order_trades=False)
    assert not venue.exchange.has["fetchOrderTrades"]
    swept = venue.place(market(Side.BUY, sweeping_quantity(venue))).order
    assert swept.status is VenueStatus.FILLED
    for n in range(2 * PAGE):  # newer trades of other orders: more than a page of them
        venue.place(market(Side.SELL if n % 2 else Side.BUY, Decimal("0.001")))

    newest = venue.exchange.fetch_my_trades(SYMBOL, None, PAGE)
    assert len(newest) == PAGE and all(t["order"] != swept.venue_order_id for t in newest)  # the old fallback's view
    truth = venue.exchange.fetch_my_trades(SYMBOL, params={"orderId": swept.venue_order_id})  # the venue's own list
    assert len(truth) > PAGE

    fills = every_fill(venue, swept.venue_order_id)
    assert [f.trade_id for f in fills] == [str(t["id"]) for t in truth]
    assert sum(f.quantity for f in fills) == swept.filled_quantity
    assert all(f.venue_order_id == swept.venue_order_id for f in fills)


def test_an_order_with_more_fills_than_a_page_gets_them_all_through_the_adapter(stack, paused):
    venue = VenueClient("binance", stack.adapters["binance"], session())
    swept = venue.place(market(Side.BUY, sweeping_quantity(venue, levels=PAGE + 1))).order
    assert swept.status is VenueStatus.FILLED

    fills = every_fill(venue, swept.venue_order_id)
    assert len(fills) > PAGE and len({f.trade_id for f in fills}) == len(fills)
    assert sum(f.quantity for f in fills) == swept.filled_quantity
    assert [f.timestamp_ms for f in fills] == sorted(f.timestamp_ms for f in fills)
    venue.place(market(Side.SELL, swept.filled_quantity))  # give the inventory back to the book
