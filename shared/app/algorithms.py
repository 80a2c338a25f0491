"""Parent orders driven by execution algorithms: one Cloud Task per slice, children through the normal order path.

A slice task ``slice-{order_id}-{n}`` runs ``run_slice``: it checks the parent first (terminal, paused, or a
slice already done: nothing to do, so a duplicated, late or retried task is harmless), folds the children's
fills into the parent, asks the planner (pure: parent view + market snapshot + time) what to do, cancels and
creates children (deterministic child client order ids, so a repeated slice makes no second child), records
the progress on the parent and schedules the next slice. The slice task is the parent's only writer, so the
parent never becomes a contention point for its children.
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
from shared.domain.algorithms import MarketNeeds, ParentView, SliceDecision, WorkingChild, planner_for
from shared.domain.market import MarketSnapshot
from shared.domain.orders import (
    SMART,
    S,
    Fill,
    InvalidOrder,
    Order,
    OrderEvent,
    OrderType,
    TimeInForce,
    expiry_ms,
    order_id_for,
)

logger = logging.getLogger(__name__)

COMPLETION_POLL_S = 1.0  # after the last slice, how often the parent checks its children until they finish
MAX_NOTES = 20


def child_fill(child: Order, f: Fill) -> Fill:
    """A child's fill as the parent counts it: trade ids are only unique per venue."""
    return replace(f, trade_id=f"{child.exchange}:{f.trade_id}")


