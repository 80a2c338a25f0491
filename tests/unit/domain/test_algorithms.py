"""Execution algorithm planners (pure): hand-worked schedules, and properties over random parents, markets,
fills and call times, driven through a small simulated engine."""

import random
from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.algorithms import SmartPlanner, planner_for
from shared.domain.algorithms.base import (
    Algorithm,
    ChildIntent,
    InvalidParams,
    ParentView,
    SliceDecision,
    WorkingChild,
    child_client_order_id,
    effective_limit,
    parse_params,
)
from shared.domain.algorithms.slippage import Bound, bound_for, collar
from shared.domain.algorithms.twap import Schedule
from shared.domain.algorithms.vwap import DEFAULT_PROFILE, cumulative
from shared.domain.market import Book, Level, MarketSnapshot, VenueTerms, consolidated_mid
from shared.domain.orders import CLIENT_ORDER_ID, OrderType, Side, TimeInForce

D = Decimal
SYMBOL = "BTC/USDT"
T0 = 1_700_000_000_000


def terms(venue="x", lot="0.01", min_qty=None, min_notional=None, fee="0.001") -> VenueTerms:
    return VenueTerms(venue, SYMBOL, D("0.01"), D(lot), D(min_qty or lot), D(min_notional) if min_notional else None,
                      D("0"), D(fee))


def book(venue="x", bid="99.99", ask="100.01", qty="1000", levels=1, step="0.01") -> Book:
    bids = tuple(Level(D(bid) - i * D(step), D(qty)) for i in range(levels))
    asks = tuple(Level(D(ask) + i * D(step), D(qty)) for i in range(levels))
    return Book(venue, SYMBOL, bids, asks, 0)


def snap(*books_, t=None, traded=None, profile=None) -> MarketSnapshot:
    books_ = books_ or (book(),)
    t = t or {b.venue: terms(b.venue) for b in books_}
    return MarketSnapshot(0, {b.venue: b for b in books_}, t, traded_volume=traded, volume_profile=profile)


def parent(quantity="10", side=Side.BUY, **kw) -> ParentView:
    base = dict(client_order_id="parent-1", side=side, symbol=SYMBOL, quantity=D(quantity), filled_quantity=D(0),
                working_quantity=D(0), limit_price=None, start_ms=T0, end_ms=None, slice_index=0, venue="x")
    base.update(kw)
    return ParentView(**base)


def qtys(d: SliceDecision) -> list[Decimal]:
    return [c.quantity for c in d.children]


# ---- the simulated engine -------------------------------------------------------------------------------
@dataclass
class Resting:
    child: ChildIntent
    remaining: Decimal
    placed_at: int


@dataclass
class Sim:
    """Drives a planner like the engine: calls plan, cancels, sends, fills, advances slice_index.

    `fill(child, rng)` is the fraction of a child that fills when it is sent (an IOC's rest expires; a GTC's
    rest keeps working and may fill on later calls). With `rng`, calls sometimes come early or late, resting
    children fill at random, and a cancel sometimes takes one call to be confirmed."""

    planner: object
    parent: ParentView
    market: object  # callable(now, call_number) -> MarketSnapshot
    fill: object = None  # callable(child, rng) -> Decimal fraction; None: every child fills completely
    rng: random.Random | None = None
    filled: Decimal = D(0)
    resting: dict = field(default_factory=dict)
    pending_cancel: set = field(default_factory=set)
    log: list = field(default_factory=list)  # (now, view, market, decision)
    ids: set = field(default_factory=set)

    def view(self, i: int) -> ParentView:
        working = sum((r.remaining for r in self.resting.values()), D(0))
        children = tuple(WorkingChild(cid, r.child.price, r.remaining, r.placed_at) for cid, r in self.resting.items())
        return replace(self.parent, filled_quantity=self.filled, working_quantity=working,
                       working_children=children, slice_index=i)

    def _fill(self, q: Decimal, lot: Decimal) -> Decimal:
        return (q / lot).to_integral_value(rounding="ROUND_FLOOR") * lot

    def run(self, max_calls: int = 400) -> "Sim":
        now = self.parent.start_ms
        for i in range(max_calls):
            market = self.market(now, i)
            if self.rng is not None:  # resting children trade; confirmed cancels leave
                for cid in list(self.resting):
                    r = self.resting[cid]
                    if cid in self.pending_cancel:
                        self.pending_cancel.discard(cid)
                        del self.resting[cid]
                        continue
                    lot = market.terms[r.child.venue].lot_size
                    got = self._fill(r.remaining * D(self.rng.choice([0, 0, 0.5, 1])), lot)
                    self.filled += got
                    r.remaining -= got
                    if r.remaining <= 0:
                        del self.resting[cid]
            view = self.view(i)
            d = self.planner.plan(view, market, now)
            self.log.append((now, view, market, d))
            check_decision(view, market, d, now, self.ids)
            assert d == self.planner.plan(view, market, now), "the same inputs must give the same decision"
            for cid in d.cancel:
                if cid in self.resting:
                    if self.rng is not None and self.rng.random() < 0.3:
                        self.pending_cancel.add(cid)  # confirmed on the next call
                    else:
                        del self.resting[cid]
            for c in d.children:
                lot = market.terms[c.venue].lot_size
                frac = D(1) if self.fill is None else D(self.fill(c, self.rng))
                got = self._fill(c.quantity * frac, lot)
                self.filled += got
                if c.time_in_force is TimeInForce.GTC and got < c.quantity:
                    self.resting[c.client_order_id] = Resting(c, c.quantity - got, now)
            working = sum((r.remaining for r in self.resting.values()), D(0))
            assert self.filled + working <= self.parent.quantity, "overfill"
            if d.next_at_ms is None:
                if not self.resting:
                    break
                now += 1000  # children still working: the engine calls again when they change
                continue
            nxt = d.next_at_ms
            if self.rng is not None:
                roll = self.rng.random()
                if roll < 0.2 and nxt - now > 1:
                    nxt = now + self.rng.randint(1, nxt - now)  # called early (an event)
                elif roll < 0.3:
                    nxt += self.rng.randint(0, 5000)  # called late
            now = nxt
        return self

    @property
    def sent(self) -> list[tuple[int, ChildIntent]]:
        return [(now, c) for now, _, _, d in self.log for c in d.children]


