"""execctl's `orders watch` view model and loop, and `events tail`'s filters, without a service: snapshot series in,
what the display shows out (execctl/watch.py, execctl/events.py)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from execctl.client import Refused, Unreachable
from execctl.common import TIMED_OUT
from execctl.events import Filters, Seen, decode
from execctl.schedule import plan_of
from execctl.watch import (
    RETRIES,
    WatchState,
    follow,
    observe,
    parent_progress,
    record_line,
)

T0 = 1_800_000_000_000  # the parent's created_at
WINDOW_MS = 30_000  # 3 slices of 10 s; the catch-up at 27.5 s (a quarter bucket before the end)


def child(n: int, status: str, filled: str, price: str | None) -> dict:
    return {"order_id": f"ord_child{n}", "client_order_id": f"alg-{n}", "exchange": "binance", "slice": n,
            "created_at": T0 + n * 10_000, "status": status, "quantity": "0.1", "price": "49000",
            "filled_quantity": filled, "average_price": price, "commission": "0"}


def twap(status: str, filled: str, slices_done: int, next_at: int | None, children: list[dict], *,
         side: str = "sell", params: dict | None = None, algorithm: str = "twap", **progress) -> dict:
    return {
        "order_id": "ord_parent", "client_order_id": "cid-parent", "strategy_id": "s", "exchange": "binance",
        "symbol": "BTC/USDT", "side": side, "order_type": "limit", "quantity": "0.3", "price": "40000",
        "time_in_force": "GTC", "expire_at": None, "status": status, "filled_quantity": filled,
        "average_price": None, "reason": None, "created_at": T0, "updated_at": T0 + 1, "algorithm": algorithm,
        "algorithm_params": params if params is not None else {"duration_s": 30, "slices": 3},
        "slices_done": slices_done, "next_slice_at": next_at, "paused": False, "arrival_mid": "50000", "fills": [],
        "progress": {"algorithm": algorithm, "slices_done": slices_done, "next_slice_at": next_at, "paused": False,
                     "arrival_mid": "50000", "notes": [], "children": children, **progress},
    }


# A sell TWAP of 0.3 in three slices against an arrival mid of 50000: what each poll shows.
SERIES = [
    # 0.5 s in: slice 0 ran, its child filled 0.1 at 49990 (the parent folds it at the next slice)
    (T0 + 500, twap("accepted", "0", 1, T0 + 10_000, [child(0, "filled", "0.1", "49990")])),
    # 12 s in: slice 1's child is still working: behind the plan
    (T0 + 12_000, twap("accepted", "0.1", 2, T0 + 20_000, [child(0, "filled", "0.1", "49990"),
                                                           child(1, "accepted", "0", None)])),
    # 21 s in: slice 1's child filled above the mid (a sell: a gain)
    (T0 + 21_000, twap("accepted", "0.2", 3, T0 + 27_500, [child(0, "filled", "0.1", "49990"),
                                                           child(1, "filled", "0.1", "50010"),
                                                           child(2, "accepted", "0", None)])),
    # 28.5 s in: all filled
    (T0 + 28_500, twap("filled", "0.3", 4, None, [child(0, "filled", "0.1", "49990"),
                                                  child(1, "filled", "0.1", "50010"),
                                                  child(2, "filled", "0.1", "49970")])),
]


def test_a_twap_series_shows_filled_against_its_schedule_arrival_cost_and_time_left():
    shown = [parent_progress(order, None, now) for now, order in SERIES]
    assert [p.filled for p in shown] == [Decimal("0.1"), Decimal("0.1"), Decimal("0.2"), Decimal("0.3")]
    assert [p.filled_pct for p in shown] == [Decimal("33.33"), Decimal("33.33"), Decimal("66.67"), Decimal("100.00")]
    # due by now: a third per slice begun, everything from the catch-up (27.5 s) on
    assert [p.planned for p in shown] == [Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("0.3")]
    assert [p.planned_pct for p in shown] == [Decimal("33.33"), Decimal("66.67"), Decimal("100.00"),
                                              Decimal("100.00")]
    # a sell below the arrival mid costs: 49990 -> +2 bps; 49990 and 50010 average 50000 -> 0; then 49990 -> +2
    # (the working child of the second poll adds nothing)
    assert [p.arrival_cost_bps for p in shown] == [Decimal(2), Decimal(2), Decimal(0), Decimal(2)]
    assert shown[3].average_price == Decimal("49990")
    assert [p.time_left_ms for p in shown] == [29_500, 18_000, 9_000, 0]
    assert [p.slices_done for p in shown] == [1, 2, 3, 4] and {p.slices_planned for p in shown} == {3}
    assert [p.next_slice_at for p in shown] == [T0 + 10_000, T0 + 20_000, T0 + 27_500, None]
    assert [p.working_children for p in shown] == [0, 1, 1, 0]
    assert shown[0].participation is None and "not read yet" in shown[0].participation_note


def test_arrival_cost_is_side_aware():
    buy = twap("accepted", "0", 1, None, [child(0, "filled", "0.1", "50010")], side="buy")
    sell = twap("accepted", "0", 1, None, [child(0, "filled", "0.1", "50010")], side="sell")
    assert parent_progress(buy, None, T0 + 1).arrival_cost_bps == Decimal(2)  # paid above the mid
    assert parent_progress(sell, None, T0 + 1).arrival_cost_bps == Decimal(-2)  # sold above it


def test_the_parents_own_total_counts_when_retired_children_left_the_list():
    order = twap("accepted", "0.2", 3, None, [child(2, "filled", "0.1", "50000")], retired_children=1)
    order["average_price"] = "49995"
    shown = parent_progress(order, None, T0 + 21_000)
    assert shown.filled == Decimal("0.2") and shown.average_price == Decimal("49995")
    assert shown.arrival_cost_bps == Decimal(1)


def test_the_plan_is_left_out_where_it_follows_market_volume_and_says_why():
    vwap = twap("accepted", "0", 1, None, [], algorithm="vwap", params={"duration_s": 30, "slices": 3})
    pov = twap("accepted", "0", 1, None, [], algorithm="pov", params={"target_rate": "0.1"})
    iceberg = twap("accepted", "0", 1, None, [], algorithm="iceberg", params={"display_quantity": "0.1",
                                                                                   "limit_price": "40000"})
    assert plan_of(vwap, T0 + 1).planned is None and "volume profile" in plan_of(vwap, T0 + 1).why
    assert plan_of(pov, T0 + 1).planned is None and "traded volume" in plan_of(pov, T0 + 1).why
    assert plan_of(iceberg, T0 + 1).planned is None and "no time schedule" in plan_of(iceberg, T0 + 1).why
    # a VWAP given its profile has a plan here: half the volume in the first third
    shaped = twap("accepted", "0", 1, None, [], algorithm="vwap",
                  params={"duration_s": 30, "slices": 3, "profile": ["2", "1", "1"]})
    assert plan_of(shaped, T0 + 1).planned == Decimal("0.15")


def test_a_plan_the_service_exposes_is_believed():
    order = twap("accepted", "0", 1, None, [], algorithm="pov", params={"target_rate": "0.1"},
                 schedule_planned="0.07")
    assert plan_of(order, T0 + 1).planned == Decimal("0.07")
    vwap = twap("accepted", "0", 1, None, [], algorithm="vwap", params={"duration_s": 30, "slices": 3},
                schedule_planned="0.01030265756626054596086126802")
    assert plan_of(vwap, T0 + 1).planned == Decimal("0.010302657566")  # shown to 12 places, as the planner's own


def test_the_plan_ends_with_the_orders_own_expiry():
    order = twap("accepted", "0", 1, None, [])
    order.update(time_in_force="GTD", expire_at=T0 + 15_000)  # the 30 s window cut to 15 s
    plan = plan_of(order, T0 + 1)
    assert plan.end_ms == T0 + 15_000
    assert parent_progress(order, None, T0 + 5_000).time_left_ms == 10_000


def test_observing_the_series_records_each_change_once():
    state, all_records = WatchState(), []
    for now, order in SERIES:
        state, records = observe(state, order, None, now)
        all_records.append(records)
        again, repeated = observe(state, order, None, now + 100)  # the same snapshot again: nothing new
        assert repeated == [] and again.history == state.history
    kinds = [[r["kind"] for r in records] for records in all_records]
    assert kinds == [["status", "progress"], ["progress"], ["progress"], ["status", "progress"]]
    assert [(r["previous_status"], r["status"]) for r in state.history] == [(None, "accepted"),
                                                                            ("accepted", "filled")]
    assert state.ended
    last = all_records[-1][-1]
    assert last["filled_pct"] == Decimal("100.00") and last["arrival_cost_bps"] == Decimal(2)
    assert "filled 0.3 of 0.3 (100.00%)" in record_line(last) and "2.00 bps" in record_line(last)


def direct(status: str, filled: str, fills: list[tuple[str, str, str]]) -> dict:
    return {"order_id": "ord_direct", "client_order_id": "c", "exchange": "binance", "symbol": "BTC/USDT",
            "side": "buy", "quantity": "0.2", "status": status, "filled_quantity": filled, "reason": None,
            "updated_at": T0, "algorithm": None, "time_in_force": "GTC", "created_at": T0,
            "fills": [{"trade_id": t, "quantity": q, "price": p, "fee": "0.01", "fee_currency": "USDT",
                       "timestamp": T0 + 5, "liquidity": "taker"} for t, q, p in fills]}


def test_a_direct_order_shows_its_state_changes_and_each_fill_once():
    snapshots = [direct("new", "0", []), direct("accepted", "0", []),
                 direct("partially_filled", "0.1", [("t1", "0.1", "50000")]),
                 direct("partially_filled", "0.1", [("t1", "0.1", "50000")]),
                 direct("filled", "0.2", [("t1", "0.1", "50000"), ("t2", "0.1", "50001")])]
    state = WatchState()
    for i, snapshot in enumerate(snapshots):
        state, _ = observe(state, snapshot, None, T0 + i)
    seen = [(r["kind"], r.get("status") if r["kind"] == "status" else r["trade_id"]) for r in state.history]
    assert seen == [("status", "new"), ("status", "accepted"), ("status", "partially_filled"), ("fill", "t1"),
                    ("status", "filled"), ("fill", "t2")]
    assert not state.is_parent and state.ended
    assert "0.1 @ 50001" in record_line(state.history[-1])


class FakeApi:
    """Answers GET /orders/{id} from a script: each item an order document or an exception to raise."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def get(self, path, **_):
        self.calls.append(path)
        if path.endswith("/tca"):
            return {"tca": {"participation": "0.05", "flags": []}}
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self):
        self.t = 0.0

    def monotonic(self):
        return self.t

    def wall_ms(self):
        return T0 + int(self.t * 1000)

    def sleep(self, s):
        self.t += s


