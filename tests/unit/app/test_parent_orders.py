"""Parent orders (shared/app/algorithms.py) against in-memory fakes: a parent owns its budget.

The planner is scripted (it asks for `clip` more each slice, at most what the parent's view says is still
available), so what is tested is the service's bookkeeping, not an algorithm: the children a slice decides are
recorded on the parent before they are created (a slice that dies in between leaves them to the next one, never a
second set); a refused child gives its quantity back; the parent's filled quantity, average price and fees per
currency come from its own folded state, with none of its children's fills copied in, and its document stays
bounded however many children it has had.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest

import shared.app.algorithms as algorithms
from shared.app.algorithms import ParentOrders
from shared.app.orders import OrderService
from shared.app.tca import TcaService
from shared.domain.algorithms.base import NO_NEEDS, ChildIntent, ParentView, SliceDecision
from shared.domain.market import MarketSnapshot
from shared.domain.orders import (
    CHILD_RETIRE_MS,
    S,
    InvalidOrder,
    Order,
    OrderType,
    Side,
    TimeInForce,
    order_id_for,
)
from shared.infra.codec import order_to_dict

from .fakes import Fakes

D = Decimal
STRATEGY = "twap_1"
PARENT_CID = "parent-1"
PARENT_ID = order_id_for(STRATEGY, PARENT_CID)
SLICE_MS = 1_000


@dataclass
class ScriptedPlanner:
    """Each slice: one child of `clip` (or what is available, if less), a limit buy at 50000 on binance."""

    clip: Decimal
    views: list[ParentView] = field(default_factory=list)
    needs = NO_NEEDS

    def plan(self, view: ParentView, market: MarketSnapshot, now: int) -> SliceDecision:
        self.views.append(view)
        quantity = min(self.clip, view.quantity - view.filled_quantity - view.working_quantity)
        children = ()
        if quantity > 0:
            children = (ChildIntent(f"{view.client_order_id}-{view.slice_index}", "binance", view.side, quantity,
                                    OrderType.LIMIT, D("50000"), TimeInForce.GTC, False, view.slice_index),)
        return SliceDecision(children=children, next_at_ms=now + SLICE_MS)


class FakeMarket:
    def snapshot(self, symbol: str, venues: set[str] | None = None) -> MarketSnapshot:
        return MarketSnapshot(0, {}, {})


class Env(Fakes):
    def __init__(self, clip: str = "1", quantity: str = "10") -> None:
        super().__init__()
        self.svc = OrderService(store=self.store, cache=self.cache, events=self.publisher, scheduler=self.scheduler,
                                venues={"binance": self.venue}, metrics=self.metrics, clock=self.clock)
        self.parents = ParentOrders(self.svc, FakeMarket(), self.scheduler, self.clock)
        self.planner = ScriptedPlanner(D(clip))
        now = self.clock()
        self.store.put(Order(order_id=PARENT_ID, client_order_id=PARENT_CID, strategy_id=STRATEGY,
                             exchange="binance", symbol="BTC/USDT", side=Side.BUY, quantity=D(quantity),
                             order_type=OrderType.LIMIT, price=D("50000"), time_in_force=TimeInForce.GTC,
                             created_at=now, updated_at=now, algorithm="twap"))
        self.submitted = 0

    def slice(self, index: int | None = None) -> Order:
        parent = self.store.peek(PARENT_ID)
        return self.parents.run_slice(PARENT_ID, parent.slices_done if index is None else index)

    def submit_children(self) -> None:
        """Run the submission tasks scheduled since the last call."""
        for task in self.scheduler.submits[self.submitted:]:
            self.svc.submit(task.order_id, attempt=task.attempt)
        self.submitted = len(self.scheduler.submits)

    def parent(self) -> Order:
        return self.store.peek(PARENT_ID)

    def children(self) -> list[Order]:
        return [o for o, _ in self.store.docs.values() if o.parent_id == PARENT_ID]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Env:
    e = Env()
    monkeypatch.setattr(algorithms, "planner_for", lambda name, params: e.planner)
    return e


def test_a_slice_that_dies_after_recording_its_children_leaves_them_to_the_next_one_never_a_second_set(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    create = env.svc.create
    calls = {"n": 0}

    def dying_create(order: Order):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the function instance died")
        return create(order)

    monkeypatch.setattr(env.svc, "create", dying_create)
    with pytest.raises(RuntimeError):
        env.slice(0)
    recorded = env.parent()
    assert recorded.slices_done == 1  # the decision is on record ...
    assert [(c.client_order_id, c.status) for c in recorded.children] == [("parent-1-0", None)]  # ... unsent
    assert env.children() == []
    # Cloud Tasks delivers the same slice again: it creates the recorded child and decides nothing new
    env.slice(0)
    assert [c.client_order_id for c in env.children()] == ["parent-1-0"]
    assert env.planner.views[-1].slice_index == 0 and len(env.planner.views) == 1
    # the next slice counts the child as working: the budget was reduced when it was recorded
    env.clock.advance(SLICE_MS)
    env.slice()
    assert env.planner.views[-1].working_quantity == D("1")
    assert sorted(c.client_order_id for c in env.children()) == ["parent-1-0", "parent-1-1"]


def test_a_child_recorded_but_not_created_counts_as_working_in_full(env: Env, monkeypatch) -> None:
    monkeypatch.setattr(env.svc, "create", lambda order: (_ for _ in ()).throw(RuntimeError("down")))
    for _ in range(3):
        with pytest.raises(RuntimeError):
            env.slice()
        env.clock.advance(SLICE_MS)
    # three slices ran against a store whose children could not be created: still one child in the budget
    assert [v.working_quantity for v in env.planner.views] == [D(0)]
    assert sum(c.quantity for c in env.parent().children) == D("1")


def test_a_refused_child_gives_its_quantity_back_with_a_note(env: Env, monkeypatch) -> None:
    create = env.svc.create
    refused = {"once": True}

    def refusing(order: Order):
        if refused.pop("once", False):
            raise InvalidOrder([("quantity", "below the venue's minimum 2")])
        return create(order)

    monkeypatch.setattr(env.svc, "create", refusing)
    parent = env.slice()
    assert parent.children == ()
    assert any("below the venue's minimum" in note for note in parent.notes)
    env.clock.advance(SLICE_MS)
    env.slice()
    assert env.planner.views[-1].working_quantity == 0  # nothing held back for the refused child


def test_the_parent_never_spawns_past_its_quantity_whatever_its_children_do(env: Env) -> None:
    env.planner.clip = D("3")
    for i in range(12):
        if i % 2:
            env.venue.on_place(fill="all")
        env.slice()
        env.submit_children()
        env.clock.advance(SLICE_MS)
    spawned = sum(c.quantity for c in env.children())
    assert spawned <= D("10")
    assert env.parent().filled_quantity + sum(c.working for c in env.parent().children if c.status is not S.FILLED
                                              ) <= D("10")


def test_filled_average_and_fees_per_currency_come_from_the_parents_own_state(env: Env) -> None:
    env.venue.on_place(fill="all")
    env.slice()
    env.submit_children()
    env.clock.advance(SLICE_MS)
    env.venue.fee_rate = D("0.002")
    env.venue.on_place(fill="all")
    env.slice()
    env.submit_children()
    env.clock.advance(SLICE_MS)
    parent = env.slice()
    kids = env.children()
    assert parent.fills == ()  # no child fill is copied into the parent
    assert parent.filled_quantity == sum(c.filled_quantity for c in kids) == D("2")
    fees: dict[str, Decimal] = {}
    for c in kids:
        for cur, fee in c.commissions.items():
            fees[cur] = fees.get(cur, D(0)) + fee
    assert parent.commissions == fees and parent.commission == sum(c.commission for c in kids)
    notional = sum(f.quantity * f.price for c in kids for f in c.fills)
    assert parent.average_price == (notional / D(2)).quantize(D("1e-12"))
    assert parent.status is S.PARTIALLY_FILLED


def test_closed_children_retire_and_the_parent_document_stays_bounded(env: Env) -> None:
    env.planner.clip = D("0.01")
    env.store.put(replace(env.parent(), quantity=D("100")))
    step_ms = 60_000  # a slice a minute: ten minutes of children are kept, the older ones are retired
    sizes = []
    for i in range(600):
        env.venue.on_place(fill="all")
        env.slice()
        env.submit_children()
        env.clock.advance(step_ms)
        if i % 100 == 99:
            sizes.append(len(repr(order_to_dict(env.parent()))))
    env.planner.clip = D(0)
    parent = env.slice()  # folds the last child, sends nothing
    kids = env.children()
    assert len(kids) == 600
    assert parent.filled_quantity == D("6.00") == sum(c.filled_quantity for c in kids)
    assert parent.retired_children + len(parent.children) == 600
    assert len(parent.children) <= CHILD_RETIRE_MS // step_ms + 2
    assert max(sizes) <= sizes[0] * 1.1  # the document does not grow with the number of children
    assert parent.commissions == {"USDT": sum(c.commission for c in kids)}


def test_a_cancelled_parent_folds_its_childrens_last_fills_until_every_child_is_closed(env: Env) -> None:
    env.slice()
    env.submit_children()
    first = env.children()[0]
    env.venue.fill(first.venue_id, D("0.4"))
    env.clock.advance(SLICE_MS)
    env.slice()  # decides, records and creates child 1
    env.venue.refuse_cancels = True  # the venue keeps the children open for now
    env.svc.cancel(PARENT_ID)
    assert env.parent().status is S.CANCELED
    env.submit_children()
    env.parents.run_slice(PARENT_ID, env.parent().slices_done)
    poll = env.scheduler.slices[-1]
    assert poll.key, "a closed parent's poll needs a task name of its own (its index's name is used)"
    env.venue.refuse_cancels = False
    for _ in range(5):
        for task in list(env.scheduler.syncs):
            env.svc.sync(task.order_id, task.attempt)
        env.clock.advance(SLICE_MS)
        env.parents.run_slice(PARENT_ID, env.parent().slices_done)
    parent = env.parent()
    assert all(c.is_terminal for c in env.children())
    assert parent.filled_quantity == D("0.4") == sum(c.filled_quantity for c in env.children())
    assert all(c.ended and c.settled for c in parent.children)


def test_resume_schedules_a_task_of_its_own_name(env: Env) -> None:
    env.slice()
    env.parents.pause(env.parent(), paused=True)
    env.clock.advance(SLICE_MS)
    env.slice()  # the paused slice runs and does nothing
    env.parents.pause(env.parent(), paused=False)
    last = env.scheduler.slices[-1]
    assert last.slice_index == env.parent().slices_done and last.key


def test_a_child_created_while_its_parent_is_cancelled_is_cancelled_too(env: Env, monkeypatch) -> None:
    create = env.svc.create

    def cancel_parent_first(order: Order):
        env.svc.cancel(PARENT_ID)  # a user's DELETE lands between the slice's record and the child's creation
        return create(order)

    monkeypatch.setattr(env.svc, "create", cancel_parent_first)
    env.slice()
    monkeypatch.setattr(env.svc, "create", create)
    env.submit_children()
    for task in list(env.scheduler.syncs):
        env.svc.sync(task.order_id, task.attempt)
    (child,) = env.children()
    assert child.is_terminal, f"child {child.status} under a cancelled parent"
    assert not env.venue.open_orders()


@dataclass
class PlanningPlanner(ScriptedPlanner):
    """The scripted planner, saying what it plans: clip more each slice (cumulative), and a router estimate once."""

    def plan(self, view: ParentView, market: MarketSnapshot, now: int) -> SliceDecision:
        decision = super().plan(view, market, now)
        return replace(decision, planned=min(view.quantity, self.clip * (view.slice_index + 1)),
                       router=(D("50010"), D("50004")) if view.slice_index == 0 else (D(1), D(1)))


def test_each_slice_records_its_plan_and_the_gap_to_the_previous_one(env: Env) -> None:
    env.planner = PlanningPlanner(D("2"))
    env.venue.on_place(fill="all")
    env.slice()  # plans 2; nothing to compare yet
    env.submit_children()  # filled 2
    env.slice()  # filled 2 vs planned 2: gap 0; plans 4
    parent = env.parent()
    assert (parent.schedule_planned, parent.schedule_points, parent.schedule_gap_max) == (D(4), 1, D(0))
    env.venue.on_place(fill=None)  # the next child rests unfilled
    env.submit_children()
    env.slice()  # filled 2 vs planned 4: gap 2/10 = 0.2
    parent = env.parent()
    assert (parent.schedule_points, parent.schedule_gap_max, parent.schedule_gap_sq) == (2, D("0.2"), D("0.04"))
    # the SmartRouter's estimates are the first slice's, not overwritten later
    assert (parent.router_best_price, parent.router_consolidated_price) == (D("50010"), D("50004"))
    _, record = TcaService(store=env.store, market=_NoTape(), clock=env.clock).report(PARENT_ID)
    assert record.schedule_deviation_max == D("0.2")
    assert record.schedule_deviation_rms == D("0.141421356")  # sqrt((0 + 0.04) / 2)
    # bought 2 at 50000 against 50010 alone: 2 bps better; against the ideal split 50004: 0.8 bps better
    assert record.router_vs_best_venue_bps == D("1.999600") and record.router_vs_consolidated_bps == D("0.799936")


class _NoTape:
    def tape(self, venue, symbol, since_ms, until_ms):
        return []