def check_decision(view: ParentView, market: MarketSnapshot, d: SliceDecision, now: int, ids: set) -> None:
    assert sum((c.quantity for c in d.children), D(0)) <= view.available
    working = {c.client_order_id for c in view.working_children}
    assert set(d.cancel) <= working
    assert d.next_at_ms is None or d.next_at_ms > now
    for c in d.children:
        t = market.terms[c.venue]
        assert c.quantity > 0 and c.quantity % t.lot_size == 0 and c.quantity >= t.min_quantity
        assert c.order_type is OrderType.LIMIT and c.price is not None and c.price > 0 and c.price % t.tick_size == 0
        if t.min_notional is not None:
            assert c.quantity * c.price >= t.min_notional
        assert len(c.client_order_id) <= 36 and CLIENT_ORDER_ID.match(c.client_order_id)
        assert c.client_order_id not in ids, "child ids are unique"
        ids.add(c.client_order_id)
        assert c.slice_index == view.slice_index and c.side is view.side
        assert not (c.post_only and c.time_in_force is TimeInForce.IOC)
        if view.limit_price is not None:
            assert not (c.price > view.limit_price if view.side is Side.BUY else c.price < view.limit_price)


# ---- ids, parameters -------------------------------------------------------------------------------------
def test_child_ids_are_deterministic_short_and_distinct():
    a = child_client_order_id("sig-" + "f" * 32, 3, 0)
    assert a == child_client_order_id("sig-" + "f" * 32, 3, 0)
    assert len(a) <= 36 and CLIENT_ORDER_ID.match(a)
    ids = {child_client_order_id("p", s, n) for s in range(50) for n in range(5)}
    assert len(ids) == 250 and child_client_order_id("q", 0, 0) not in ids


@pytest.mark.parametrize("algorithm, params, problems", [
    ("twap", {"duration_s": 5}, [("algorithm_params.duration_s", "must be between 10 and 86400")]),
    ("twap", {}, [("algorithm_params.duration_s", "required")]),
    ("twap", {"duration_s": 600, "slices": 5, "interval_s": 60},
     [("algorithm_params.interval_s", "give slices or interval_s, not both")]),
    ("twap", {"duration_s": 60, "slices": 20},
     [("algorithm_params.slices", "must be at most 12 for duration_s 60 (slices at least 5 s apart)")]),
    ("twap", {"duration_s": 600, "randomize_size_pct": 60, "mode": "sniper"},
     [("algorithm_params.mode", "must be one of taker, maker"),
      ("algorithm_params.randomize_size_pct", "must be between 0 and 50")]),
    ("twap", {"duration_s": 600, "reprice_after_s": 10},
     [("algorithm_params.reprice_after_s", "only used with mode maker")]),
    ("twap", {"duration_s": "ten"}, [("algorithm_params.duration_s", "must be a number")]),
    ("twap", {"duration_s": 60.5}, [("algorithm_params.duration_s", "must be a whole number")]),
    ("twap", {"duration_s": 600, "limit_price": 0}, [("algorithm_params.limit_price", "must be greater than 0")]),
    ("vwap", {"duration_s": 600, "profile": []},
     [("algorithm_params.profile", "must be a list of 1 to 1000 relative weights")]),
    ("vwap", {"duration_s": 600, "profile": [1, -2]}, [("algorithm_params.profile[1]", "must not be negative")]),
    ("vwap", {"duration_s": 600, "max_participation": 0},
     [("algorithm_params.max_participation", "must be greater than 0 and at most 1")]),
    ("iceberg", {"display_quantity": 1}, [("algorithm_params.limit_price", "required")]),
    ("iceberg", {"display_quantity": -1, "limit_price": 100},
     [("algorithm_params.display_quantity", "must be greater than 0")]),
    ("pov", {"target_rate": "0.6"}, [("algorithm_params.target_rate", "must be greater than 0 and at most 0.5")]),
    ("pov", {"target_rate": True}, [("algorithm_params.target_rate", "must be a number")]),
    ("smart", {"rounds": 0, "default_collar_bps": 0},
     [("algorithm_params.rounds", "must be between 1 and 10"),
      ("algorithm_params.default_collar_bps", "must be greater than 0 and at most 10000")]),
    ("smart", {"bogus": 1}, [("algorithm_params.bogus",
                              "unknown parameter; known: default_collar_bps, interval_s, limit_price, rounds")]),
    ("direct", {"x": 1}, [("algorithm_params.x", "unknown parameter; known: ")]),
    ("hedge", {}, [("algorithm", "must be one of direct, twap, vwap, iceberg, pov, smart")]),
])
def test_parse_params_reports_every_problem_precisely(algorithm, params, problems):
    with pytest.raises(InvalidParams) as err:
        parse_params(algorithm, params)
    assert err.value.problems == problems
    assert isinstance(err.value, ValueError) and str(err.value).startswith(problems[0][0])