def contended():
    return Refused(503, {"error": {"code": "contended", "message": "busy", "details": []}}, "GET", "/orders/x")


def test_follow_ends_when_the_order_is_terminal_and_retries_a_contended_answer():
    clock = Clock()
    fake = FakeApi([SERIES[0][1], contended(), SERIES[2][1], SERIES[3][1]])
    seen = []
    code = follow(fake, "ord_parent", lambda state, records, now: seen.extend(records), interval_s=1.0,
                  wall_ms=clock.wall_ms, monotonic=clock.monotonic, sleep=clock.sleep)
    assert code == 0
    assert [r["status"] for r in seen if r["kind"] == "status"] == ["accepted", "filled"]
    final = [r for r in seen if r["kind"] == "progress"][-1]
    assert final["participation"] == Decimal("0.05")  # the TCA read once the order ended
    assert fake.calls[-1] == "/orders/ord_parent/tca"


def test_follow_times_out_honestly_while_the_order_works():
    clock = Clock()
    code = follow(FakeApi([SERIES[1][1]]), "ord_parent", lambda *_: None, interval_s=1.0, timeout_s=5,
                  wall_ms=clock.wall_ms, monotonic=clock.monotonic, sleep=clock.sleep)
    assert code == TIMED_OUT and 5 <= clock.t < 7


