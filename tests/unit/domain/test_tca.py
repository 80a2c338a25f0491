"""TCA of one order: hand-computed golden values, and the properties every cost measure must have."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.orders import Side
from shared.domain.tca import (BPS, Quote, RouterEstimate, ScheduleTrack, TapeTrade, TcaFill, TcaInput, Times, analyze,
                               fee_in_quote, time_weighted_mid)


def _sell() -> TcaInput:
    """A sell of 10 decided at 50, arriving at a mid of 49.8, 6 filled (4 as maker at 49.9, 2 as taker at 49.7),
    the rest unfilled with the mid at 49.5 when it ended."""
    return TcaInput(
        side=Side.SELL, quantity=D(10), decision_price=D(50), arrival_mid=D("49.8"), end_mid=D("49.5"),
        fills=(TcaFill(D(4), D("49.9"), 2000, D("0.02"), "maker", Quote(D("49.8"), D("49.9")),
                       {1: D("49.6"), 60: D("49.7")}),
               TcaFill(D(2), D("49.7"), 3000, D("0.01"), "taker", Quote(D("49.7"), D("49.8")), {1: D("49.6")})),
        tape=(TapeTrade(1500, D("49.9"), D(4), ours=True), TapeTrade(1600, D("49.8"), D(10)),
              TapeTrade(2500, D("49.7"), D(2), ours=True), TapeTrade(2600, D("49.75"), D(4)),
              TapeTrade(3500, D(49), D(100))),  # after the window: not counted
        window=(1200, 3000), mids=((1200, D("49.8")), (2000, D("49.85")), (3000, D("49.75"))),
        schedule=ScheduleTrack.of(((D(2), D(2)), (D(6), D(4)), (D(10), D(6))), D(10)),
        times=Times(decided=1000, submitted=1150, acknowledged=1200, first_fill=2000, cancel_requested=5000,
                    cancel_confirmed=5300),
        router=RouterEstimate(best_single_price=D("49.7"), consolidated_price=D("49.9")))


def test_a_partly_filled_sell_has_the_hand_computed_costs():
    r = analyze(_sell())
    assert (r.filled_quantity, r.notional, r.fill_ratio) == (D(6), D("299.0"), D("0.6"))
    assert r.average_price == D("49.833333333333")
    # s = -1; average 299/6: -(299/6 - 49.8)/49.8 = -6.69344...: selling above arrival earned us
    assert r.arrival_cost_bps == D("-6.693440")
    sf = r.shortfall
    # delay -6*(49.8-50) = 1.2; execution -(4*0.1 + 2*(-0.1)) = -0.2; opportunity -4*(49.5-50) = 2; fees 0.03
    assert (sf.delay, sf.execution, sf.opportunity, sf.fees, sf.total) == (D("1.2"), D("-0.2"), D("2.0"),
                                                                          D("0.03"), D("3.03"))
    assert (sf.delay_bps, sf.execution_bps, sf.opportunity_bps, sf.fees_bps, sf.total_bps) == (
        D(24), D(-4), D(40), D("0.6"), D("60.6"))  # of X*Pd = 500
    assert r.interval_vwap == D("49.8") and r.interval_vwap_cost_bps == D("-6.693440")  # 996/20
    assert r.interval_vwap_ex_ours_cost_bps == D("-9.564802")  # -(1/21)/(697/14): -20000/2091
    assert r.participation == D("0.3")  # 6 of 20 in the window
    assert r.twap_mid_cost_bps == D("-1.114951")  # TWAP of mid 8969/180: -1e4/8969
    assert r.fees == D("0.03") and r.fees_bps == D("1.003344")  # 0.03/299
    assert (r.maker_share, r.taker_share) == (D("0.666666667"), D("0.333333333"))
    assert (r.schedule_deviation_max, r.schedule_deviation_rms) == (D("0.4"), D("0.258198890"))
    assert r.latencies_ms == {"decision_to_submit": 150, "submit_to_ack": 50, "ack_to_first_fill": 800,
                              "cancel_to_confirm": 300}
    assert r.router_vs_best_venue_bps == D("26.827632")  # -(49.7 - 299/6)/49.7: routing beat the best venue
    assert r.router_vs_consolidated_bps == D("-13.360053")  # and fell short of the consolidated optimum
    # +1 s: -(4*(49.6-49.9) + 2*(49.6-49.7))/299 = 1.4/299; +60 s waits for the second fill's mid
    assert r.markouts_bps[1] == D("46.822742") and r.markouts_bps[60] is None
    assert "markout_60s_pending" in r.flags
    maker, taker = r.fills
    assert (maker.effective_spread_bps, maker.quoted_spread_bps, maker.spread_capture) == (
        D("-20.060181"), D("20.060181"), D(1))  # sold at the ask: earned the half spread
    assert (taker.effective_spread_bps, taker.spread_capture) == (D("20.100503"), D(-1))
    assert maker.markouts_bps == {1: D("60.120240"), 60: D("40.080160")}


def test_a_buy_has_the_hand_computed_costs():
    r = analyze(TcaInput(Side.BUY, D(2), decision_price=D(99), arrival_mid=D(100), end_mid=D(103),
                         fills=(TcaFill(D(1), D(101), 1000, D("0.1"), "taker", Quote(D(100), D(101))),)))
    assert r.arrival_cost_bps == D(100)
    sf = r.shortfall
    assert (sf.delay, sf.execution, sf.opportunity, sf.total) == (D(1), D(1), D(4), D("6.1"))
    assert sf.total_bps == D("308.080809")  # 6.1 / 198


def test_what_cannot_be_computed_is_none_and_flagged_never_zero():
    r = analyze(TcaInput(Side.BUY, D(1), fills=(TcaFill(D(1), D(100), 0, None),)))
    assert r.arrival_cost_bps is None and r.shortfall is None and r.interval_vwap_cost_bps is None
    assert r.fees is None and r.maker_share is None and r.fills[0].effective_spread_bps is None
    assert {"no_arrival_mid", "no_decision_price", "no_tape", "fee_without_rate", "liquidity_unknown",
            "markout_1s_pending"} <= set(r.flags)
    unfilled = analyze(TcaInput(Side.BUY, D(1), decision_price=D(100)))
    assert unfilled.shortfall is None and "no_end_mid" in unfilled.flags  # the opportunity cost needs the end


def test_a_fill_outside_the_quote_is_flagged():
    r = analyze(TcaInput(Side.BUY, D(1), fills=(TcaFill(D(1), D(102), 7, quote=Quote(D(100), D(101))),)))
    assert r.fills[0].outside_quote is True and "fill_outside_quote@7" in r.flags


def test_fees_convert_to_the_quote_currency_or_say_they_cannot():
    assert fee_in_quote({"USDT": D("0.5"), "BTC": D("0.0001")}, "BTC", "USDT", D(60000)) == D("6.5")
    assert fee_in_quote({"BNB": D("0.01")}, "BTC", "USDT", D(60000)) is None
    assert fee_in_quote({"BNB": D("0.01")}, "BTC", "USDT", D(60000), {"BNB": D(600)}) == D(6)


def test_the_time_weighted_mid_holds_each_sample_until_the_next():
    assert time_weighted_mid([(0, D(10)), (50, D(20))], 0, 100) == D(15)
    assert time_weighted_mid([(-5, D(10)), (75, D(30))], 0, 100) == D(15)  # opened by a sample before
    assert time_weighted_mid([(10, D(10))], 0, 100) is None  # nothing known at the start


# ---- properties ------------------------------------------------------------------------------------------------

prices = st.decimals(min_value=D("0.01"), max_value=D(100000), places=2)
quantities = st.decimals(min_value=D("0.001"), max_value=D(1000), places=3)


@st.composite
def orders(draw) -> TcaInput:
    side = draw(st.sampled_from(list(Side)))
    n = draw(st.integers(1, 5))
    mid = draw(prices)
    fills = []
    for i in range(n):
        p = draw(prices)
        spread = draw(st.decimals(min_value=D(0), max_value=D(5), places=2))
        bid = max(p - spread, D("0.01"))
        fills.append(TcaFill(draw(quantities), p, 1000 * (i + 1), draw(st.decimals(min_value=D(-1), max_value=D(1),
                                                                                     places=4)),
                             draw(st.sampled_from(["maker", "taker"])), Quote(bid, bid + spread),
                             {h: draw(prices) for h in (-10, 1, 10, 60, 300)}))
    filled = sum((f.quantity for f in fills), D(0))
    quantity = filled + draw(st.decimals(min_value=D(0), max_value=D(100), places=3))
    tape = tuple(TapeTrade(500 * i, draw(prices), draw(quantities), ours=draw(st.booleans())) for i in range(12))
    return TcaInput(side, quantity, tuple(fills), decision_price=draw(prices), arrival_mid=mid, end_mid=draw(prices),
                    tape=tape, window=(0, 6000), mids=tuple((1000 * i, draw(prices)) for i in range(6)),
                    schedule=ScheduleTrack.of(((quantity / 2, filled / 2), (quantity, filled)), quantity),
                    router=RouterEstimate(draw(prices), draw(prices)))


def _costs(r) -> list:
    sf = r.shortfall
    return [r.arrival_cost_bps, r.interval_vwap_cost_bps, r.interval_vwap_ex_ours_cost_bps, r.twap_mid_cost_bps,
            sf.delay, sf.execution, sf.opportunity, sf.delay_bps, sf.execution_bps, sf.opportunity_bps,
            *r.markouts_bps.values(), r.router_vs_best_venue_bps, r.router_vs_consolidated_bps,
            *(f.effective_spread_bps for f in r.fills), *(f.spread_capture for f in r.fills)]


@settings(max_examples=100, deadline=None)
@given(orders())
def test_the_shortfall_is_the_paper_portfolio_minus_the_real_one_part_by_part(order):
    r = analyze(order)
    sf = r.shortfall
    s = 1 if order.side is Side.BUY else -1
    x, pd, p_end = order.quantity, order.decision_price, order.end_mid
    q = sum((f.quantity for f in order.fills), D(0))
    paper = s * x * (p_end - pd)  # what trading all of X at Pd would have made by the end
    real = s * (q * p_end - sum((f.quantity * f.price for f in order.fills), D(0))) - sf.fees
    assert sf.delay + sf.execution + sf.opportunity + sf.fees == sf.total == paper - real
    assert sf.delay_bps + sf.execution_bps + sf.opportunity_bps + sf.fees_bps == sf.total_bps
    assert abs(sf.total_bps - sf.total / (x * pd) * 10_000) <= 3 * BPS


@settings(max_examples=100, deadline=None)
@given(orders())
def test_a_sell_at_the_same_prices_costs_exactly_the_opposite(order):
    buy, sell = analyze(replace(order, side=Side.BUY)), analyze(replace(order, side=Side.SELL))
    assert [-c if c is not None else None for c in _costs(buy)] == _costs(sell)


@settings(max_examples=100, deadline=None)
@given(orders(), st.sampled_from([D("0.001"), D("0.5"), D(2), D(10), D(1000)]),
       st.sampled_from([D("0.01"), D(4), D(100)]))
def test_costs_do_not_depend_on_the_price_level_or_the_order_size(order, k, m):
    def scaled(o: TcaInput) -> TcaInput:
        fills = tuple(replace(f, quantity=f.quantity * m, price=f.price * k, fee=f.fee * k * m,
                              quote=Quote(f.quote.bid * k, f.quote.ask * k),
                              mids={h: v * k for h, v in f.mids.items()}) for f in o.fills)
        return replace(o, quantity=o.quantity * m, fills=fills, decision_price=o.decision_price * k,
                       arrival_mid=o.arrival_mid * k, end_mid=o.end_mid * k,
                       tape=tuple(replace(t, price=t.price * k, quantity=t.quantity * m) for t in o.tape),
                       mids=tuple((t, v * k) for t, v in o.mids),
                       schedule=o.schedule,  # kept as fractions of X (ScheduleTrack.step divides by X)
                       router=RouterEstimate(o.router.best_single_price * k, o.router.consolidated_price * k))
    a, b = analyze(order), analyze(scaled(order))
    bps = lambda r: [r.arrival_cost_bps, r.interval_vwap_cost_bps, r.twap_mid_cost_bps, r.shortfall.total_bps,
                     r.shortfall.execution_bps, r.fees_bps, *r.markouts_bps.values(), r.participation,
                     r.maker_share, r.fill_ratio, r.schedule_deviation_rms, r.router_vs_best_venue_bps]
    assert bps(a) == bps(b)


@settings(max_examples=100, deadline=None)
@given(orders())
def test_the_effective_spread_is_the_realized_spread_plus_the_impact(order):
    for f in analyze(order).fills:
        for h, realized in f.realized_spread_bps.items():
            assert abs(f.effective_spread_bps - (realized + f.price_impact_bps[h])) <= 2 * BPS


@settings(max_examples=100, deadline=None)
@given(orders())
def test_maker_and_taker_shares_add_up_to_one(order):
    r = analyze(order)
    assert r.maker_share + r.taker_share == 1


@given(prices, quantities, st.sampled_from(list(Side)))
def test_a_whole_fill_at_the_arrival_mid_without_fees_costs_nothing(mid, quantity, side):
    r = analyze(TcaInput(side, quantity, (TcaFill(quantity, mid, 1000, D(0), "maker", Quote(mid, mid),
                                                  {1: mid}),),
                         decision_price=mid, arrival_mid=mid, end_mid=mid,
                         tape=(TapeTrade(1000, mid, quantity, ours=True), TapeTrade(1000, mid, quantity)),
                         window=(1000, 1000), mids=((0, mid),)))
    assert r.arrival_cost_bps == r.shortfall.total == r.interval_vwap_cost_bps == r.twap_mid_cost_bps == 0
    assert r.markouts_bps[1] == 0 and r.fills[0].effective_spread_bps == 0


@settings(max_examples=100, deadline=None)
@given(orders(), st.data())
def test_splitting_a_fill_changes_no_order_level_figure(order, data):
    first = order.fills[0]
    part = data.draw(st.decimals(min_value=D("0.0001"), max_value=first.quantity - D("0.0001"), places=4))
    fee = (first.fee * part / first.quantity).quantize(D("0.0001"))  # the halves' fees add up to the whole's
    halves = (replace(first, quantity=part, fee=fee), replace(first, quantity=first.quantity - part, fee=first.fee - fee))
    split = replace(order, fills=halves + order.fills[1:])
    a, b = analyze(order), analyze(split)
    assert replace(a, fills=()) == replace(b, fills=())