def test_parse_params_defaults():
    p = parse_params("twap", {"duration_s": 600})
    assert (p.slices, p.mode, p.default_collar_bps) == (10, "taker", D(50))
    assert parse_params("twap", {"duration_s": 600, "interval_s": 70}).slices == 9  # whole buckets
    assert parse_params("vwap", {"duration_s": 600}).slices == len(DEFAULT_PROFILE)
    assert parse_params("vwap", {"duration_s": 600, "profile": [1, 2, 3]}).slices == 3
    assert parse_params("pov", {"target_rate": "0.1"}).interval_s == 5
    assert parse_params(Algorithm.SMART, None).rounds == 3
    assert parse_params("iceberg", {"display_quantity": "0.5", "limit_price": "100.5"}).limit_price == D("100.5")
    with pytest.raises(ValueError, match="direct"):
        planner_for("direct", {})


# ---- slippage -------------------------------------------------------------------------------------------
def test_collar_and_its_passively_rounded_price():
    assert collar(Side.BUY, D("100"), D("50")) == D("100.5")
    assert collar(Side.SELL, D("100"), D("50")) == D("99.5")
    tick = D("0.01")
    # the collar as an order price is rounded passively, so rounding never breaches it
    assert Bound(D("100.003"), D("10"), "current mid").price(Side.BUY, tick) == D("100.10")  # 100.103003 down
    assert Bound(D("100.003"), D("10"), "current mid").price(Side.SELL, tick) == D("99.91")  # 99.902997 up
    # which reference: the arrival mid with the order's own bound, else the current mid and the default
    assert bound_for(D("10"), D("100"), D("120"), D("50")).reference == D("100")
    assert bound_for(D("10"), None, D("120"), D("50")).reference == D("120")
    b = bound_for(None, D("100"), D("120"), D("50"))
    assert (b.reference, b.bps, b.source) == (D("120"), D("50"), "current mid")
    assert bound_for(None, None, None) is None


def test_a_child_beyond_the_collar_is_skipped_with_the_reason():
    planner = planner_for("twap", {"duration_s": 600, "slices": 10})
    # the order's own bound: 10 bps from its arrival mid 100 -> 100.10; the ask is 100.30
    p = parent(arrival_mid=D("100"), max_slippage_bps=D("10"))
    d = planner.plan(p, snap(book(bid="100.28", ask="100.30")), T0)
    assert d.children == () and d.next_at_ms == T0 + 60_000
    assert "slippage collar" in d.skipped[0] and "100.10" in d.skipped[0] and "arrival mid 100" in d.skipped[0]
    # within the bound: sent as an IOC limit capped at the collar where the book is thin
    thin = book(bid="100.00", ask="100.05", qty="0.5", levels=10, step="0.05")
    d = planner.plan(p, snap(thin), T0)
    assert qtys(d) == [D("1.00")] and d.children[0].price == D("100.10")
    assert d.children[0].time_in_force is TimeInForce.IOC and d.children[0].order_type is OrderType.LIMIT
    # no bound given: the default collar (50 bps) from the current mid
    far = book(bid="99.00", ask="101.00")  # mid 100, ask 1% away
    d = planner.plan(parent(), snap(far), T0)
    assert d.children == () and "slippage collar: 100.50 (50 bps above the current mid 100.00)" in d.skipped[0]
    d = planner_for("twap", {"duration_s": 600, "default_collar_bps": 150}).plan(parent(), snap(far), T0)
    assert d.children[0].price == D("101.50")  # the IOC's limit is the collar: it trades at the book's prices
    # a limit price tighter than the collar is the child's price
    d = planner_for("twap", {"duration_s": 600, "default_collar_bps": 150, "limit_price": "101.20"}).plan(
        parent(), snap(far), T0)
    assert d.children[0].price == D("101.20")


def test_a_child_beyond_the_limit_price_is_skipped():
    d = planner_for("twap", {"duration_s": 600, "limit_price": "99.5"}).plan(parent(), snap(), T0)
    assert d.children == () and "beyond the limit price 99.5" in d.skipped[0]
    d = planner_for("twap", {"duration_s": 600}).plan(parent(side=Side.SELL, limit_price=D("100.5")), snap(), T0)
    assert d.children == () and "best bid 99.99" in d.skipped[0]


# ---- TWAP -----------------------------------------------------------------------------------------------
def test_twap_even_schedule_and_done():
    sim = Sim(planner_for("twap", {"duration_s": 60, "slices": 4}), parent("10"), lambda now, i: snap()).run()
    assert [(now - T0, c.quantity, c.price) for now, c in sim.sent] == [
        (0, D("2.50"), D("100.50")), (15_000, D("2.50"), D("100.50")), (30_000, D("2.50"), D("100.50")),
        (45_000, D("2.50"), D("100.50"))]  # IOC limits at the default collar, 50 bps above the mid 100
    assert sim.filled == 10
    assert sim.log[-1][3] == SliceDecision()  # done