def test_follow_gives_up_on_a_silent_service_after_its_retries_and_not_on_a_refusal():
    clock = Clock()
    silent = FakeApi([Unreachable("no answer")])
    with pytest.raises(Unreachable):
        follow(silent, "ord_parent", lambda *_: None, wall_ms=clock.wall_ms, monotonic=clock.monotonic,
               sleep=clock.sleep)
    assert len(silent.calls) == RETRIES + 1
    unknown = FakeApi([Refused(404, {"error": {"code": "not_found", "message": "no order"}}, "GET", "/orders/x")])
    with pytest.raises(Refused):
        follow(unknown, "ord_x", lambda *_: None, wall_ms=clock.wall_ms, monotonic=clock.monotonic,
               sleep=clock.sleep)
    assert len(unknown.calls) == 1


# ---- events tail ------------------------------------------------------------------------------------------------
def test_events_are_filtered_by_order_and_its_children_strategy_and_status():
    parent = {"order_id": "ord_p", "parent_id": None, "strategy_id": "a", "status": "accepted"}
    kid = {"order_id": "ord_k", "parent_id": "ord_p", "strategy_id": "a", "status": "filled"}
    other = {"order_id": "ord_o", "parent_id": None, "strategy_id": "b", "status": "filled"}
    notice = {"type": "dead_mans_switch", "order_id": None, "strategy_id": "b", "status": "halted"}
    by_order = Filters(order_ids=frozenset({"ord_p"}))
    assert [by_order.matches(e) for e in (parent, kid, other, notice)] == [True, True, False, False]
    by_strategy = Filters(strategies=frozenset({"b"}))
    assert [by_strategy.matches(e) for e in (parent, kid, other, notice)] == [False, False, True, True]
    by_status = Filters(statuses=frozenset({"filled", "halted"}))
    assert [by_status.matches(e) for e in (parent, kid, other, notice)] == [False, True, True, True]
    assert by_status.subscription_filter() == 'attributes.status = "filled" OR attributes.status = "halted"'
    assert by_order.subscription_filter() == ""  # children are not attributes: filtered here only


