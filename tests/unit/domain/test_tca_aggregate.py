"""TCA aggregates: hand-computed golden values on a small table, and the properties grouping must have."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.app.tca_pipeline import tca_row
from shared.domain.orders import Order, OrderType, Side, Status, TimeInForce
from shared.domain.tca import Quote, TapeTrade, TcaFill, TcaInput, Times, analyze
from shared.domain.tca_aggregate import COSTS, LATENCIES, SHORTFALL_PARTS, Latency, Stat, aggregate

_NONE = {c: None for c in (*COSTS, *LATENCIES, "maker_share", "average_price")}


def _row(order_id: str, venue: str = "a", version: int = 1, **fields: Any) -> dict[str, Any]:
    """A tca_row-shaped dict: every figure None unless given."""
    return {"order_id": order_id, "version": version, "complete": True, "algorithm": "DIRECT", "venue": venue,
            "symbol": "BTCUSDT", "side": "buy", "strategy_id": "s1", "status": "filled", "quantity": "1",
            "filled_quantity": "0", "notional": "0", "fill_ratio": "0", "rejected": False, "flags": [],
            **_NONE, **fields}


def _table() -> list[dict[str, Any]]:
    """Venue a: o1 filled 1 @ 100, o2 filled 3 of 4 @ 100, o3 rejected; venue b: o4 filled 1 @ 50.5."""
    return [
        _row("o1", quantity="1", filled_quantity="1", notional="100", average_price="100", fill_ratio="1",
             arrival_cost_bps="10", shortfall_bps="12", markout_pre10s_bps="-1", markout_1s_bps="2",
             markout_10s_bps="3", markout_60s_bps="4", markout_300s_bps="5", maker_share="0.5",
             decision_to_submit_ms=10, submit_to_ack_ms=20, ack_to_first_fill_ms=30),
        _row("o2", quantity="4", filled_quantity="3", notional="300", average_price="100", fill_ratio="0.75",
             arrival_cost_bps="2", shortfall_bps="4", markout_pre10s_bps="1", markout_1s_bps="-2", maker_share="1",
             decision_to_submit_ms=30, submit_to_ack_ms=40, ack_to_first_fill_ms=50, cancel_to_confirm_ms=7),
        _row("o3", quantity="2", status="rejected", rejected=True, decision_to_submit_ms=20),
        _row("o4", venue="b", quantity="1", filled_quantity="1", notional="50.5", average_price="50.5",
             fill_ratio="1", arrival_cost_bps="-3.25", maker_share="0"),
    ]


def test_two_venues_have_the_hand_computed_aggregates():
    a, b = aggregate(_table(), ("venue",))
    assert (a.key, a.count, a.notional) == ({"venue": "a"}, 3, D(400))
    assert a.fill_ratio == D("0.583333333")  # (1 + 0.75 + 0) / 3, each order the same
    assert a.fill_ratio_weighted == D("0.8")  # (1*100 + 0.75*400) / 500: o3 has no price, so no weight
    assert a.reject_rate == D("0.333333333")
    assert a.maker_share == D("0.875")  # (0.5*100 + 1*300) / 400
    # arrival: 10 weighing 100, 2 weighing 300: mean 1600/400; 2 reaches half the weight, 10 reaches 90%
    assert a.costs["arrival_cost_bps"] == Stat(2, D(4), D(2), D(10))
    assert a.costs["shortfall_bps"] == Stat(2, D(6), D(4), D(12))  # (1200 + 1200) / 400
    assert a.costs["fees_bps"] == Stat(0, None, None, None)  # nothing to say: None, never 0
    assert a.markout_curve == {-10: D("0.5"), 1: D(-1), 10: D(3), 60: D(4), 300: D(5)}
    assert a.costs["markout_10s_bps"].n == 1
    assert a.latencies == {"decision_to_submit_ms": Latency(3, 20, 30), "submit_to_ack_ms": Latency(2, 20, 40),
                           "ack_to_first_fill_ms": Latency(2, 30, 50), "cancel_to_confirm_ms": Latency(1, 7, 7)}
    # two rows: a resample is both o2 (2), both o1 (10) or one of each (4), each a quarter of the time
    assert a.arrival_cost_ci95 == (D(2), D(10))

    assert (b.key, b.count, b.notional, b.reject_rate, b.maker_share) == ({"venue": "b"}, 1, D("50.5"), D(0), D(0))
    assert b.costs["arrival_cost_bps"] == Stat(1, D("-3.25"), D("-3.25"), D("-3.25"))
    assert b.arrival_cost_ci95 is None  # fewer than 2 rows
    assert set(b.markout_curve.values()) == {None} and b.latencies["submit_to_ack_ms"] == Latency(0, None, None)


def test_one_group_of_everything_rounds_once_to_the_convention():
    (g,) = aggregate(_table())
    assert g.key == {} and g.count == 4 and g.notional == D("450.5")
    # (1000 + 600 - 3.25*50.5) / 450.5 = 3.18729189...; -3.25 (50.5), 2 (350.5 >= 225.25), 10 (450.5 >= 405.45)
    assert g.costs["arrival_cost_bps"] == Stat(3, D("3.187292"), D(2), D(10))
    assert g.fill_ratio == D("0.6875") and g.reject_rate == D("0.25")
    assert g.fill_ratio_weighted == D("0.818346957")  # 450.5 / 550.5
    assert g.maker_share == D("0.776914539")  # 350 / 450.5


def test_unfilled_orders_weigh_equally_in_the_shortfall_when_none_has_notional():
    rows = [_row("u1", quantity="2", shortfall_bps="3"), _row("u2", quantity="5", shortfall_bps="6")]
    (g,) = aggregate(rows)
    assert g.costs["shortfall_bps"] == Stat(2, D("4.5"), D(3), D(6))
    assert g.fill_ratio == D(0) and g.fill_ratio_weighted is None and g.maker_share is None
    assert g.arrival_cost_ci95 is None


def test_grouping_by_several_keys_sorts_by_key_and_names_a_missing_value_empty():
    rows = [_row("x", venue="b", side="sell"), _row("y", venue="a", side="sell"), _row("z", venue="a",
                                                                                         side="buy",
                                                                                         strategy_id=None)]
    assert [g.key for g in aggregate(rows, ("venue", "side"))] == [
        {"venue": "a", "side": "buy"}, {"venue": "a", "side": "sell"}, {"venue": "b", "side": "sell"}]
    assert [g.key for g in aggregate(rows, ("strategy_id",))] == [{"strategy_id": ""}, {"strategy_id": "s1"}]


def test_empty_input_has_no_group_and_unknown_keys_are_refused():
    assert aggregate([]) == [] and aggregate([], ("venue",)) == []
    with pytest.raises(ValueError):
        aggregate(_table(), ("price",))
    with pytest.raises(ValueError):
        aggregate(_table(), ("venue", "venue"))


def test_only_the_highest_version_of_an_order_counts():
    old = _row("o1", version=0, notional="1", arrival_cost_bps="1000", fill_ratio="0.1")
    newer = [*_table(), old]
    assert aggregate(newer, ("venue",)) == aggregate(_table(), ("venue",))
    assert aggregate(newer, ("venue",))[0].count == 3


def replace_row(row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**row, **fields}


# ---- properties ------------------------------------------------------------------------------------------------

bps = st.decimals(min_value=D(-500), max_value=D(500), places=6)
notionals = st.decimals(min_value=D(0), max_value=D(100000), places=4)


@st.composite
def rows(draw, min_size: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(min_size, 12))):
        maybe = lambda s: draw(st.none() | s)  # noqa: E731
        fields: dict[str, Any] = {c: maybe(bps.map(str)) for c in COSTS}
        fields.update({c: maybe(st.integers(0, 5000)) for c in LATENCIES})
        out.append(_row(f"o{i:02d}", venue=draw(st.sampled_from("abc")), side=draw(st.sampled_from(["buy", "sell"])),
                        notional=str(draw(notionals)), quantity=str(draw(st.integers(1, 9))),
                        average_price=maybe(st.decimals(min_value=D(1), max_value=D(999), places=2).map(str)),
                        fill_ratio=str(draw(st.decimals(min_value=D(0), max_value=D(1), places=9))),
                        maker_share=maybe(st.decimals(min_value=D(0), max_value=D(1), places=9).map(str)),
                        rejected=draw(st.booleans()), **fields))
    return out


@settings(max_examples=30, deadline=None)
@given(rows(), st.randoms(use_true_random=False), st.sampled_from([(), ("venue",), ("venue", "side")]))
def test_the_result_does_not_depend_on_the_rows_order(table, rnd, group_by):
    shuffled = list(table)
    rnd.shuffle(shuffled)
    assert aggregate(shuffled, group_by, resamples=50) == aggregate(table, group_by, resamples=50)


@settings(max_examples=30, deadline=None)
@given(rows(min_size=1), st.data())
def test_older_versions_of_an_order_are_ignored(table, data):
    older = [replace_row(r, version=data.draw(st.integers(-3, 0)), arrival_cost_bps="123.456", notional="7",
                         rejected=not r["rejected"]) for r in table if data.draw(st.booleans())]
    assert aggregate(table + older, ("venue",), resamples=50) == aggregate(table, ("venue",), resamples=50)


@settings(max_examples=20, deadline=None)
@given(rows(min_size=1), rows(min_size=1))
def test_a_group_does_not_depend_on_the_other_groups(mine, others):
    mine = [replace_row(r, venue="a", order_id="m" + r["order_id"]) for r in mine]
    others = [replace_row(r, venue="b") for r in others]
    assert aggregate(mine + others, ("venue",), resamples=50)[0] == aggregate(mine, ("venue",), resamples=50)[0]


def _arrivals(values: list[D], weights: list[D]) -> list[dict[str, Any]]:
    return [_row(f"o{i}", arrival_cost_bps=str(v), notional=str(w)) for i, (v, w) in enumerate(zip(values, weights))]


def test_the_bootstrap_is_deterministic_for_a_seed_and_changes_with_it():
    rng = random.Random(7)
    table = _arrivals([D(rng.randint(-10**7, 10**7)) / 10**6 for _ in range(60)],
                      [D(rng.randint(1, 10**6)) / 100 for _ in range(60)])
    first, again, other = (aggregate(table, seed=s, resamples=300)[0] for s in (0, 0, 1))
    assert first == again
    assert first.arrival_cost_ci95 != other.arrival_cost_ci95
    assert replace(first, arrival_cost_ci95=None) == replace(other, arrival_cost_ci95=None)  # nothing else draws


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(bps, st.decimals(min_value=D("0.01"), max_value=D(100000), places=2)), min_size=2,
                max_size=30).filter(lambda pairs: len({v for v, _ in pairs}) > 1), st.integers(0, 2**32))
def test_the_interval_holds_the_point_estimate(pairs, seed):
    (g,) = aggregate(_arrivals([v for v, _ in pairs], [w for _, w in pairs]), seed=seed, resamples=200)
    low, high = g.arrival_cost_ci95
    assert low <= g.costs["arrival_cost_bps"].mean <= high
    assert min(v for v, _ in pairs) <= low <= high <= max(v for v, _ in pairs)


@given(bps, st.lists(st.decimals(min_value=D("0.01"), max_value=D(100000), places=2), min_size=2, max_size=20))
@settings(max_examples=30, deadline=None)
def test_the_interval_of_equal_values_is_that_value(value, weights):
    (g,) = aggregate(_arrivals([value] * len(weights), weights), resamples=100)
    assert g.arrival_cost_ci95 == (value, value) and g.costs["arrival_cost_bps"].mean == value


# ---- from the order's facts: splitting a fill changes no aggregate ---------------------------------------------

prices = st.decimals(min_value=D(1), max_value=D(10000), places=2)


@st.composite
def tca_inputs(draw) -> TcaInput:
    side = draw(st.sampled_from(list(Side)))
    fills = []
    for i in range(draw(st.integers(1, 3))):
        p = draw(prices)
        fills.append(TcaFill(draw(st.decimals(min_value=D("0.01"), max_value=D(50), places=2)), p, 1000 * (i + 1),
                             draw(st.decimals(min_value=D(0), max_value=D(1), places=2)),
                             draw(st.sampled_from(["maker", "taker"])), Quote(p - 1, p + 1),
                             {h: draw(prices) for h in (-10, 1, 10, 60, 300)}))
    filled = sum((f.quantity for f in fills), D(0))
    return TcaInput(side, filled + draw(st.decimals(min_value=D(0), max_value=D(10), places=2)), tuple(fills),
                    decision_price=draw(prices), arrival_mid=draw(prices), end_mid=draw(prices),
                    tape=tuple(TapeTrade(500 * i, draw(prices), D(1)) for i in range(8)), window=(0, 4000),
                    mids=((0, draw(prices)), (2000, draw(prices))),
                    times=Times(decided=0, submitted=draw(st.integers(0, 50)), acknowledged=100, first_fill=1000))


def _tca_rows(inputs: list[TcaInput]) -> list[dict[str, Any]]:
    def order(i: int, o: TcaInput) -> Order:
        return Order(order_id=f"o{i}", client_order_id=f"c{i}", strategy_id="s1", exchange="ab"[i % 2],
                     symbol="BTCUSDT", side=o.side, quantity=o.quantity, order_type=OrderType.MARKET,
                     time_in_force=TimeInForce.IOC, created_at=0, status=Status.FILLED)
    return [tca_row(order(i, o), analyze(o), version=1, complete=True) for i, o in enumerate(inputs)]


@settings(max_examples=30, deadline=None)
@given(st.lists(tca_inputs(), min_size=1, max_size=4), st.data())
def test_splitting_a_fill_changes_no_aggregate(inputs, data):
    k = data.draw(st.integers(0, len(inputs) - 1))
    order = inputs[k]
    first = order.fills[0]
    part = data.draw(st.decimals(min_value=D("0.0001"), max_value=first.quantity - D("0.0001"), places=4))
    fee = (first.fee * part / first.quantity).quantize(D("0.0001"))
    halves = (replace(first, quantity=part, fee=fee),
              replace(first, quantity=first.quantity - part, fee=first.fee - fee))
    split = [*inputs[:k], replace(order, fills=halves + order.fills[1:]), *inputs[k + 1:]]
    for group_by in ((), ("venue",)):
        assert aggregate(_tca_rows(split), group_by, resamples=50) == aggregate(_tca_rows(inputs), group_by,
                                                                                 resamples=50)


@settings(max_examples=40, deadline=None)
@given(st.lists(tca_inputs(), min_size=1, max_size=5))
def test_the_shortfall_parts_add_up_to_the_shortfall_in_every_group(inputs):
    """What a waterfall of the aggregate draws: delay + execution + opportunity + fees = the shortfall's mean, up to
    the rounding of each of the four means (1e-6 bps each)."""
    rows = _tca_rows(inputs)
    assert all(sum(D(r[p]) for p in SHORTFALL_PARTS) == D(r["shortfall_bps"]) for r in rows)
    for g in aggregate(rows, ("venue",), resamples=10):
        total = g.costs["shortfall_bps"]
        parts = [g.costs[p] for p in SHORTFALL_PARTS]
        assert all(p.n == total.n for p in parts)
        assert abs(sum(p.mean for p in parts) - total.mean) <= 4 * D("0.000001")