def test_twap_carries_misses_forward_and_catches_up_before_the_deadline():
    planner = planner_for("twap", {"duration_s": 60, "slices": 4})
    sim = Sim(planner, parent("10"), lambda now, i: snap(), fill=lambda c, rng: 0).run()
    sent = [(now - T0, c.quantity) for now, c in sim.sent]
    # cumulative targets: nothing fills, so each slice sends the whole target so far
    assert sent[:4] == [(0, D("2.50")), (15_000, D("5.00")), (30_000, D("7.50")), (45_000, D("10.00"))]
    # the catch-up: a quarter bucket (3.75 s) before the deadline, retried every second, none at the deadline
    assert [t for t, _ in sent[4:]] == [56_250, 57_250, 58_250, 59_250] and all(q == 10 for _, q in sent[4:])
    assert sim.log[-1][3].next_at_ms is None and all(now < T0 + 60_000 for now, _ in sim.sent)
    late = planner.plan(parent("10"), snap(), T0 + 60_000)
    assert late.children == () and "deadline passed with 10 unfilled" in late.skipped[0]


def test_twap_catch_up_sends_everything_left():
    planner = planner_for("twap", {"duration_s": 600, "slices": 4})
    p = parent("10", filled_quantity=D("3"), slice_index=4)
    d = planner.plan(p, snap(), T0 + 600_000 - 10_000)
    assert qtys(d) == [D("7")] and d.children[0].time_in_force is TimeInForce.IOC
    assert d.next_at_ms == T0 + 600_000 - 9_000


def test_twap_slice_below_the_minimum_merges_into_the_next():
    t = {"x": terms(min_qty="1")}
    sim = Sim(planner_for("twap", {"duration_s": 60, "slices": 4}), parent("2"), lambda now, i: snap(t=t)).run()
    assert [(now - T0, c.quantity) for now, c in sim.sent] == [(15_000, D("1.00")), (45_000, D("1.00"))]
    first = sim.log[0][3]
    assert "below x's minimum quantity 1" in first.skipped[0] and "carried into the next slice" in first.skipped[0]


def test_twap_adds_a_remainder_too_small_to_send_later():
    t = {"x": terms(min_qty="1")}
    # slice 3 of 4 (k=2) wants 7.5 - 4.5 = 3.0 but would leave 1.5 -> fine; with 10.5 total the last 0.5 is kept
    d = planner_for("twap", {"duration_s": 60, "slices": 4}).plan(
        parent("5.5", filled_quantity=D("4")), snap(t=t), T0 + 45_000)
    assert qtys(d) == [D("1.50")]  # the whole rest: nothing too small is left behind


def test_twap_randomisation_is_deterministic_and_bounded():
    params = {"duration_s": 600, "slices": 10, "randomize_size_pct": 50, "randomize_time_pct": 50}
    runs = [Sim(planner_for("twap", params), parent("10"), lambda now, i: snap()).run() for _ in range(2)]
    assert [(n, c) for n, c in runs[0].sent] == [(n, c) for n, c in runs[1].sent]
    sizes = [c.quantity for _, c in runs[0].sent]
    assert sum(sizes) == 10 and len(set(sizes)) > 3
    for k, (now, _) in enumerate(runs[0].sent[:10]):
        assert abs(now - (T0 + k * 60_000)) <= 30_000
    assert all(now < T0 + 600_000 - 10_000 for now, _ in runs[0].sent)
    other = Sim(planner_for("twap", params), parent("10", client_order_id="parent-2"), lambda now, i: snap()).run()
    assert [c.quantity for _, c in other.sent] != sizes


def test_twap_schedule_times_are_monotonic_and_before_the_catch_up():
    s = Schedule("p", T0, T0 + 100_000, 20, D(50))
    times = [s.at(k) for k in range(21)]
    assert times == sorted(times) and times[-1] == s.catch_up_at and times[-2] < s.catch_up_at
    for now in range(T0, T0 + 100_000, 997):
        k = s.bucket(now)
        assert s.at(k) <= now and (k == 19 or s.at(k + 1) > now)


def test_twap_maker_joins_the_near_touch_post_only():
    planner = planner_for("twap", {"duration_s": 600, "slices": 10, "mode": "maker", "reprice_after_s": 30})
    d = planner.plan(parent("10"), snap(), T0)
    c = d.children[0]
    assert (c.price, c.post_only, c.time_in_force, c.quantity) == (D("99.99"), True, TimeInForce.GTC, D("1.00"))
    sell = planner.plan(parent("10", side=Side.SELL), snap(), T0).children[0]
    assert sell.price == D("100.01") and sell.post_only