@dataclass
class ParentOrders:
    orders: OrderService
    market: MarketData
    scheduler: Scheduler
    clock: Callable[[], int]

    # ---- one slice ---------------------------------------------------------------------------------------
    def run_slice(self, order_id: str, slice_index: int) -> Order:
        parent = self.orders.store.get(order_id)
        if parent is None:
            raise OrderNotFound(order_id)
        if parent.is_terminal:
            return self._fold_after_close(parent) if parent.status is S.CANCELED else parent
        if parent.paused or slice_index != parent.slices_done:
            return parent  # paused, or this slice ran already (a duplicate or late task)
        now = self.clock()
        children = self.orders.children(order_id)
        working = [c for c in children if not c.is_terminal]
        planner = planner_for(parent.algorithm or SMART, parent.algorithm_params)
        market = self._market(parent, planner.needs, now)
        arrival = parent.arrival_mid or market.mid()
        decision = planner.plan(self._view(parent, children, working, arrival), market, now)

        if decision.cancel:
            for cid in decision.cancel:
                try:
                    self.orders.cancel(order_id_for(parent.strategy_id, cid),
                                       reason=f"{parent.algorithm}: re-price/refresh")
                except OrderNotFound:
                    pass
            # Decide the children on fresh state: what the cancels closed is free to send now (a catch-up near the
            # deadline gets no second call); what they could not close yet still counts as working.
            children = self.orders.children(order_id)
            working = [c for c in children if not c.is_terminal]
            replanned = planner.plan(self._view(parent, children, working, arrival), market, now)
            decision = replace(replanned, cancel=decision.cancel,
                               skipped=tuple(dict.fromkeys((*decision.skipped, *replanned.skipped))))
        for intent in decision.children:
            child = Order(
                order_id=order_id_for(parent.strategy_id, intent.client_order_id), client_order_id=intent.client_order_id,
                strategy_id=parent.strategy_id, exchange=intent.venue, symbol=parent.symbol, side=intent.side,
                quantity=intent.quantity, order_type=OrderType(intent.order_type.value), price=intent.price,
                time_in_force=TimeInForce(intent.time_in_force.value), post_only=intent.post_only,
                created_at=now, updated_at=now, parent_id=parent.order_id, signal_id=parent.signal_id,
                tags={"parent": parent.order_id, "slice": str(intent.slice_index)},
            )
            try:
                self.orders.create(child)
            except Conflict as exc:  # halted meanwhile: the parent stops at the next check
                decision = replace(decision, skipped=(*decision.skipped, str(exc)))
            except InvalidOrder as exc:  # the child does not fit its venue's rules (checked at spawn): a note,
                # not a failed slice task (which would be retried into the same refusal)
                decision = replace(decision, skipped=(*decision.skipped,
                                                      f"child {intent.client_order_id} on {intent.venue} not sent: "
                                                      f"{exc}"))
        finished = decision.next_at_ms is None and not working and not decision.children
        updated = self.orders.commit(order_id, lambda p: self._record(p, children, decision, arrival, finished, now,
                                                                       self.clock()))
        if not updated.is_terminal:
            # relative to now, not to the slice's start: the slice's own work must not delay the next one
            delay = (COMPLETION_POLL_S if decision.next_at_ms is None
                     else max(0.0, (decision.next_at_ms - self.clock()) / 1000))
            self.scheduler.slice(order_id, updated.slices_done, delay)
        return updated

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
    def _view(parent: Order, children: list[Order], working: list[Order], arrival: Decimal | None) -> ParentView:
        return ParentView(
            client_order_id=parent.client_order_id, side=parent.side, symbol=parent.symbol,
            quantity=parent.quantity, filled_quantity=sum((c.filled_quantity for c in children), Decimal(0)),
            working_quantity=sum((c.remaining_quantity for c in working), Decimal(0)),
            limit_price=parent.price, start_ms=parent.created_at, end_ms=expiry_ms(parent),
            slice_index=parent.slices_done, arrival_mid=arrival, max_slippage_bps=parent.max_slippage_bps,
            venue=None if parent.exchange == SMART else parent.exchange,
            working_children=tuple(WorkingChild(c.client_order_id, c.price, c.remaining_quantity,
                                                c.submitted_at or c.created_at) for c in working),
            params=parent.algorithm_params, time_in_force=parent.time_in_force,
            ended_children=frozenset(c.client_order_id for c in children if c.is_terminal),
        )

    @staticmethod
    def _fold(parent: Order, children: list[Order], now: int) -> tuple[Order, list[OrderEvent]]:
        """The children's fills into the parent (each once, by trade id), also after the parent closed."""
        events: list[OrderEvent] = []
        for child in children:
            for f in child.fills:
                parent, more = parent.with_fill(child_fill(child, f), now)
                events += more
        return parent, events

    def _fold_after_close(self, parent: Order) -> Order:
        """A closed parent keeps folding its children's last fills until every child is closed too."""
        children = self.orders.children(parent.order_id)
        now = self.clock()
        updated = self.orders.commit(parent.order_id, lambda p: self._fold(p, children, now))
        if any(not c.is_terminal for c in children):
            self.scheduler.slice(parent.order_id, updated.slices_done, COMPLETION_POLL_S)
        return updated

    @staticmethod
    def _record(parent: Order, children: list[Order], decision: SliceDecision, arrival: Decimal | None,
                finished: bool, looked_at: int, now: int) -> tuple[Order, list[OrderEvent]]:
        events: list[OrderEvent] = []
        if parent.is_terminal:
            return parent, events
        if parent.status is S.NEW:
            parent, e1 = parent.transition(S.PENDING_SUBMIT, now)
            parent, e2 = parent.transition(S.ACCEPTED, now)
            events += [e1, e2]
        parent, folded = ParentOrders._fold(parent, children, now)
        events += folded
        notes = (*parent.notes, *decision.skipped)[-MAX_NOTES:]
        parent = replace(parent, slices_done=parent.slices_done + 1, next_slice_at=decision.next_at_ms,
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
        if not paused:
            self.scheduler.slice(parent.order_id, updated.slices_done, 0)
        return updated

    def progress(self, parent: Order) -> dict[str, Any]:
        children = self.orders.children(parent.order_id)
        filled = sum((c.filled_quantity for c in children), Decimal(0))
        return {
            "algorithm": parent.algorithm, "filled_pct": float(filled / parent.quantity * 100),
            "slices_done": parent.slices_done, "next_slice_at": parent.next_slice_at, "paused": parent.paused,
            "arrival_mid": parent.arrival_mid, "notes": list(parent.notes),
            "children": [{"order_id": c.order_id, "client_order_id": c.client_order_id, "exchange": c.exchange,
                          "slice": int(c.tags.get("slice", -1)), "created_at": c.created_at,
                          "status": c.status.value, "quantity": c.quantity, "price": c.price,
                          "filled_quantity": c.filled_quantity, "average_price": c.average_price,
                          "commission": c.commission} for c in children],
        }

