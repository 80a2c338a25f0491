"""Parent orders driven by execution algorithms: one Cloud Task per slice, children through the normal order path.

A slice task ``slice-{order_id}-{n}`` runs ``run_slice``: it first creates any children a previous delivery
recorded and did not live to create, then checks the parent (terminal, paused, or a slice already done: nothing to
do, so a duplicated, late or retried task is harmless), reads the children it follows by id, asks the planner
(pure: parent view + market snapshot + time) what to do, cancels children, then records the decision on the
parent (progress, folded children, and one entry per child to spawn: the budget is reduced at spawn) and only
then creates the children (deterministic child client order ids, so a repeated slice makes no second child) and
schedules the next slice. The slice task is the parent's only writer besides cancel/pause, so the parent never
becomes a contention point for its children; the parent's totals are its own folded state, never a query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from shared.app.market_data import MarketData
from shared.app.orders import Conflict, OrderService
from shared.app.ports import OrderNotFound, Scheduler
from shared.domain.algorithms import ChildIntent, MarketNeeds, ParentView, SliceDecision, WorkingChild, planner_for
from shared.domain.market import MarketSnapshot
from shared.domain.tca import ScheduleTrack
from shared.domain.orders import (
    SMART,
    S,
    ChildEntry,
    InvalidOrder,
    Order,
    OrderEvent,
    OrderType,
    TimeInForce,
    expiry_ms,
    fold_children,
    order_id_for,
    parent_working,
)

logger = logging.getLogger(__name__)

COMPLETION_POLL_S = 1.0  # after the last slice, how often the parent checks its children until they finish
MAX_NOTES = 20


@dataclass
class ParentOrders:
    orders: OrderService
    market: MarketData
    scheduler: Scheduler
    clock: Callable[[], int]

    # ---- one slice ---------------------------------------------------------------------------------------
    def run_slice(self, order_id: str, slice_index: int) -> Order:
        parent = self._get(order_id)
        parent = self._spawn(parent)  # children a slice recorded but did not live to create
        if parent.is_terminal:
            return self._fold_after_close(parent)
        if parent.paused or slice_index != parent.slices_done:
            return parent  # paused, or this slice ran already (a duplicate or late task)
        now = self.clock()
        children = self._children_of(parent)
        planner = planner_for(parent.algorithm or SMART, parent.algorithm_params)
        market = self._market(parent, planner.needs, now)
        arrival = parent.arrival_mid or market.mid()
        folded = fold_children(parent, children, now)[0]  # the parent as its children stand now (not stored)
        decision = planner.plan(self._view(folded, arrival), market, now)

        if decision.cancel:
            for cid in decision.cancel:
                try:
                    self.orders.cancel(order_id_for(parent.strategy_id, cid),
                                       reason=f"{parent.algorithm}: re-price/refresh")
                except OrderNotFound:
                    pass
            # Decide the children on fresh state: what the cancels closed is free to send now (a catch-up near the
            # deadline gets no second call); what they could not close yet still counts as working.
            children = self._children_of(parent)
            folded = fold_children(parent, children, now)[0]
            replanned = planner.plan(self._view(folded, arrival), market, now)
            decision = replace(replanned, cancel=decision.cancel,
                               skipped=tuple(dict.fromkeys((*decision.skipped, *replanned.skipped))))
        spawn = tuple(self._entry(parent, intent, now) for intent in decision.children)
        working = any(not c.ended for c in folded.children)
        finished = decision.next_at_ms is None and not working and not spawn
        ran: list[bool] = []

        def record(p: Order) -> tuple[Order, list[OrderEvent]]:
            ran.clear()
            if p.is_terminal or p.paused or p.slices_done != slice_index:
                return p, []  # cancelled, paused or run by another delivery meanwhile: this decision is void
            ran.append(True)
            return self._record(p, children, spawn, decision, arrival, finished, now, self.clock())

        # The decision, and the children it spawns, are recorded on the parent before any child is created: the
        # parent's budget is reduced at spawn, and a slice that dies here leaves its children to the next one.
        updated = self.orders.commit(order_id, record)
        if not ran:
            return updated
        if not updated.is_terminal:
            # relative to now, not to the slice's start: the slice's own work must not delay the next one
            delay = (COMPLETION_POLL_S if decision.next_at_ms is None
                     else max(0.0, (decision.next_at_ms - self.clock()) / 1000))
            self.scheduler.slice(order_id, updated.slices_done, delay)
        return self._spawn(updated)

    def _get(self, order_id: str) -> Order:
        parent = self.orders.store.get(order_id)
        if parent is None:
            raise OrderNotFound(order_id)
        return parent

    def _children_of(self, parent: Order) -> dict[str, Order]:
        """The records of the children the parent still follows (its entries), read by id: no query, no cap."""
        return self.orders.store.get_many([c.order_id for c in parent.children if c.status is not None])

    @staticmethod
    def _entry(parent: Order, intent: ChildIntent, now: int) -> ChildEntry:
        return ChildEntry(order_id=order_id_for(parent.strategy_id, intent.client_order_id),
                          client_order_id=intent.client_order_id, venue=intent.venue, slice_index=intent.slice_index,
                          quantity=intent.quantity, order_type=OrderType(intent.order_type.value), price=intent.price,
                          time_in_force=TimeInForce(intent.time_in_force.value), post_only=intent.post_only,
                          placed_at=now)

    def _spawn(self, parent: Order) -> Order:
        """Create the children recorded on the parent and not created yet (idempotent: a child's order id derives
        from its client order id). One the service refuses (halted, does not fit its venue) gives its quantity
        back to the parent's budget, with a note. Children of a parent closed meanwhile are not created."""
        pending = [c for c in parent.children if c.status is None]
        if not pending:
            return parent
        now = self.clock()
        # what a slice that died after creating them made already (the parent then follows them whatever its state)
        created: dict[str, Order] = self.orders.store.get_many([c.order_id for c in pending])
        refused: dict[str, str] = {}
        for entry in pending:
            if entry.order_id in created:
                continue
            if parent.is_terminal:
                refused[entry.order_id] = f"child {entry.client_order_id} not sent: the parent is {parent.status}"
                continue
            try:
                created[entry.order_id], _ = self.orders.create(self._child_of_entry(parent, entry))
            except Conflict as exc:  # halted meanwhile: the parent stops at the next check
                refused[entry.order_id] = str(exc)
            except InvalidOrder as exc:  # the child does not fit its venue's rules: a note, not a failed task
                # (which would be retried into the same refusal)
                refused[entry.order_id] = f"child {entry.client_order_id} on {entry.venue} not sent: {exc}"

        def settle_spawn(p: Order) -> tuple[Order, list[OrderEvent]]:
            entries = tuple(c for c in p.children if c.order_id not in refused)
            notes = (*p.notes, *refused.values())[-MAX_NOTES:]
            p = replace(p, notes=notes, version=p.version + 1) if refused else p
            return fold_children(replace(p, children=entries), created, now)

        updated = self.orders.commit(parent.order_id, settle_spawn)
        if updated.status is S.CANCELED:  # cancelled while its children were being created
            for child in created.values():
                if not child.is_terminal:
                    self.orders.cancel(child.order_id, reason="parent cancelled")
        return updated

    @staticmethod
    def _child_of_entry(parent: Order, entry: ChildEntry) -> Order:
        return Order(
            order_id=entry.order_id, client_order_id=entry.client_order_id, strategy_id=parent.strategy_id,
            exchange=entry.venue, symbol=parent.symbol, side=parent.side, quantity=entry.quantity,
            order_type=entry.order_type, price=entry.price, time_in_force=entry.time_in_force,
            post_only=entry.post_only, created_at=entry.placed_at, updated_at=entry.placed_at,
            parent_id=parent.order_id, signal_id=parent.signal_id,
            tags={"parent": parent.order_id, "slice": str(entry.slice_index)},
        )

    def _market(self, parent: Order, needs: MarketNeeds, now: int) -> MarketSnapshot:
        """Books and terms (of every venue for the SmartRouter, else of the order's exchange), plus the volume
        the planner follows: traded since the previous slice, and the shape of recent volume."""
        if parent.exchange == SMART:
            return self.market.snapshot(parent.symbol)
        market = self.market.snapshot(parent.symbol, venues={parent.exchange})
        if needs.traded_volume:
            since = parent.last_slice_at or parent.created_at
            market = replace(market, traded_volume=self.market.traded_volume(parent.exchange, parent.symbol,
                                                                            since, now))
        if needs.profile_window_ms is not None:
            market = replace(market, volume_profile=self.market.volume_profile(
                parent.exchange, parent.symbol, parent.created_at, needs.profile_window_ms))
        return market

    @staticmethod
    def _view(parent: Order, arrival: Decimal | None) -> ParentView:
        """What the planner sees: filled and working from the parent's own folded state (children recorded but
        not yet created count as working in full)."""
        working = [c for c in parent.children if not c.ended]
        return ParentView(
            client_order_id=parent.client_order_id, side=parent.side, symbol=parent.symbol,
            quantity=parent.quantity, filled_quantity=parent.filled_quantity,
            working_quantity=parent_working(parent),
            limit_price=parent.price, start_ms=parent.created_at, end_ms=expiry_ms(parent),
            slice_index=parent.slices_done, arrival_mid=arrival, max_slippage_bps=parent.max_slippage_bps,
            planned_so_far=parent.schedule_planned or Decimal(0),
            venue=None if parent.exchange == SMART else parent.exchange,
            working_children=tuple(WorkingChild(c.client_order_id, c.price, c.working, c.placed_at)
                                   for c in working),
            params=parent.algorithm_params, time_in_force=parent.time_in_force,
            ended_children=frozenset(c.client_order_id for c in parent.children if c.ended),
        )

    def _fold_after_close(self, parent: Order) -> Order:
        """A closed parent keeps folding its children's last fills until every child is closed and settled; a
        child still working under a cancelled parent (created while the parent was being cancelled) is cancelled."""
        children = self._children_of(parent)
        if parent.status is S.CANCELED:
            for child in children.values():
                if not child.is_terminal and child.status is not S.PENDING_CANCEL:
                    self.orders.cancel(child.order_id, reason="parent cancelled")
        now = self.clock()
        updated = self.orders.commit(parent.order_id, lambda p: fold_children(p, children, now))
        if any(not (c.ended and c.settled) for c in updated.children):
            # each poll its own task name (a used Cloud Tasks name cannot be reused for about an hour)
            self.scheduler.slice(parent.order_id, updated.slices_done, COMPLETION_POLL_S, key=f"v{updated.version}")
        return updated

    @staticmethod
    def _record(parent: Order, children: dict[str, Order], spawn: tuple[ChildEntry, ...], decision: SliceDecision,
                arrival: Decimal | None, finished: bool, looked_at: int, now: int) -> tuple[Order, list[OrderEvent]]:
        events: list[OrderEvent] = []
        if parent.status is S.NEW:
            parent, e1 = parent.transition(S.PENDING_SUBMIT, now)
            parent, e2 = parent.transition(S.ACCEPTED, now)
            events += [e1, e2]
        parent, folded = fold_children(parent, children, now)
        events += folded
        known = {c.order_id for c in parent.children}
        notes = (*parent.notes, *decision.skipped)[-MAX_NOTES:]
        parent = _tca_facts(parent, decision)
        parent = replace(parent, children=(*parent.children, *(c for c in spawn if c.order_id not in known)),
                         slices_done=parent.slices_done + 1, next_slice_at=decision.next_at_ms,
                         last_slice_at=looked_at,
                         arrival_mid=parent.arrival_mid or arrival, notes=notes, version=parent.version + 1)
        if finished and not parent.is_terminal:
            unfilled = parent.quantity - parent.filled_quantity
            parent, event = parent.transition(S.CANCELED if parent.status is not S.FILLED else S.FILLED, now,
                                              reason=f"{parent.algorithm} finished with {unfilled} unfilled")
            events.append(event)
        return parent, events

    # ---- control (cancelling a parent is OrderService.cancel's: it stops the slices and cancels children) ------
    def pause(self, parent: Order, paused: bool) -> Order:
        if parent.is_terminal:
            raise Conflict(f"order is {parent.status.value}: nothing to pause or resume")
        updated = self.orders.commit(parent.order_id, lambda p: (replace(p, paused=paused, version=p.version + 1), []))
        if not paused:  # its own task name: the paused slice's task of this index has run
            self.scheduler.slice(parent.order_id, updated.slices_done, 0, key=f"v{updated.version}")
        return updated

    def progress(self, parent: Order) -> dict[str, Any]:
        """The parent's totals (its own folded state, as of its latest slice) and the children it still follows,
        each read fresh by id (no query: the parent's entries bound it). Retired children are counted; list
        them with GET /orders?parent_id=..."""
        fresh = self._children_of(parent)

        def row(entry: ChildEntry) -> dict[str, Any]:
            child = fresh.get(entry.order_id)
            if child is None:
                return {"order_id": entry.order_id, "client_order_id": entry.client_order_id,
                        "exchange": entry.venue, "slice": entry.slice_index, "created_at": entry.placed_at,
                        "status": "recorded", "quantity": entry.quantity, "price": entry.price,
                        "filled_quantity": Decimal(0), "average_price": None, "commission": Decimal(0)}
            return {"order_id": child.order_id, "client_order_id": child.client_order_id, "exchange": child.exchange,
                    "slice": entry.slice_index, "created_at": child.created_at, "status": child.status.value,
                    "quantity": child.quantity, "price": child.price, "filled_quantity": child.filled_quantity,
                    "average_price": child.average_price, "commission": child.commission}

        return {
            "algorithm": parent.algorithm,
            "filled_pct": (parent.filled_quantity / parent.quantity * 100).quantize(Decimal("0.01")),
            "slices_done": parent.slices_done, "next_slice_at": parent.next_slice_at, "paused": parent.paused,
            # the cumulative quantity the latest slice aimed to have done (TWAP, VWAP, POV; None for the others)
            "schedule_planned": parent.schedule_planned,
            "arrival_mid": parent.arrival_mid, "notes": list(parent.notes),
            "working_quantity": parent_working(parent), "retired_children": parent.retired_children,
            "children": [row(c) for c in parent.children],
        }


def _tca_facts(parent: Order, decision: SliceDecision) -> Order:
    """What TCA needs of a slice: filled now against what the previous slice planned to have done by now (the
    schedule deviation), the new plan, and the SmartRouter's first pre-trade estimates."""
    changes: dict[str, Any] = {}
    if decision.planned is not None:
        if parent.schedule_planned is not None:
            track = ScheduleTrack(parent.schedule_points, parent.schedule_gap_max, parent.schedule_gap_sq).step(
                parent.schedule_planned, parent.filled_quantity, parent.quantity)
            changes.update(schedule_points=track.points, schedule_gap_max=track.gap_max, schedule_gap_sq=track.gap_sq)
        changes["schedule_planned"] = decision.planned
    if decision.router is not None and parent.router_best_price is None and parent.router_consolidated_price is None:
        changes.update(router_best_price=decision.router[0], router_consolidated_price=decision.router[1])
    return replace(parent, **changes) if changes else parent
