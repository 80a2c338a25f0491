"""VenueRules, OrderService's venue_fit: orders checked at intake against the venue's /info, per child for algorithm
parents, and what happens when the rules cannot be fetched (fail open, the adapter's own check behind it)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from shared.adapters.protocol import ErrorCode, RateLimit, SymbolInfo, VenueCallError, VenueInfo
from shared.app.signals import intake
from shared.app.venue_rules import RETRY_S, STALE_S, VenueRules
from shared.domain.orders import SMART, InvalidOrder, OrderType

from .test_order_service import Env, make_order

D = Decimal
BTC = SymbolInfo(symbol="BTC/USDT", base="BTC", quote="USDT", tick_size=D("0.01"), lot_size=D("0.001"),
                 min_quantity=D("0.001"), min_notional=D("5"), maker_fee=D("0.001"), taker_fee=D("0.001"),
                 active=True, max_quantity=D("100"))
INFO = VenueInfo(venue="binance", exchange_id="binance", symbols=[BTC], rate_limit=RateLimit(requests_per_second=D(10)),
                 cancel_all_after="watchdog")


class Info:
    """GET /info as the service sees it: answers INFO, or fails while `down`; counts its calls."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def __call__(self, venue: str) -> VenueInfo:
        self.calls += 1
        if venue != "binance":
            raise KeyError(venue)
        if self.down:
            raise VenueCallError(venue, ErrorCode.NETWORK, "connection refused")
        return INFO


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def info() -> Info:
    return Info()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rules(info, clock) -> VenueRules:
    return VenueRules(info, monotonic=clock)


def order(**kw):
    return make_order(1_000, **kw)


def test_a_quantity_finer_than_the_lot_is_refused_naming_the_lot(rules):
    assert rules(order(quantity=D("0.0015"))) == [
        ("quantity", "0.0015 is not a multiple of binance's lot size 0.001 (0.001 or 0.002 would be)")]


def test_price_off_the_tick_below_the_minimum_and_an_unlisted_symbol(rules):
    assert [f for f, _ in rules(order(price=D("50000.005")))] == ["price"]
    assert "minimum notional 5" in rules(order(quantity=D("0.001"), price=D("100")))[0][1]
    assert rules(order(symbol="ETH/USDT")) == [("symbol", "binance does not list ETH/USDT")]
    assert rules(order()) == []


def test_market_orders_are_checked_for_size_but_not_for_a_notional_they_do_not_have_yet(rules):
    market = order(order_type=OrderType.MARKET, price=None, quantity=D("0.001"))
    assert rules(market) == []
    assert [f for f, _ in rules(order(order_type=OrderType.MARKET, price=None, quantity=D("0.0001")))] == \
        ["quantity", "quantity"]  # off the lot and below the minimum


def test_algorithm_parents_and_smart_orders_are_checked_per_child_not_at_intake(rules, info):
    assert rules(order(algorithm="twap", quantity=D("0.0015"))) == []
    assert rules(order(exchange=SMART, algorithm=SMART, quantity=D("0.0015"))) == []
    assert info.calls == 0
    child = order(parent_id="ord_parent", quantity=D("0.0015"))  # a child is an ordinary order at its venue
    assert rules(child) and info.calls == 1


def test_without_rules_an_order_goes_unchecked_and_the_dead_adapter_is_not_asked_again_at_once(rules, info, clock):
    info.down = True
    assert rules(order(quantity=D("0.0015"))) == []  # fail open: the adapter refuses it before sending
    assert rules(order(quantity=D("0.0015"))) == [] and info.calls == 1  # no second wait within RETRY_S
    clock.t += RETRY_S
    info.down = False
    assert rules(order(quantity=D("0.0015"))) and info.calls == 2


def test_the_last_rules_seen_stand_in_while_the_venue_cannot_be_asked(rules, info, clock):
    assert rules(order()) == []
    info.down = True
    clock.t += 120
    assert rules(order(quantity=D("0.0015")))  # still refused, by the rules seen two minutes ago
    clock.t += STALE_S
    assert rules(order(quantity=D("0.0015"))) == []  # too old to trust: unchecked


def test_order_service_refuses_a_misfit_at_intake_and_records_nothing(info):
    env = Env(venue_fit=VenueRules(info))
    with pytest.raises(InvalidOrder) as err:
        env.svc.create(env.order(quantity=D("0.0015")))
    assert err.value.problems[0][0] == "quantity" and "lot size 0.001" in err.value.problems[0][1]
    assert env.store.docs == {} and env.scheduler.submits == []


def test_a_signal_with_a_misfit_order_gets_a_rejected_event_naming_the_rule(info):
    env = Env(venue_fit=VenueRules(info))
    signal = {"signal_id": "sig_lot", "strategy_id": "momentum_1", "exchange": "binance", "symbol": "BTC/USDT",
              "side": "buy", "quantity": "0.0015", "order_type": "limit", "price": "50000"}
    outcome = intake(json.dumps(signal).encode(), "m-1", service=env.svc, events=env.publisher, now_ms=env.clock)
    assert outcome.status == "rejected" and "lot size 0.001" in outcome.reason
    (notice,) = env.publisher.rejections
    assert notice["status"] == "rejected" and notice["signal_id"] == "sig_lot"
    assert "lot size" in notice["reason"]