def test_twap_maker_reprices_stale_or_moved_children():
    planner = planner_for("twap", {"duration_s": 600, "slices": 10, "mode": "maker", "reprice_after_s": 30})
    now = T0 + 65_000
    at_touch = WorkingChild("c-touch", D("99.99"), D("1"), now - 5_000)
    moved = WorkingChild("c-moved", D("99.98"), D("0.5"), now - 5_000)
    old = WorkingChild("c-old", D("99.99"), D("0.5"), now - 31_000)
    p = parent("10", filled_quantity=D("0"), working_quantity=D("2"), working_children=(at_touch, moved, old),
               slice_index=1)
    d = planner.plan(p, snap(), now)
    assert set(d.cancel) == {"c-moved", "c-old"}
    assert d.children == ()  # the target (2.0) is all working: the cancelled quantity is re-sent next call
    assert d.next_at_ms == now + 1000
    # the next call, after the cancels are confirmed, re-sends their quantity at the touch
    p2 = replace(p, working_quantity=D("1"), working_children=(at_touch,), slice_index=2)
    d2 = planner.plan(p2, snap(), now + 1000)
    assert qtys(d2) == [D("1.00")] and d2.children[0].price == D("99.99") and d2.cancel == ()
    assert d2.next_at_ms == at_touch.placed_at_ms + 30_000  # the next re-price check


def test_working_children_may_be_plain_tuples():
    p = parent("10", working_quantity=D("1"), working_children=(("c-1", D("99.99"), D("1"), T0),))
    assert p.working_children[0].placed_at_ms == T0 and p.available == 9


def test_twap_maker_catch_up_cancels_resting_children_then_takes():
    planner = planner_for("twap", {"duration_s": 600, "slices": 10, "mode": "maker"})
    resting = WorkingChild("c-rest", D("99.99"), D("2"), T0 + 540_000)
    p = parent("10", filled_quantity=D("7"), working_quantity=D("2"), working_children=(resting,), slice_index=9)
    d = planner.plan(p, snap(), T0 + 590_000)
    assert d.cancel == ("c-rest",) and qtys(d) == [D("1.00")] and d.children[0].time_in_force is TimeInForce.IOC
    assert d.next_at_ms == T0 + 591_000
    # past the deadline: whatever still rests is cancelled and the algorithm ends
    end = planner.plan(p, snap(), T0 + 600_000)
    assert end.cancel == ("c-rest",) and end.next_at_ms is None and end.children == ()


def test_twap_waits_for_its_start():
    d = planner_for("twap", {"duration_s": 600}).plan(parent("10"), snap(), T0 - 5)
    assert d == SliceDecision(next_at_ms=T0)


# ---- VWAP -----------------------------------------------------------------------------------------------
def test_vwap_follows_the_profile():
    planner = planner_for("vwap", {"duration_s": 60, "slices": 4, "profile": [1, 2, 3, 4]})
    sim = Sim(planner, parent("10"), lambda now, i: snap()).run()
    assert [c.quantity for _, c in sim.sent] == [D("1.00"), D("2.00"), D("3.00"), D("4.00")]


def test_vwap_uses_the_market_profile_unless_one_is_given():
    market = snap(profile=(D(4), D(3), D(2), D(1)))
    sim = Sim(planner_for("vwap", {"duration_s": 60, "slices": 4}), parent("10"), lambda now, i: market).run()
    assert [c.quantity for _, c in sim.sent] == [D("4.00"), D("3.00"), D("2.00"), D("1.00")]
    own = Sim(planner_for("vwap", {"duration_s": 60, "slices": 4, "profile": [1, 1, 1, 1]}), parent("10"),
              lambda now, i: market).run()
    assert [c.quantity for _, c in own.sent] == [D("2.50")] * 4


def test_vwap_interpolates_a_profile_of_another_length():
    assert cumulative((D(1), D(3)), 0, 4) == D("0.125")  # half of the first bucket
    assert cumulative((D(1), D(3)), 1, 4) == D("0.25")
    assert cumulative((D(1), D(3)), 2, 4) == D("0.625")
    assert cumulative((D(1), D(3)), 3, 4) == 1
    default = [cumulative(DEFAULT_PROFILE, k, 12) for k in range(12)]
    steps = [b - a for a, b in zip([D(0)] + default, default)]
    assert steps[0] > steps[5] < steps[-1]  # U-shaped


def test_vwap_never_exceeds_the_participation_cap():
    planner = planner_for("vwap", {"duration_s": 60, "slices": 4, "profile": [1, 1, 1, 1], "max_participation": "0.1"})
    d = planner.plan(parent("10"), snap(traded=D("5")), T0)
    assert qtys(d) == [D("0.50")] and "capped at 0.5" in d.skipped[0] and "max_participation 0.1" in d.skipped[0]
    sim = Sim(planner, parent("10"), lambda now, i: snap(traded=D("12"))).run()
    assert all(c.quantity <= D("1.2") for _, c in sim.sent)
    assert sim.filled < 10  # the cap holds the order back, catch-up included
    assert Sim(planner, parent("10"), lambda now, i: snap()).run().filled == 10  # volume unknown: no cap


# ---- iceberg --------------------------------------------------------------------------------------------
def test_iceberg_shows_one_tranche_at_a_time():
    planner = planner_for("iceberg", {"display_quantity": "2", "limit_price": "100.00", "size_variance_pct": 20})
    d = planner.plan(parent("10"), snap(), T0)
    (c,) = d.children
    assert c.price == D("100.00") and c.time_in_force is TimeInForce.GTC and not c.post_only
    assert D("1.6") <= c.quantity <= D("2.4") and d.next_at_ms == T0 + 1000
    working = WorkingChild(c.client_order_id, c.price, c.quantity, T0)
    wait = planner.plan(parent("10", working_quantity=c.quantity, working_children=(working,), slice_index=1),
                        snap(), T0 + 1000)
    assert wait.children == () and wait.cancel == () and wait.next_at_ms == T0 + 2000
    refresh = planner.plan(parent("10", filled_quantity=c.quantity, slice_index=2), snap(), T0 + 2000)
    (c2,) = refresh.children
    assert c2.client_order_id != c.client_order_id and D("1.6") <= c2.quantity <= D("2.4")


