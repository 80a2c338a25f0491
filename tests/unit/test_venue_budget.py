"""The venue request budget shared by every adapter instance, as the adapter uses it (shared/adapters/ccxt_venue.py):
each HTTP request ccxt makes takes its ccxt cost first; a request the budget refuses is never sent and fails as a
retryable ``rate_limited`` (the service's create path takes that as "not sent" and tries again:
tests/unit/app/test_order_service.py test_a_retryable_error_schedules_the_next_attempt_with_backoff); with the
budget unreadable nothing but a cancel goes out. The budget here is a fake of our own port (RequestBudget); the
Redis token bucket itself runs against a real Redis in tests/integration/test_venue_budget.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.adapters.ccxt_venue import BUDGET_MAX_WAIT_MS, AdapterError, CcxtVenue, build_exchange
from shared.adapters.protocol import ErrorCode, ErrorKind, OrderType, PlaceOrder, Side
from shared.infra.config import AdapterSettings, load_settings
from tests.unit.test_ccxt_mapping import BINANCE, MARKET


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms

    def sleep(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


class FakeBudget:
    """Answers `take` from a script: an int (ms to wait; 0 granted) or an exception, then grants."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.taken: list[tuple[float, int]] = []

    def take(self, cost: float, now_ms: int) -> int:
        self.taken.append((cost, now_ms))
        answer = self.answers.pop(0) if self.answers else 0
        if isinstance(answer, Exception):
            raise answer
        return answer


def venue(budget: FakeBudget) -> tuple[CcxtVenue, list[tuple[str, str]], Clock]:
    ex = build_exchange("binance", api_key="k", secret="s", rate_limit_ms=0)  # ccxt's own throttle off
    ex.set_markets([{**MARKET, "margin": False, "swap": False, "future": False, "option": False, "contract": False,
                     "linear": None, "inverse": None, "settle": None, "settleId": None}])
    sent: list[tuple[str, str]] = []

    def fetch(url, method="GET", headers=None, body=None):
        path = url.split("?")[0].removeprefix("https://api.binance.com")
        sent.append((method, path))
        return BINANCE[path]

    ex.fetch = fetch
    clock = Clock()
    return CcxtVenue("binance", ex, budget=budget, clock_ms=clock, sleep=clock.sleep), sent, clock


ORDER = PlaceOrder(client_order_id="c-1", symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                   quantity=Decimal("0.001"), price=Decimal("50000"))


def test_each_request_takes_its_ccxt_cost_before_it_is_sent():
    budget = FakeBudget()
    v, sent, _ = venue(budget)
    v.get(venue_order_id="12", symbol="BTC/USDT")
    assert sent == [("GET", "/api/v3/order")]
    (cost, _now), = budget.taken
    # ccxt's own weight of binance's GET order (its cost config), not a flat 1 per call
    assert cost == v.exchange.calculate_rate_limiter_cost("private", "GET", "order", {}, {"cost": cost}) and cost > 0


def test_a_placement_the_budget_refuses_is_not_sent_and_is_retryable():
    budget = FakeBudget(BUDGET_MAX_WAIT_MS + 1)
    v, sent, _ = venue(budget)
    with pytest.raises(AdapterError) as err:
        v.place(ORDER)
    assert err.value.code is ErrorCode.RATE_LIMITED and err.value.kind is ErrorKind.RETRYABLE
    assert "not sent" in str(err.value)
    assert ("POST", "/api/v3/order") not in sent


def test_a_short_wait_is_waited_then_the_request_goes():
    budget = FakeBudget(300, 0)
    v, sent, clock = venue(budget)
    start = clock.ms
    v.get(venue_order_id="12", symbol="BTC/USDT")
    assert sent == [("GET", "/api/v3/order")]
    assert [now for _, now in budget.taken] == [start, start + 300]  # asked again once the wait was over


def test_waits_never_add_up_past_the_limit():
    budget = FakeBudget(600, 600, 600)
    v, sent, _ = venue(budget)
    with pytest.raises(AdapterError, match="spent"):
        v.get(venue_order_id="12", symbol="BTC/USDT")
    assert sent == [] and len(budget.taken) == 2  # waited 600 ms once; 600 more would pass 1 s


def test_the_wait_is_bounded_even_when_the_clock_stands_still():
    budget = FakeBudget(*[100] * 50)
    v, sent, _ = venue(budget)
    v._sleep = lambda seconds: None  # a clock that does not move while waiting
    with pytest.raises(AdapterError, match="spent"):
        v.get(venue_order_id="12", symbol="BTC/USDT")
    assert sent == [] and len(budget.taken) == 11  # ten waits of 100 ms, then refused


def test_an_unreadable_budget_sends_no_placement():
    budget = FakeBudget(ConnectionError("redis down"))
    v, sent, _ = venue(budget)
    with pytest.raises(AdapterError) as err:
        v.place(ORDER)
    assert err.value.code is ErrorCode.RATE_LIMITED and "cannot be read" in str(err.value)
    assert sent == []


@pytest.mark.parametrize("answer", [ConnectionError("redis down"), BUDGET_MAX_WAIT_MS * 5])
def test_a_cancel_goes_out_whatever_the_budget_says(answer):
    budget = FakeBudget(answer, answer, answer, answer)
    v, sent, _ = venue(budget)
    v.exchange.cancel_order = _cancel_via(v)
    v.cancel(venue_order_id="12", symbol="BTC/USDT")
    assert ("DELETE", "/api/v3/order") in sent


def _cancel_via(v: CcxtVenue):
    """A cancel_order that sends a DELETE through ccxt's request path (so it meets the budget), answered with the
    canned order, canceled."""
    def cancel_order(order_id, symbol=None, params=None):
        raw = v.exchange.private_delete_order({"symbol": "BTCUSDT", "orderId": order_id})
        return {**v.exchange.parse_order(raw, v.exchange.market(symbol)), "status": "canceled"}
    return cancel_order


def test_without_a_budget_nothing_is_consulted():
    v, sent, _ = venue(FakeBudget())
    plain = CcxtVenue("binance", v.exchange.__class__({"apiKey": "k", "secret": "s"}))
    assert plain.exchange.fetch2.__func__ is type(plain.exchange).fetch2  # not wrapped


def test_the_shared_rate_defaults_to_ccxts_published_rate_and_is_off_for_simulators():
    base = {"venue_name": "binance"}
    assert load_settings(AdapterSettings, **base).request_budget_per_s(50) == 20.0  # binance: rateLimit 50 ms
    assert load_settings(AdapterSettings, **base, venue_rate_limit_ms=200).request_budget_per_s(50) == 5.0
    assert load_settings(AdapterSettings, **base, venue_rate_limit_ms=0).request_budget_per_s(50) is None
    assert load_settings(AdapterSettings, **base, venue_request_budget="100").request_budget_per_s(50) == 100.0
    assert load_settings(AdapterSettings, **base, venue_request_budget="0").request_budget_per_s(50) is None
    assert load_settings(AdapterSettings, **base, venue_request_budget="").venue_request_budget is None
