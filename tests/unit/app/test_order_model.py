"""A model-based test of the order service (hypothesis stateful) against a venue that misbehaves like real ones.

The venue fake (``ModelVenue``) is Binance-shaped where it matters: it refuses a repeated client order id only
while the first order is open (a filled order's id can be used again), it is eventually consistent (a new order
is invisible to lookups for a while), its trades list lags its cumulative filled quantity, it truncates
quantities to its lot, it may reject working orders, it loses acknowledgements, and a request may arrive late
(but never after its validity window, as a signed request with recvWindow). The scheduler delivers tasks in any
order and any number of times. Rules interleave create, duplicate submit, submit, sync, cancel, modify, sweep,
venue fills and faults, and an algorithm parent whose slices spawn children (a scripted planner: a clip per slice,
at most what the parent's view says is available) and which may be cancelled at any moment; a venue call may have
another operation run while it is in flight.

Invariants after every step:
- no record is terminal while one of its venue orders is open at the venue;
- never two venue orders for one venue client order id;
- no fill counted twice, and no record holds more filled than the venue says;
- a parent's children never fill, nor may fill, more than the parent's quantity (no over-execution);
and after quiescence (faults healed, every task delivered, a sweep): each record's status, filled quantity and
per-currency commission equal the venue's, and a parent's filled quantity and commissions equal its children's.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import shared.app.algorithms as algorithms_module
import shared.app.orders as orders_module
from shared.adapters.protocol import (
    ErrorCode,
    Fill as VenueFill,
    FillsPage,
    OrderType as VenueOrderType,
    PlaceOrder,
    PlaceResult,
    VenueCallError,
    VenueOrder,
    VenueStatus,
)
from shared.app.algorithms import ParentOrders
from shared.app.orders import Conflict, OrderService
from shared.domain.algorithms.base import NO_NEEDS, ChildIntent, ParentView, SliceDecision
from shared.domain.market import MarketSnapshot
from shared.app.ports import OrderNotFound
from shared.domain.reconcile import ReconcileTask
from shared.domain.orders import InvalidOrder, Order, OrderType, Side, TimeInForce, order_id_for, \
    replacement_client_order_id

from .fakes import FakeCache, FakeClock, FakeMetrics, FakePublisher, FakeStore, TaskNames

D = Decimal
LOT = D("0.01")
MARKET = D("100")
RECV_WINDOW_MS = 5_000  # a request arriving later than this after it was sent is refused by the venue
VISIBLE_AFTER_MS = 1_500  # a new order is invisible to lookups this long (eventual consistency)
TRADES_LAG_MS = 1_000  # the trades list shows a trade this long after it happened
CLIENT_IDS = [f"c-{i}" for i in range(4)]
PARENT_CID = "p-0"
PARENT_SLICES = 4


class ScriptedPlanner:
    """A parent's planner: each of PARENT_SLICES slices sends one child of `clip` at `price` (at most what the
    parent's view says is still available); then the parent is done once its children are."""

    needs = NO_NEEDS

    def __init__(self, params: dict) -> None:
        self.clip, self.price = D(params["clip"]), D(params["price"])

    def plan(self, view: ParentView, market: MarketSnapshot, now: int) -> SliceDecision:
        if view.slice_index >= PARENT_SLICES:
            return SliceDecision(next_at_ms=None)
        quantity = min(self.clip, view.quantity - view.filled_quantity - view.working_quantity)
        children = ()
        if quantity > 0:
            children = (ChildIntent(f"{view.client_order_id}-{view.slice_index}", "binance", view.side, quantity,
                                    OrderType.LIMIT, self.price, TimeInForce.GTC, False, view.slice_index),)
        return SliceDecision(children=children, next_at_ms=now + 1_000)


class NoMarket:
    def snapshot(self, symbol: str, venues: set[str] | None = None) -> MarketSnapshot:
        return MarketSnapshot(0, {}, {})


def error(code: ErrorCode, message: str = "model") -> VenueCallError:
    return VenueCallError("binance", code, message)