def test_a_repeated_delivery_is_shown_once_and_non_events_are_recognised():
    seen = Seen()
    event = {"order_id": "ord_a", "sequence": 3}
    assert seen.first(event) and not seen.first(dict(event)) and seen.first({"order_id": "ord_a", "sequence": 4})
    assert seen.first({"type": "dead_mans_switch", "order_id": None}) and seen.first({"order_id": None})
    assert decode(b'{"quantity": 0.1}') == {"quantity": Decimal("0.1")}
    assert decode(b"not json") is None and decode(b"[1]") is None


def test_the_live_display_shows_bars_facts_and_children_of_a_parent_and_the_history_of_a_direct_order():
    from rich.console import Console

    from execctl.watch import render

    def text(state, now):
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(render(state, now))
        return console.export_text()

    state, _ = observe(WatchState(), SERIES[1][1], None, SERIES[1][0])
    shown = text(state, SERIES[1][0])
    assert "0.1 (33.33%)" in shown and "0.2 (66.67%) due by now" in shown
    assert "2 done of 3" in shown and "2.00 bps" in shown and "18.0 s" in shown
    assert "ord_child0" in shown and "ord_child1" in shown and "children (1 working)" in shown
    state = WatchState()
    for i, snapshot in enumerate([direct("accepted", "0", []), direct("filled", "0.2", [("t1", "0.2", "50000")])]):
        state, _ = observe(state, snapshot, None, T0 + i)
    shown = text(state, T0 + 2)
    assert "accepted" in shown and "filled (was accepted)" in shown and "0.2 @ 50000" in shown