def test_iceberg_runs_to_filled_with_varied_tranches():
    planner = planner_for("iceberg", {"display_quantity": "1.5", "limit_price": "100.00", "size_variance_pct": 30})
    sim = Sim(planner, parent("10"), lambda now, i: snap()).run()
    sizes = [c.quantity for _, c in sim.sent]
    assert sim.filled == 10 and sum(sizes) == 10 and len(set(sizes)) > 2
    assert sim.log[-1][3].next_at_ms is None


def test_iceberg_refreshes_a_tranche_beyond_the_bound_and_respects_minimums():
    planner = planner_for("iceberg", {"display_quantity": "0.001", "limit_price": "101"})
    t = {"x": terms(min_qty="0.05", min_notional="10")}
    d = planner.plan(parent("10"), snap(t=t), T0)
    # the display is below the venue's minimum: raised to it (10 / 100.5 -> 0.1 in lots); price capped at the
    # default collar, 50 bps above the mid 100
    assert qtys(d) == [D("0.10")] and d.children[0].price == D("100.50")
    stale = WorkingChild("c-1", D("100.50"), D("0.1"), T0)
    lower = snap(book(bid="98.99", ask="99.01"), t=t)  # the mid fell to 99: the collar is now 99.49
    p = parent("10", working_quantity=D("0.1"), working_children=(stale,), slice_index=1)
    d = planner.plan(p, lower, T0 + 1000)
    assert d.cancel == ("c-1",) and d.children == ()


# ---- POV ------------------------------------------------------------------------------------------------
def test_pov_tracks_the_rate():
    planner = planner_for("pov", {"target_rate": "0.1", "interval_s": 5})
    d = planner.plan(parent("100"), snap(traded=D("100")), T0)
    assert qtys(d) == [D("10.00")] and d.next_at_ms == T0 + 5000 and d.children[0].time_in_force is TimeInForce.IOC
    d = planner.plan(parent("100", working_quantity=D("4")), snap(traded=D("100")), T0)
    assert qtys(d) == [D("6.00")]
    volumes = [D(v) for v in ("50", "120", "80", "0", "200")]
    sim = Sim(planner, parent("100"), lambda now, i: snap(traded=volumes[i % len(volumes)])).run(max_calls=10)
    assert [c.quantity for _, c in sim.sent] == [D("5.00"), D("12.00"), D("8.00"), D("20.00"),
                                                 D("5.00"), D("12.00"), D("8.00"), D("20.00")]


def test_pov_skips_small_children_and_unknown_volume():
    planner = planner_for("pov", {"target_rate": "0.1", "min_child": "2"})
    d = planner.plan(parent("100"), snap(traded=D("15")), T0)
    assert d.children == () and "below min_child 2" in d.skipped[0] and d.next_at_ms == T0 + 5000
    d = planner.plan(parent("100"), snap(), T0)
    assert d.children == () and "volume since the last slice unknown" in d.skipped[0]
    assert qtys(planner.plan(parent("100", filled_quantity=D("99")), snap(traded=D("15")), T0)) == [D("1.00")]
    ended = planner.plan(parent("100", end_ms=T0 + 1), snap(traded=D("100")), T0 + 1)
    assert ended.next_at_ms is None and ended.children == ()


# ---- smart ----------------------------------------------------------------------------------------------
def test_smart_routes_across_venues_in_bounded_rounds():
    a = book("a", bid="99.90", ask="100.00", qty="1")
    b = book("b", bid="99.95", ask="100.02", qty="3")
    market = snap(a, b)
    planner = planner_for("smart", {"rounds": 2})
    d = planner.plan(parent("3", venue=None), market, T0)
    by = {c.venue: c for c in d.children}
    assert by["a"].quantity == 1 and by["a"].price == D("100.00") and by["b"].quantity == 2
    assert all(c.time_in_force is TimeInForce.IOC for c in d.children) and d.next_at_ms == T0 + 1000
    assert len({c.client_order_id for c in d.children}) == 2
    last = planner.plan(parent("3", venue=None, filled_quantity=D("2"), slice_index=1), market, T0 + 1000)
    assert qtys(last) == [D("1")] and last.next_at_ms is None
    over = planner.plan(parent("3", venue=None, filled_quantity=D("2"), slice_index=2), market, T0 + 2000)
    assert over.children == () and "2 rounds done; 1 unfilled" in over.skipped[0]