@dataclass
class VOrder:
    client_id: str
    venue_id: str
    side: str
    quantity: Decimal
    price: Decimal
    created_ms: int
    status: str = "open"
    filled: Decimal = Decimal(0)

    def view(self) -> VenueOrder:
        return VenueOrder(venue="binance", client_order_id=self.client_id, venue_order_id=self.venue_id,
                          symbol="BTC/USDT", side=self.side, type=VenueOrderType.LIMIT,
                          status=VenueStatus(self.status), quantity=self.quantity, filled_quantity=self.filled,
                          remaining_quantity=self.quantity - self.filled, price=self.price)


@dataclass
class ModelVenue:
    clock: FakeClock
    orders: list[VOrder] = field(default_factory=list)
    trades: list[VenueFill] = field(default_factory=list)
    created: Counter = field(default_factory=Counter)  # venue orders made per client id
    late: list[tuple[int, int, PlaceOrder]] = field(default_factory=list)  # (sent_ms, arrive_ms, request)
    next_place: str | None = None  # lost_ack | lost_request | late
    next_cancel: str | None = None  # network | lost_ack
    next_get: str | None = None  # timeout
    during: list = field(default_factory=list)  # actions to run while the next call is in flight
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- the venue's own behaviour --
    def _open(self, client_id: str) -> VOrder | None:
        return next((o for o in self.orders if o.client_id == client_id and o.status == "open"), None)

    def _latest(self, client_id: str, visible_only: bool) -> VOrder | None:
        now = self.clock()
        found = [o for o in self.orders if o.client_id == client_id
                 and (not visible_only or now - o.created_ms >= VISIBLE_AFTER_MS)]
        return found[-1] if found else None

    def _accept(self, req: PlaceOrder, at: int | None = None) -> tuple[VOrder, bool, list[VenueFill]]:
        at = self.clock() if at is None else at
        existing = self._open(req.client_order_id)
        if existing is not None:
            return existing, False, []  # a duplicate id is refused only while the first is open
        quantity = req.quantity.quantize(LOT, rounding=ROUND_DOWN)  # truncated to the lot, as adapters do
        if quantity <= 0:
            raise error(ErrorCode.INVALID_ORDER, "below the lot")
        vo = VOrder(req.client_order_id, f"v{next(self.ids)}", req.side.value, quantity, req.price or MARKET, at)
        self.orders.append(vo)
        self.created[req.client_order_id] += 1
        fills = []
        marketable = vo.price >= MARKET if vo.side == "buy" else vo.price <= MARKET
        if marketable:
            fills.append(self.trade(vo, vo.quantity, at=at))
        elif req.time_in_force.value in ("IOC", "FOK"):
            vo.status = "expired"
        return vo, True, fills

    def trade(self, vo: VOrder, quantity: Decimal, fee_currency: str = "USDT", at: int | None = None) -> VenueFill:
        fee = quantity * vo.price * D("0.001") if fee_currency == "USDT" else quantity * D("0.001")
        t = VenueFill(trade_id=f"t{next(self.ids)}", venue_order_id=vo.venue_id, client_order_id=vo.client_id,
                      symbol="BTC/USDT", side=vo.side, price=vo.price, quantity=quantity, fee=fee,
                      fee_currency=fee_currency, timestamp_ms=self.clock() if at is None else at)
        self.trades.append(t)
        vo.filled += quantity
        if vo.filled >= vo.quantity:
            vo.status = "filled"
        return t

    def arrive_late(self) -> None:
        """Requests that arrived by now take effect (at their arrival time). Every venue call runs this first, so
        whoever asks the venue sees what arrived before the question, however the model's clock moved."""
        now = self.clock()
        waiting, self.late = self.late, []
        for sent, arrive, req in waiting:
            if arrive > now:
                self.late.append((sent, arrive, req))
            elif arrive - sent <= RECV_WINDOW_MS:
                try:
                    self._accept(req, at=arrive)  # it arrived then (this model only notices it now)
                except VenueCallError:
                    pass

    def _in_flight(self) -> None:
        if self.during:
            self.during.pop(0)()

    # -- the Venue protocol --
    def place(self, order: PlaceOrder) -> PlaceResult:
        self.arrive_late()
        fault, self.next_place = self.next_place, None
        if fault == "lost_request":
            raise error(ErrorCode.TIMEOUT, "no answer")
        if fault == "late":
            self.late.append((self.clock(), self.clock() + 2_000, order))
            raise error(ErrorCode.TIMEOUT, "no answer")
        vo, created, fills = self._accept(order)
        self._in_flight()
        if fault == "lost_ack":
            raise error(ErrorCode.TIMEOUT, "no answer")
        return PlaceResult(order=vo.view(), created=created, fills=fills)

    def get(self, symbol: str, *, client_order_id: str | None = None,
            venue_order_id: str | None = None) -> VenueOrder:
        self.arrive_late()
        fault, self.next_get = self.next_get, None
        if fault:
            raise error(ErrorCode.TIMEOUT, "no answer")
        vo = self._latest(client_order_id or "", visible_only=True)
        if vo is None:
            raise error(ErrorCode.UNKNOWN_ORDER, "unknown order")
        self._in_flight()
        return vo.view()

    def cancel(self, symbol: str, *, client_order_id: str | None = None,
               venue_order_id: str | None = None) -> VenueOrder:
        self.arrive_late()
        fault, self.next_cancel = self.next_cancel, None
        if fault == "network":
            raise error(ErrorCode.NETWORK, "reset")
        vo = self._open(client_order_id or "") or self._latest(client_order_id or "", visible_only=False)
        if vo is None:
            raise error(ErrorCode.UNKNOWN_ORDER, "unknown order")
        if vo.status == "open":
            vo.status = "canceled"
        self._in_flight()
        if fault == "lost_ack":
            raise error(ErrorCode.TIMEOUT, "no answer")
        return vo.view()

    def fills(self, symbol: str, since: str | None = None, limit: int = 500,
              venue_order_id: str | None = None) -> FillsPage:
        self.arrive_late()
        now = self.clock()
        shown = [t for t in self.trades if venue_order_id in (None, t.venue_order_id)
                 and now - t.timestamp_ms >= TRADES_LAG_MS]
        if since is not None:
            ids = [t.trade_id for t in shown]
            shown = shown[ids.index(since) + 1:] if since in ids else shown
        page = shown[:limit]
        return FillsPage(fills=page, cursor=page[-1].trade_id if page else since)

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        self.arrive_late()
        now = self.clock()
        return [o.view() for o in self.orders if o.status == "open" and now - o.created_ms >= VISIBLE_AFTER_MS]


