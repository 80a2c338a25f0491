"""Whether an order fits a venue's rules as it is (lot, tick, minimum and maximum quantity and notional), and the
passive rounding the service's own children get."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.market import (
    VenueTerms,
    ceil_to,
    floor_to,
    is_multiple,
    plain,
    round_price,
    round_quantity,
    round_significant,
    venue_fit_problems,
)
from shared.domain.orders import Side

D = Decimal


def terms(**kw) -> VenueTerms:
    base = dict(venue="binance", symbol="BTC/USDT", tick_size=D("0.01"), lot_size=D("0.001"),
                min_quantity=D("0.001"), min_notional=D("5"), maker_fee=D(0), taker_fee=D(0),
                max_quantity=D("100"), max_notional=None)
    return VenueTerms(**{**base, **kw})


def fit(t: VenueTerms | None = None, side: Side = Side.BUY, quantity: str = "0.01", price: str | None = "50000",
        stop_price: str | None = None, reference: str | None = None) -> list[tuple[str, str]]:
    return venue_fit_problems(t or terms(), side=side, quantity=D(quantity), price=D(price) if price else None,
                              stop_price=D(stop_price) if stop_price else None,
                              reference_price=D(reference) if reference else None)


def test_an_order_on_the_grid_and_within_the_limits_fits():
    assert fit() == []
    assert fit(quantity="100", price="50000.01") == []  # the maximum itself is allowed
    assert fit(quantity="0.001", price="5000") == []  # exactly the minimum notional


def test_a_quantity_finer_than_the_lot_is_refused_naming_the_lot():
    problems = fit(quantity="0.0015")
    assert problems == [("quantity", "0.0015 is not a multiple of binance's lot size 0.001 (0.001 or 0.002 would be)")]


def test_a_price_finer_than_the_tick_is_refused_with_the_passive_neighbour():
    (field, buy), = fit(price="50000.005")
    assert field == "price" and "tick size 0.01" in buy and "50000 would be, for a buy" in buy
    (_, sell), = fit(side=Side.SELL, price="50000.005")
    assert "50000.01 would be, for a sell" in sell


def test_a_stop_price_off_the_tick_is_refused():
    assert [f for f, _ in fit(price=None, stop_price="49000.001")] == ["stop_price"]


def test_below_the_minimum_quantity_and_above_the_maximum():
    t = terms(min_quantity=D("0.01"))
    assert fit(t, quantity="0.005") == [("quantity", "0.005 is below binance's minimum quantity 0.01")]
    assert fit(quantity="100.001") == [("quantity", "100.001 is above binance's maximum quantity 100")]


def test_notional_is_valued_at_the_limit_then_the_stop_then_the_reference():
    below = "below binance's minimum notional 5"
    assert below in fit(quantity="0.001", price="4999.99")[0][1]
    assert below in fit(quantity="0.001", price=None, stop_price="4000")[0][1]
    assert fit(quantity="0.001", price=None) == []  # a market order without a reference price: not checked
    assert below in fit(quantity="0.001", price=None, reference="4000")[0][1]
    above = fit(terms(max_notional=D("1000")), quantity="1", price="1000.01")
    assert above and "above binance's maximum notional 1000" in above[0][1]


def test_every_problem_is_listed_not_only_the_first():
    fields = [f for f, _ in fit(quantity="0.0005", price="0.001")]
    assert fields.count("quantity") == 3 and "price" in fields  # off the lot, below the minimum and notional


def test_messages_write_numbers_plainly():
    (_, issue), = fit(terms(lot_size=D("1E-5"), min_quantity=D("0.00001000"), min_notional=None), quantity="0.000015")
    assert "lot size 0.00001 " in issue and "E-" not in issue


def test_no_grid_means_no_grid_rule_but_significant_digits_count_where_the_venue_counts_them():
    t = terms(tick_size=D(0), price_significant_digits=5)
    assert fit(t, price="12345") == []
    assert fit(t, price="50001.5") == [("price", "50001.5 has more than the 5 significant digits binance allows "
                                                 "in a price")]


def test_is_multiple_is_exact():
    assert is_multiple(D("0.3"), D("0.1")) and not is_multiple(D("0.30000000000000004"), D("0.1"))
    assert is_multiple(D("123"), D(0))  # no grid
    assert not is_multiple(D("1E+30"), D("1E-30"))  # too far apart to tell: not taken as on the grid


def test_plain():
    assert plain(D("1E-8")) == "0.00000001" and plain(D("1.500")) == "1.5" and plain(D("5E+4")) == "50000"


# ---- the children's rounding: passive, never past the limit ---------------------------------------------
prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=6)
ticks = st.sampled_from([D("0.01"), D("0.5"), D("1"), D("0.00001"), D("25")])


@given(prices, ticks)
def test_a_buy_rounds_down_and_a_sell_up_to_the_tick_never_past_the_price(price, tick):
    buy, sell = round_price(Side.BUY, price, tick), round_price(Side.SELL, price, tick)
    assert buy <= price <= sell
    assert is_multiple(buy, tick) and is_multiple(sell, tick)
    assert price - buy < tick and sell - price < tick


@given(st.decimals(min_value=D(0), max_value=D("1000"), places=8), st.sampled_from([D("0.001"), D("1"), D("0.1")]))
def test_a_quantity_rounds_down_to_the_lot(quantity, lot):
    q = round_quantity(quantity, lot)
    assert 0 <= q <= quantity and quantity - q < lot and is_multiple(q, lot)


@given(prices, ticks)
def test_a_rounded_child_fits_the_tick_rule(price, tick):
    t = terms(tick_size=tick, min_notional=None)
    for side in Side:
        assert fit(t, side=side, quantity="1", price=str(t.round_price(side, price))) == []


def test_significant_digit_rounding_is_passive_too():
    t = terms(tick_size=D(0), price_significant_digits=5)
    assert t.round_price(Side.BUY, D("50001.5")) == D("50001")
    assert t.round_price(Side.SELL, D("50001.5")) == D("50002")
    assert round_significant(D("0.000123456"), 3, ROUND_FLOOR) == D("0.000123")
    assert round_significant(D("0.000123456"), 3, ROUND_CEILING) == D("0.000124")


@pytest.mark.parametrize(("value", "step", "down", "up"), [("1.05", "0.1", "1.0", "1.1"), ("7", "5", "5", "10")])
def test_floor_and_ceil_to_a_step(value, step, down, up):
    assert floor_to(D(value), D(step)) == D(down) and ceil_to(D(value), D(step)) == D(up)