def test_smart_leaves_a_good_till_cancelled_remainder_resting_and_cancels_an_ioc_one():
    thin = book("a", bid="99.99", ask="100.01", qty="1")
    cheap_maker = book("b", bid="99.98", ask="100.02", qty="1")
    t = {"a": terms("a"), "b": replace(terms("b"), maker_fee=D("-0.0001"))}
    planner = planner_for("smart", {"rounds": 1})
    gtc = parent("5", venue=None, limit_price=D("100.02"), arrival_mid=D("100"))
    first = planner.plan(gtc, snap(thin, cheap_maker, t=t), T0)
    assert sum(qtys(first)) == 2 and first.next_at_ms == T0 + 1000  # the last round, and one more call after it
    in_flight = replace(gtc, working_quantity=D("2"), slice_index=1,
                        working_children=tuple((c.client_order_id, c.price, c.quantity, T0) for c in first.children))
    assert planner.plan(in_flight, snap(thin, t=t), T0 + 1000) == SliceDecision(next_at_ms=T0 + 2000)  # answers
    after = replace(gtc, filled_quantity=D("2"), slice_index=2)
    rest = planner.plan(after, snap(thin, cheap_maker, t=t), T0 + 2000)
    (resting,) = rest.children
    assert (resting.venue, resting.quantity, resting.price) == ("b", D("3"), D("100.02"))
    assert resting.time_in_force is TimeInForce.GTC and not resting.post_only and rest.next_at_ms == T0 + 7000
    assert "3.00 left resting at 100.02 on b" in rest.skipped[0]
    again = planner.plan(replace(after, slice_index=3), snap(thin, cheap_maker, t=t), T0 + 2500)
    assert again.children[0].client_order_id == resting.client_order_id  # a repeat is the same order, not a new one
    waiting = replace(after, working_quantity=D("3"), slice_index=3,
                      working_children=((resting.client_order_id, resting.price, D("3"), T0 + 2000),))
    assert planner.plan(waiting, snap(thin, t=t), T0 + 7000) == SliceDecision(next_at_ms=T0 + 12_000)
    refused = replace(waiting, working_quantity=D(0), working_children=(), slice_index=4,
                      ended_children=frozenset({resting.client_order_id}))  # the venue rejected or cancelled it
    gave_up = planner.plan(refused, snap(thin, t=t), T0 + 12_000)
    assert gave_up.children == () and gave_up.next_at_ms is None and "ended at the venue" in gave_up.skipped[0]
    expired = replace(waiting, end_ms=T0 + 9000)
    end = planner.plan(expired, snap(thin, t=t), T0 + 9000)
    assert end.children == () and end.cancel == (resting.client_order_id,) and end.next_at_ms is None
    ioc = replace(gtc, time_in_force=TimeInForce.IOC)
    assert planner.plan(ioc, snap(thin, cheap_maker, t=t), T0).next_at_ms is None
    gone = planner.plan(replace(ioc, filled_quantity=D("2"), slice_index=1), snap(thin, t=t), T0 + 1000)
    assert gone.children == () and gone.next_at_ms is None and "cancelled" in gone.skipped[0]


def test_smart_respects_the_collar_and_the_limit():
    deep = Book("a", SYMBOL, (Level(D("99.9"), D("5")),), (Level(D("100.1"), D("1")), Level(D("101"), D("5"))), 0)
    planner = SmartPlanner(parse_params("smart", {}))
    d = planner.plan(parent("3", venue=None), snap(deep), T0)  # mid 100: collar 100.5 keeps 101 out
    assert qtys(d) == [D("1")] and "2.00 of 3 not routed" in d.skipped[0] and "within 100.5" in d.skipped[0]
    d = planner.plan(parent("3", venue=None, limit_price=D("100")), snap(deep), T0)
    assert d.children == ()