@dataclass(frozen=True)
class Task:
    kind: str  # submit | sync | reconcile | slice (attempt: the slice index)
    order_id: str
    attempt: int
    due_ms: int
    chain: int | None = None
    reconcile: ReconcileTask | None = None


class ModelScheduler:
    """Cloud Tasks: named tasks (submissions, slices, a sync chain's, the sweep's reconcile tasks) are refused when
    their name was used (as production does), one-off syncs never; any task may be delivered more than once (the
    `deliver` rule's `again`), in any order."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tasks: list[Task] = []
        self.names = TaskNames()

    def submit(self, order_id: str, attempt: int, delay_s: float, key: str = "", *, venue: str) -> None:
        if self.names.first(f"submit-{order_id}-{attempt}-{key}"):
            self.tasks.append(Task("submit", order_id, attempt, self.clock() + int(delay_s * 1000)))

    def sync(self, order_id: str, attempt: int, delay_s: float, chain: int | None = None) -> None:
        if chain is None or self.names.first(TaskNames.chain(order_id, chain, attempt)):
            self.tasks.append(Task("sync", order_id, attempt, self.clock() + int(delay_s * 1000), chain))

    def reconcile(self, task: ReconcileTask, delay_s: float = 0) -> None:
        if self.names.first(task.name):
            self.tasks.append(Task("reconcile", "", 0, self.clock() + int(delay_s * 1000), reconcile=task))

    def slice(self, order_id: str, slice_index: int, delay_s: float, key: str = "") -> None:
        if self.names.first(f"slice-{order_id}-{slice_index}-{key}"):
            self.tasks.append(Task("slice", order_id, slice_index, self.clock() + int(delay_s * 1000)))


def venue_ids_of(order: Order) -> set[str]:
    """Every venue client id that belongs to a record: its first and each replacement's."""
    first = order.client_order_id
    return {first} | {replacement_client_order_id(first, n) for n in range(1, order.replace_count + 2)}


class OrderModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = FakeStore()
        self.scheduler = ModelScheduler(self.clock)
        self.venue = ModelVenue(self.clock)
        self.svc = OrderService(store=self.store, cache=FakeCache(), events=FakePublisher(),
                                scheduler=self.scheduler, venues={"binance": self.venue}, metrics=FakeMetrics(),
                                clock=self.clock, execution_timeout_ms=10**12)
        self.created: set[str] = set()
        self.cancel_asked: set[str] = set()
        self.parents = ParentOrders(self.svc, NoMarket(), self.scheduler, self.clock)
        self.parent_id: str | None = None

    # ---- helpers --------------------------------------------------------------------------------------
    def oid(self, cid: str) -> str:
        return order_id_for("model", cid)

    def run(self, task: Task) -> None:
        try:
            if task.kind == "submit":
                self.svc.submit(task.order_id, attempt=task.attempt)
            elif task.kind == "reconcile":
                assert task.reconcile is not None
                self.svc.reconcile(task.reconcile)
            elif task.kind == "slice":
                self.parents.run_slice(task.order_id, task.attempt)
                self.created |= {c.order_id for c in self.children()}
            else:
                self.svc.sync(task.order_id, attempt=task.attempt, chain=task.chain)
        except OrderNotFound:
            pass

    def children(self) -> list[Order]:
        return [o for o, _ in self.store.docs.values() if self.parent_id and o.parent_id == self.parent_id]

    def action(self, which: str, cid: str):
        def act() -> None:
            if which == "cancel_parent":
                if self.parent_id is not None:
                    self.svc.cancel(self.parent_id)
                return
            if self.oid(cid) not in self.created:
                return
            try:
                if which == "cancel":
                    self.svc.cancel(self.oid(cid))
                    self.cancel_asked.add(self.oid(cid))  # accepted: it must end closed (this venue never refuses)
                elif which == "modify":
                    self.svc.modify(self.oid(cid), price=D("90"), quantity=None, stop_price=None)
                elif which == "sweep":
                    self.svc.sweep()
                elif which == "submit":
                    self.svc.submit(self.oid(cid), attempt=0)
                elif which == "sync":
                    self.svc.sync(self.oid(cid), attempt=0)
            except (Conflict, InvalidOrder, OrderNotFound):
                pass
        return act

    # ---- rules ----------------------------------------------------------------------------------------
    @rule(cid=st.sampled_from(CLIENT_IDS), quantity=st.sampled_from(["1", "0.5", "0.015"]),
          marketable=st.booleans(), ioc=st.booleans())
    def create(self, cid: str, quantity: str, marketable: bool, ioc: bool) -> None:
        now = self.clock()
        order = Order(order_id=self.oid(cid), client_order_id=cid, strategy_id="model", exchange="binance",
                      symbol="BTC/USDT", side=Side.BUY, quantity=D(quantity), order_type=OrderType.LIMIT,
                      price=D("101") if marketable else D("95"),
                      time_in_force=TimeInForce.IOC if ioc and marketable else TimeInForce.GTC,
                      created_at=now, updated_at=now)
        try:
            self.svc.create(order)
        except Conflict:
            return  # the same id again with other terms: refused, as it must be
        self.created.add(order.order_id)

    @precondition(lambda self: self.parent_id is None)
    @rule(quantity=st.sampled_from(["1", "0.5"]), clip=st.sampled_from(["0.3", "0.5"]),
          marketable=st.booleans())
    def create_parent(self, quantity: str, clip: str, marketable: bool) -> None:
        now = self.clock()
        parent = Order(order_id=self.oid(PARENT_CID), client_order_id=PARENT_CID, strategy_id="model",
                       exchange="binance", symbol="BTC/USDT", side=Side.BUY, quantity=D(quantity),
                       order_type=OrderType.LIMIT, price=D("101"), time_in_force=TimeInForce.GTC, created_at=now,
                       updated_at=now, algorithm="twap",
                       algorithm_params={"clip": clip, "price": "101" if marketable else "95"})
        self.store.create(parent, [parent.created_event()])
        self.parent_id = parent.order_id
        self.scheduler.slice(parent.order_id, 0, 0)

    @precondition(lambda self: self.scheduler.tasks)
    @rule(data=st.data(), again=st.booleans())
    def deliver(self, data, again: bool) -> None:
        """A task runs (maybe again later: Cloud Tasks delivers at least once)."""
        task = data.draw(st.sampled_from(self.scheduler.tasks))
        if not again:
            self.scheduler.tasks.remove(task)
        self.clock.now_ms = max(self.clock(), task.due_ms)
        self.venue.arrive_late()
        self.run(task)

    @precondition(lambda self: self.scheduler.tasks)
    @rule(data=st.data(), meanwhile=st.sampled_from(["cancel", "modify", "sweep", "submit", "sync",
                                                     "cancel_parent"]),
          cid=st.sampled_from(CLIENT_IDS))
    def deliver_with_a_race(self, data, meanwhile: str, cid: str) -> None:
        """While this task's venue call is in flight, another operation runs."""
        task = data.draw(st.sampled_from(self.scheduler.tasks))
        self.scheduler.tasks.remove(task)
        self.clock.now_ms = max(self.clock(), task.due_ms)
        self.venue.during.append(self.action(meanwhile, cid))
        self.run(task)
        self.venue.during.clear()

    @rule(which=st.sampled_from(["cancel", "modify", "sweep", "submit", "sync", "cancel_parent"]),
          cid=st.sampled_from(CLIENT_IDS))
    def request(self, which: str, cid: str) -> None:
        self.action(which, cid)()

    @rule(cid=st.sampled_from([*CLIENT_IDS, *(f"{PARENT_CID}-{i}" for i in range(PARENT_SLICES))]),
          whole=st.booleans(), fee=st.sampled_from(["USDT", "BTC"]))
    def venue_fills(self, cid: str, whole: bool, fee: str) -> None:
        for vo in self.venue.orders:
            if vo.status == "open" and (vo.client_id == cid or vo.client_id in self._replacements(cid)):
                left = vo.quantity - vo.filled
                part = left if whole else max(LOT, (left / 2).quantize(LOT, rounding=ROUND_DOWN))
                self.venue.trade(vo, min(part, left), fee)
                return

    def _replacements(self, cid: str) -> set[str]:
        return {replacement_client_order_id(cid, n) for n in range(1, 6)}

    @rule(cid=st.sampled_from(CLIENT_IDS))
    def venue_rejects_a_working_order(self, cid: str) -> None:
        for vo in self.venue.orders:
            if vo.status == "open" and (vo.client_id == cid or vo.client_id in self._replacements(cid)):
                vo.status = "rejected"
                return

    @rule(fault=st.sampled_from(["lost_ack", "lost_request", "late"]))
    def next_placement_goes_wrong(self, fault: str) -> None:
        self.venue.next_place = fault

    @rule(fault=st.sampled_from(["network", "lost_ack"]))
    def next_cancel_goes_wrong(self, fault: str) -> None:
        self.venue.next_cancel = fault

    @rule()
    def next_lookup_times_out(self) -> None:
        self.venue.next_get = "timeout"

    @rule(ms=st.sampled_from([500, 2_000, 16_000, 31_000]))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)
        self.venue.arrive_late()

    # ---- invariants -----------------------------------------------------------------------------------
    def records(self) -> list[Order]:
        return [self.store.peek(oid) for oid in self.created]

    @invariant()
    def at_most_one_venue_order_per_venue_client_id(self) -> None:
        twice = {cid: n for cid, n in self.venue.created.items() if n > 1}
        assert not twice, f"two venue orders for one venue client id: {twice}"

    @invariant()
    def no_record_is_closed_while_a_venue_order_of_it_is_open(self) -> None:
        for record in self.records():
            if record.is_terminal:
                ids = venue_ids_of(record)
                live = [o.client_id for o in self.venue.orders if o.client_id in ids and o.status == "open"]
                assert not live, f"{record.order_id} is {record.status.value} while {live} work at the venue"

    @invariant()
    def no_fill_is_counted_twice_or_invented(self) -> None:
        for record in self.records():
            ids = [f.trade_id for f in record.fills]
            assert len(ids) == len(set(ids))
            venue_filled = sum((o.filled for o in self.venue.orders if o.client_id in venue_ids_of(record)), D(0))
            assert record.filled_quantity <= venue_filled

    @invariant()
    def a_parent_never_over_executes(self) -> None:
        if self.parent_id is None:
            return
        parent = self.store.peek(self.parent_id)
        kids = self.children()
        at_venue = sum((o.filled for o in self.venue.orders for c in kids if o.client_id in venue_ids_of(c)), D(0))
        assert at_venue <= parent.quantity, f"children filled {at_venue} of a parent of {parent.quantity}"
        # what the children have filled or may still fill (working children in full)
        committed = sum((c.filled_quantity if c.is_terminal else max(c.quantity, c.filled_quantity) for c in kids),
                        D(0))
        assert committed <= parent.quantity, f"children commit {committed} of a parent of {parent.quantity}"
        assert parent.fills == ()

    def teardown(self) -> None:
        """Quiescence: heal every fault, let every placement's window pass, deliver every task, sweep; then the
        record must say what the venue says."""
        self.venue.next_place = self.venue.next_cancel = self.venue.next_get = None
        for _ in range(2):
            self.clock.advance(orders_module.UNKNOWN_OUTCOME_HORIZON_MS + 1_000)
            self.venue.arrive_late()
            for _ in range(120):
                due = [t for t in self.scheduler.tasks if t.due_ms <= self.clock() + 60_000]
                if not due:
                    break
                task = min(due, key=lambda t: t.due_ms)
                self.scheduler.tasks.remove(task)
                self.clock.now_ms = max(self.clock(), task.due_ms)
                self.run(task)
            self.svc.sweep()  # its reconcile tasks run now, in any order
            while any(t.kind == "reconcile" for t in self.scheduler.tasks):
                task = next(t for t in self.scheduler.tasks if t.kind == "reconcile")
                self.scheduler.tasks.remove(task)
                self.run(task)
        if self.parent_id is not None:  # the parent folds its children's last state
            self.parents.run_slice(self.parent_id, self.store.peek(self.parent_id).slices_done)
            self.created |= {c.order_id for c in self.children()}
        for record in self.records():
            ids = venue_ids_of(record)
            mine = [o for o in self.venue.orders if o.client_id in ids]
            trades = [t for t in self.venue.trades if t.client_order_id in ids]
            assert record.filled_quantity == sum((t.quantity for t in trades), D(0)), record.order_id
            want: dict[str, Decimal] = {}
            for t in trades:
                want[t.fee_currency] = want.get(t.fee_currency, D(0)) + t.fee
            assert record.commissions == want, record.order_id
            open_at_venue = any(o.status == "open" for o in mine)
            assert record.is_terminal is (not open_at_venue), (record.order_id, record.status, record.reason,
                                                              [(o.client_id, o.status) for o in mine])
            if record.order_id in self.cancel_asked:
                assert record.is_terminal, f"{record.order_id}: a cancel was accepted, yet it is {record.status}"
        if self.parent_id is not None:
            parent, kids = self.store.peek(self.parent_id), self.children()
            assert parent.filled_quantity == sum((c.filled_quantity for c in kids), D(0))
            want = {}
            for c in kids:
                for currency, fee in c.commissions.items():
                    want[currency] = want.get(currency, D(0)) + fee
            assert parent.commissions == want
            if parent.is_terminal:
                assert all(c.is_terminal for c in kids if c.status.value != "new"), [
                    (c.client_order_id, c.status) for c in kids]


OrderModel.TestCase.settings = settings(max_examples=int(os.environ.get("ORDER_MODEL_EXAMPLES", "60")),
                                        stateful_step_count=25, deadline=None, database=None,
                                        suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def small_fill_pages(monkeypatch):
    monkeypatch.setattr(orders_module, "FILLS_PAGE", 2)  # fills are paged to the end, whatever the page size
    monkeypatch.setattr(algorithms_module, "planner_for", lambda name, params: ScriptedPlanner(params))


test_the_record_agrees_with_the_venue_under_any_interleaving = OrderModel.TestCase