# ---- properties: random parents, markets, fills and call times ------------------------------------------
@st.composite
def scenarios(draw, algorithm: str, deep: bool):
    lot = D(draw(st.sampled_from(["0.001", "0.01", "0.1"])))
    m = draw(st.integers(1, 5))
    min_notional = draw(st.sampled_from([None, D("1"), D("5")]))
    floor = max(50 * m, int((min_notional or D(0)) / 90 / lot) + 1)  # big enough for the venue's minimums
    quantity = lot * draw(st.integers(floor, max(floor, 3000)))
    side = draw(st.sampled_from(list(Side)))
    venues = ["x", "y", "z"][:draw(st.integers(1, 3))] if algorithm == "smart" else ["x"]
    t = {v: VenueTerms(v, SYMBOL, D("0.01"), lot, lot * m, min_notional, D(0), D(draw(st.sampled_from(["0", "0.001"]))))
         for v in venues}
    depth = quantity * 2 if deep else lot * draw(st.integers(m, 400))
    spread = D(draw(st.integers(1, 20))) / 100
    drift = draw(st.integers(0, 5))  # ticks the mid may move per call
    seed = draw(st.integers(0, 2**32))
    limit = None if deep or draw(st.booleans()) else D(draw(st.integers(9_900, 10_100))) / 100
    duration = draw(st.sampled_from([60, 300, 3600]))
    if algorithm in ("twap", "vwap"):
        params = {"duration_s": duration, "slices": draw(st.integers(1, min(20, duration // 5)))}
        if algorithm == "twap":
            params |= {"randomize_size_pct": draw(st.integers(0, 50)), "randomize_time_pct": draw(st.integers(0, 50))}
        elif draw(st.booleans()):
            params["profile"] = draw(st.lists(st.integers(0, 9), min_size=1, max_size=8).filter(lambda w: sum(w) > 0))
        if draw(st.booleans()):
            params["mode"] = "maker"
    elif algorithm == "iceberg":
        params = {"display_quantity": str(quantity * D(draw(st.integers(5, 50))) / 100),
                  "size_variance_pct": draw(st.integers(0, 50)),
                  "limit_price": "100.30" if side is Side.BUY else "99.70"}
    elif algorithm == "pov":
        params = {"target_rate": str(D(draw(st.integers(1, 50))) / 100), "interval_s": draw(st.integers(1, 30))}
    else:
        params = {"rounds": draw(st.integers(1, 5))}
    traded = None
    if algorithm == "pov":
        rate = D(params["target_rate"])
        per_slice = max(quantity / draw(st.integers(1, 10)), lot * m * 2, (min_notional or 0) / 90)
        traded = per_slice / rate
    end = T0 + duration * 1000 if algorithm in ("twap", "vwap") else None
    p = parent(str(quantity), side=side, venue=None if algorithm == "smart" else "x", limit_price=limit,
               end_ms=None if deep else (end or T0 + duration * 1000), client_order_id=f"p-{seed}")
    return algorithm, params, p, t, depth, spread, drift, seed, traded, end


def market_for(t, depth, spread, drift, seed, traded):
    rng = random.Random(seed)
    mids = [D(100)]

    def market(now: int, i: int) -> MarketSnapshot:
        while len(mids) <= i:
            mids.append(mids[-1] + D(rng.randint(-drift, drift)) / 100)
        books = {}
        for k, v in enumerate(t):
            mid = mids[i] + D(k) / 100
            bid, ask = mid - spread / 2, mid + spread / 2
            bid = bid.quantize(D("0.01"), rounding="ROUND_FLOOR")
            ask = ask.quantize(D("0.01"), rounding="ROUND_CEILING")
            levels = 3
            books[v] = Book(v, SYMBOL, tuple(Level(bid - j * D("0.05"), depth) for j in range(levels)),
                            tuple(Level(ask + j * D("0.05"), depth) for j in range(levels)), now)
        return MarketSnapshot(now, books, t, traded_volume=traded)

    return market


ALGORITHMS = ["twap", "vwap", "iceberg", "pov", "smart"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_children_never_exceed_what_is_left_under_random_fills_and_call_times(algorithm, data):
    algo, params, p, t, depth, spread, drift, seed, traded, end = data.draw(scenarios(algorithm, deep=False))
    rng = random.Random(seed)
    sim = Sim(planner_for(algo, params), p, market_for(t, depth, spread, drift, seed, traded),
              fill=lambda c, r: r.choice([0, 0.5, 1]), rng=rng).run(max_calls=300)
    # check_decision ran on every call (sizes, lots, minimums, ids, limits); overfill is asserted in the sim
    assert sim.filled <= p.quantity
    for now, view, market, d in sim.log:
        if view.end_ms is not None and now >= view.end_ms:
            assert d.children == ()
        bound_mid = consolidated_mid(market.books) if algo == "smart" else market.books["x"].mid
        bound = bound_for(view.max_slippage_bps, view.arrival_mid, bound_mid, D(50))
        own = D(params["limit_price"]) if "limit_price" in params else None
        limit = effective_limit(view.side, view.limit_price, own)
        for c in d.children:
            if bound is not None:
                cap = collar(view.side, bound.reference, bound.bps)
                assert not (c.price > cap if view.side is Side.BUY else c.price < cap)
            if limit is not None:
                assert not (c.price > limit if view.side is Side.BUY else c.price < limit)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_full_run_with_complete_fills_sends_exactly_the_quantity_before_the_deadline(algorithm, data):
    algo, params, p, t, depth, spread, drift, seed, traded, end = data.draw(scenarios(algorithm, deep=True))
    sim = Sim(planner_for(algo, params), p, market_for(t, depth, spread, 0, seed, traded)).run(max_calls=600)
    assert sum((c.quantity for _, c in sim.sent), D(0)) == p.quantity == sim.filled
    assert sim.log[-1][3].next_at_ms is None
    if end is not None:
        assert all(now < end for now, _ in sim.sent)
        assert all(d.next_at_ms is None or d.next_at_ms < end for _, _, _, d in sim.log)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_inputs_same_decision(algorithm):
    params = {"twap": {"duration_s": 600, "randomize_size_pct": 30, "randomize_time_pct": 30},
              "vwap": {"duration_s": 600}, "iceberg": {"display_quantity": "1", "limit_price": "100",
                                                      "size_variance_pct": 40},
              "pov": {"target_rate": "0.2"}, "smart": {}}[algorithm]
    market = snap(book("x"), book("y", ask="100.02"), traded=D("30"))
    p = parent("10", slice_index=2, venue=None if algorithm == "smart" else "x")
    first = planner_for(algorithm, params).plan(p, market, T0 + 125_000)
    assert first.children and first == planner_for(algorithm, params).plan(p, market, T0 + 125_000)


def test_each_planner_asks_only_for_the_market_data_it_follows():
    from shared.domain.algorithms import MarketNeeds, planner_for

    assert planner_for("twap", {"duration_s": 60}).needs == MarketNeeds()
    assert planner_for("iceberg", {"display_quantity": 1, "limit_price": 100}).needs == MarketNeeds()
    assert planner_for("pov", {"target_rate": "0.1"}).needs == MarketNeeds(traded_volume=True)
    assert planner_for("vwap", {"duration_s": 120}).needs == MarketNeeds(profile_window_ms=120_000)
    assert planner_for("vwap", {"duration_s": 120, "profile": [1, 2], "max_participation": "0.2"}).needs == \
        MarketNeeds(traded_volume=True)
