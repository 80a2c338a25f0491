"""Order use cases: create, submit, sync, cancel, modify, read, list, and the reconciliation sweep.

Each loads state through the ports, asks the domain what changes, commits the change with its events in one
store transaction, then publishes the events and marks them published. A crash after the commit loses
nothing: the events wait in the order's outbox for the sweep (consumers may see a duplicate, never a gap).

Venue calls never happen inside a store transaction (a retried transaction must not call the venue twice).
Submission is idempotent by the order's deterministic client order id; after an unknown outcome the order is
looked up at the venue before anything is sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from shared.adapters.protocol import (
    ErrorCode,
    ErrorKind,
    FillsPage,
    PlaceOrder,
    PlaceResult,
    VenueCallError,
    VenueOrder,
)
from shared.adapters.protocol import OrderType as VenueOrderType
from shared.adapters.protocol import Side as VenueSide
from shared.adapters.protocol import TimeInForce as VenueTif
from shared.app.ports import EventPublisher, Metrics, OrderCache, OrderNotFound, OrderStore, Page, Scheduler
from shared.domain.algorithms.base import InvalidParams, parse_params
from shared.domain.orders import (
    Fill,
    IllegalTransition,
    InvalidOrder,
    Order,
    OrderEvent,
    OrderType,
    S,
    Status,
    TimeInForce,
    VenueReport,
    apply_venue_report,
    expiry_ms,
    replacement_client_order_id,
    validate,
    working_status,
)

logger = logging.getLogger(__name__)

NOT_FOUND_LIMIT = 3  # venue "unknown order" answers before an acknowledged order is flagged for attention
SYNC_BACKOFF_S = (0.5, 1, 2, 4, 8, 15, 30)  # then every 30 s
STUCK_NEW_MS = 10_000  # a NEW order this old lost its submission task: the sweep submits it again


class Venue(Protocol):
    def place(self, order: PlaceOrder) -> PlaceResult: ...

    def get(self, symbol: str, *, client_order_id: str | None = None,
            venue_order_id: str | None = None) -> VenueOrder: ...

    def cancel(self, symbol: str, *, client_order_id: str | None = None,
               venue_order_id: str | None = None) -> VenueOrder: ...

    def fills(self, symbol: str, since: str | None = None, limit: int = 500,
              venue_order_id: str | None = None) -> FillsPage: ...

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...


class Conflict(Exception):
    """The request cannot apply to the order as it is (HTTP 409)."""


class Halted(Conflict):
    """Trading is halted for the order's strategy (the dead man's switch fired)."""


def _flag(order: Order, reason: str, now: int) -> tuple[Order, list[OrderEvent]]:
    if order.attention:
        return order, []
    order, event = order.flagged(reason, now)
    return order, [event]


def _chain(first: tuple[Order, list[OrderEvent]],
           then: Callable[[Order], tuple[Order, list[OrderEvent]]]) -> tuple[Order, list[OrderEvent]]:
    order, events = first
    order, more = then(order)
    return order, events + more


def backoff_s(attempt: int) -> float:
    return SYNC_BACKOFF_S[min(attempt, len(SYNC_BACKOFF_S) - 1)]


def _fill(f: Any) -> Fill:
    return Fill(trade_id=f.trade_id, quantity=f.quantity, price=f.price, fee=f.fee, fee_currency=f.fee_currency,
                timestamp_ms=f.timestamp_ms, liquidity=f.liquidity)


def report_of(order: VenueOrder, fills: list[Any]) -> VenueReport:
    return VenueReport(status=order.status.value, venue_order_id=order.venue_order_id,
                       filled_quantity=order.filled_quantity, fills=tuple(_fill(f) for f in fills))


def placement(order: Order, client_order_id: str, quantity: Decimal) -> PlaceOrder:
    """What the venue is asked for. GTD and DAY go out as GTC: the service expires them itself."""
    tif = order.time_in_force.value if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) else "GTC"
    # A collared market order carries its collar as its price: it goes out as an IOC limit.
    kind = OrderType.LIMIT if order.order_type is OrderType.MARKET and order.price is not None else order.order_type
    return PlaceOrder(client_order_id=client_order_id, symbol=order.symbol, side=VenueSide(order.side.value),
                      type=VenueOrderType(kind.value), quantity=quantity, price=order.price,
                      stop_price=order.stop_price, time_in_force=VenueTif(tif), post_only=order.post_only,
                      reduce_only=order.reduce_only)


@dataclass
class OrderService:
    store: OrderStore
    cache: OrderCache
    events: EventPublisher
    scheduler: Scheduler
    venues: Mapping[str, Venue]
    metrics: Metrics
    clock: Callable[[], int]  # epoch milliseconds
    max_retries: int = 5
    execution_timeout_ms: int = 300_000
    halt_reason: Callable[[str], str | None] = lambda strategy_id: None  # the dead man's switch's verdict
    # (side, venue, symbol, max_slippage_bps) -> (IOC limit, mid now): market orders go out collared at it
    market_collar: Callable[[Any, str, str, Decimal | None], tuple[Decimal, Decimal] | None] | None = None
    # The venue's rules for an order (lot, tick, minimum/maximum quantity, minimum notional): the (field, problem)
    # pairs it breaks; an order that breaks any is refused at intake as InvalidOrder.
    venue_fit: Callable[[Order], list[tuple[str, str]]] = lambda order: []

    # ---- reading ---------------------------------------------------------------------------------------
    def get(self, order_id: str) -> Order:
        order = self.cache.get(order_id)
        if order is None:
            order = self.store.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            self.cache.put(order)
        return order

    def list(self, filters: dict[str, Any], limit: int, cursor: str | None) -> Page:
        return self.store.list(filters, limit, cursor)

    # ---- creating --------------------------------------------------------------------------------------
    def create(self, order: Order) -> tuple[Order, bool]:
        """Record a new order (or return the existing one with the same client order id) and schedule its
        submission. Raises InvalidOrder."""
        validate(order, venues=set(self.venues), now_ms=order.created_at)
        misfit = self.venue_fit(order)
        if misfit:
            raise InvalidOrder(misfit)
        if order.algorithm is not None:
            try:
                parse_params(order.algorithm, order.algorithm_params)
            except InvalidParams as exc:
                raise InvalidOrder(exc.problems) from None
        halted = self.halt_reason(order.strategy_id)
        if halted:
            raise Halted(f"trading is halted for strategy {order.strategy_id}: {halted}")
        existing = self.cache.get(order.order_id)
        if existing is None:
            stored, created = self.store.create(order, [order.created_event()])
            self.cache.put(stored)
            if created:
                # The `new` event waits in the outbox: submission (or the first slice) publishes it with its own,
                # in one batch, which keeps the answer fast and costs no write to mark it.
                self._start(stored)
                return stored, True
            existing = stored
        if existing.status is S.NEW:
            # A redelivery after a crash between create and schedule: schedule again (the same task name, so
            # production's Cloud Tasks drops the duplicate; submission is idempotent anyway).
            self._start(existing)
        return existing, False

    def _start(self, order: Order) -> None:
        if order.is_parent:
            self.scheduler.slice(order.order_id, slice_index=0, delay_s=0)
        else:
            self.scheduler.submit(order.order_id, attempt=0, delay_s=0)

    def children(self, parent_id: str) -> list[Order]:
        return self.store.list({"parent_id": parent_id}, limit=500, cursor=None).orders

    # ---- submitting ------------------------------------------------------------------------------------
    def submit(self, order_id: str, attempt: int = 0) -> Order:
        """Send a NEW order to its venue (idempotent: anything else is left alone)."""
        order = self.cache.get(order_id) or self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.status not in (S.NEW, S.PENDING_SUBMIT) or order.is_parent:
            return order
        venue = self.venues[order.exchange]
        arrival = None
        try:
            if order.order_type is OrderType.MARKET and self.market_collar is not None:
                collared = self.market_collar(order.side, order.exchange, order.symbol, order.max_slippage_bps)
                if collared is None:
                    reason = "no market data to bound a market order's slippage by"
                    return self.commit(order_id, lambda o: self._to(o, S.REJECTED, self.clock(), reason))
                limit, arrival = collared
                order = replace(order, price=limit, time_in_force=TimeInForce.IOC)  # sent as an IOC limit
            result = self._place_once(venue, order, look_up_first=attempt > 0 or order.status is S.PENDING_SUBMIT)
        except VenueCallError as err:
            return self._submit_failed(order, err, attempt)
        now = self.clock()
        report = report_of(result.order, result.fills)

        def change(current: Order) -> tuple[Order, list[OrderEvent]]:
            events: list[OrderEvent] = []
            if arrival is not None and current.arrival_mid is None:
                current = replace(current, arrival_mid=arrival)
            if current.status is S.NEW:
                current, event = current.transition(S.PENDING_SUBMIT, now)
                events.append(event)
            # Also for an order cancelled while we placed it: its fills at the venue are still counted, and
            # the venue order itself is cancelled below.
            current, more = apply_venue_report(current, report, now)
            return current, events + more

        updated = self.commit(order_id, change)
        if updated.status is S.CANCELED and result.order.status.value == "open":
            self._cancel_at_venue(updated, reason="cancelled before the venue acknowledged it")
        if updated.acknowledged_at:
            self.metrics.observe("submit_latency", (updated.acknowledged_at - updated.created_at) / 1000,
                                 venue=updated.exchange)
        if not updated.is_terminal:
            self.scheduler.sync(order_id, attempt=0, delay_s=backoff_s(0))
        return updated

    def _place_once(self, venue: Venue, order: Order, look_up_first: bool) -> PlaceResult:
        if look_up_first:
            try:
                existing = venue.get(order.symbol, client_order_id=order.venue_id)
                fills = venue.fills(order.symbol, venue_order_id=existing.venue_order_id).fills
                return PlaceResult(order=existing, created=False, fills=fills)
            except VenueCallError as err:
                if err.code is not ErrorCode.UNKNOWN_ORDER:
                    # Still unknown whether the first attempt reached the venue: never treat it as refused.
                    raise VenueCallError(err.venue, ErrorCode.TIMEOUT, f"lookup failed: {err.detail}") from err
        return venue.place(placement(order, order.venue_id, order.quantity))

    def _submit_failed(self, order: Order, err: VenueCallError, attempt: int) -> Order:
        now = self.clock()
        if err.kind is ErrorKind.FINAL:
            reason = f"venue refused: {err.code.value}: {err.detail}"
            return self.commit(order.order_id, lambda o: self._to(o, S.REJECTED, now, reason))
        if attempt + 1 > self.max_retries:
            reason = f"venue unreachable after {attempt + 1} attempts: {err.code.value}: {err.detail}"
            if err.kind is ErrorKind.UNKNOWN_OUTCOME or order.status is S.PENDING_SUBMIT:
                # It may be working at the venue: never call it rejected; a person must look.
                return self.commit(order.order_id, lambda o: _flag(o, reason, now))
            return self.commit(order.order_id, lambda o: self._to(o, S.REJECTED, now, reason))
        if err.kind is ErrorKind.UNKNOWN_OUTCOME:
            # Record that it may be at the venue; the next attempt looks it up before sending anything.
            order = self.commit(order.order_id, lambda o: self._to(o, S.PENDING_SUBMIT, now, str(err)))
        self.metrics.count("submit_retries", venue=order.exchange, code=err.code.value)
        self.scheduler.submit(order.order_id, attempt=attempt + 1, delay_s=backoff_s(attempt))
        return order

    @staticmethod
    def _to(order: Order, status: Status, now: int, reason: str) -> tuple[Order, list[OrderEvent]]:
        if order.status is status:
            return order, []
        if order.status is S.NEW and status not in (S.PENDING_SUBMIT, S.REJECTED, S.CANCELED, S.EXPIRED):
            order, first = order.transition(S.PENDING_SUBMIT, now)
            order, second = order.transition(status, now, reason=reason)
            return order, [first, second]
        order, event = order.transition(status, now, reason=reason)
        return order, [event]

    # ---- keeping in sync ---------------------------------------------------------------------------------
    def sync(self, order_id: str, attempt: int = 0) -> Order:
        """Poll the venue for one order; expire or time it out when due; reschedule until it is terminal."""
        order = self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.is_terminal or order.is_parent:
            return order  # a parent's slices keep it in step
        if order.status is S.NEW:
            return order  # submission owns it
        now = self.clock()
        due = expiry_ms(order)
        if due is not None and now >= due:
            order = self._cancel_at_venue(order, reason="expired (time in force)", final=S.EXPIRED, reschedule=False)
        elif due is None and now - order.created_at >= self.execution_timeout_ms:
            # EXECUTION_TIMEOUT bounds orders without an expiry of their own (GTD and DAY orders keep theirs).
            order = self._cancel_at_venue(order, reason="EXECUTION_TIMEOUT: working too long", reschedule=False)
        elif order.status is S.PENDING_CANCEL:
            order = self._cancel_at_venue(order, reason=order.reason or "canceled", reschedule=False)
        else:
            order = self._refresh(order)
        if not order.is_terminal:
            delay = backoff_s(attempt + 1)
            if due is not None and now < due:
                delay = min(delay, (due - now) / 1000)  # wake up at the expiry, not after it
            self.scheduler.sync(order_id, attempt=attempt + 1, delay_s=delay)
        return order

    def _refresh(self, order: Order) -> Order:
        venue = self.venues[order.exchange]
        now = self.clock()
        try:
            current = venue.get(order.symbol, client_order_id=order.venue_id)
            fills = venue.fills(order.symbol, venue_order_id=current.venue_order_id).fills
        except VenueCallError as err:
            if err.code is ErrorCode.UNKNOWN_ORDER:
                return self._not_found(order, now)
            logger.warning("sync of %s failed: %s", order.order_id, err)
            return order
        report = report_of(current, fills)
        return self.commit(order.order_id, lambda o: apply_venue_report(o, report, now))

    def _not_found(self, order: Order, now: int) -> Order:
        """The venue cannot find an order we sent: count it, and after a few answers flag it for a person
        (never mark it failed: it may be working at the venue)."""
        self.metrics.count("venue_not_found", venue=order.exchange)
        misses = self.cache.count_miss(order.order_id)
        if order.attention or (misses is not None and misses < NOT_FOUND_LIMIT):
            return order
        reason = "attention: the venue cannot find this order"
        return self.commit(order.order_id, lambda o: _flag(o, reason, now))

    # ---- cancelling --------------------------------------------------------------------------------------
    def cancel(self, order_id: str, reason: str = "canceled by request") -> Order:
        """Idempotent: a terminal order is returned as it is."""
        order = self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.is_terminal:
            return order
        now = self.clock()
        if order.is_parent:
            # Future slices see it terminal and stop; then every working child is cancelled.
            order = self.commit(order_id, lambda o: self._to(o, S.CANCELED, now, reason) if not o.is_terminal
                                 else (o, []))
            for child in self.children(order_id):
                if not child.is_terminal:
                    self.cancel(child.order_id, reason=f"parent cancelled: {reason}")
            return order
        if order.status is S.NEW:
            order = self.commit(order_id, lambda o: self._to(o, S.CANCELED, now, reason)
                                 if o.status is S.NEW else (o, []))
            if order.status is S.CANCELED or order.is_terminal:
                return order
            # Submission moved it on meanwhile: cancel it at the venue like any working order.
        return self._cancel_at_venue(order, reason)

    def _cancel_at_venue(self, order: Order, reason: str, final: Status = S.CANCELED,
                         reschedule: bool = True) -> Order:
        """Cancel at the venue and record how it ended. If the venue cannot be reached the order stays
        pending_cancel and the sync retries (`reschedule`: schedule that sync here; the sync task passes False
        as it reschedules itself)."""
        now = self.clock()
        if not order.is_terminal and order.status is not S.PENDING_CANCEL:
            order = self.commit(order.order_id, lambda o: self._to(o, S.PENDING_CANCEL, now, reason)
                                 if not o.is_terminal and o.status is not S.PENDING_CANCEL else (o, []))
            if order.is_terminal:
                return order
        venue = self.venues[order.exchange]
        try:
            answer = venue.cancel(order.symbol, client_order_id=order.venue_id)
            fills = venue.fills(order.symbol, venue_order_id=answer.venue_order_id).fills
        except VenueCallError as err:
            if err.code is ErrorCode.UNKNOWN_ORDER and not order.acknowledged_at:
                # Never reached the venue: nothing to cancel there.
                return self.commit(order.order_id, lambda o: self._to(o, final, now, reason)
                                    if not o.is_terminal else (o, []))
            if err.code is ErrorCode.UNKNOWN_ORDER:
                return self._not_found(order, now)
            logger.warning("cancel of %s failed (%s); the sync task retries", order.order_id, err)
            if reschedule:
                self.scheduler.sync(order.order_id, attempt=1, delay_s=backoff_s(1))
            return order
        report = report_of(answer, fills)
        if final is S.EXPIRED and answer.status.value == "canceled":
            report = replace(report, status="expired")
        later = self.clock()

        def change(current: Order) -> tuple[Order, list[OrderEvent]]:
            updated, events = apply_venue_report(current, report, later, reason=reason)
            if answer.status.value == "open" and updated.status is S.PENDING_CANCEL:
                refused = f"cancel refused by the venue: {reason}"
                updated, event = updated.transition(working_status(updated), later, reason=refused)
                events.append(event)
            return updated, events

        return self.commit(order.order_id, change)

    # ---- modifying ---------------------------------------------------------------------------------------
    def modify(self, order_id: str, *, price: Decimal | None, quantity: Decimal | None,
               stop_price: Decimal | None) -> Order:
        """Cancel/replace at the venue (no venue gets a native modify here): the new terms take effect on a new
        venue order with a deterministic id, for the quantity not yet filled."""
        order = self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.is_parent:
            raise Conflict("an algorithm's parent order cannot be modified: cancel it and send a new one")
        if order.status not in (S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED):
            raise Conflict(f"order is {order.status.value}: only a working order can be modified")
        terms = replace(order, price=price if price is not None else order.price,
                        quantity=quantity if quantity is not None else order.quantity,
                        stop_price=stop_price if stop_price is not None else order.stop_price)
        validate(terms)
        if terms.quantity <= order.filled_quantity:
            raise Conflict(f"quantity {terms.quantity} is not above the filled {order.filled_quantity}")
        if (terms.price, terms.quantity, terms.stop_price) == (order.price, order.quantity, order.stop_price):
            return order
        now = self.clock()
        order = self.commit(order_id, lambda o: self._to(o, S.PENDING_REPLACE, now, "modify requested")
                             if o.status in (S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED) else (o, []))
        if order.status is not S.PENDING_REPLACE:
            raise Conflict(f"order is {order.status.value}: only a working order can be modified")
        venue = self.venues[order.exchange]
        try:
            old = venue.cancel(order.symbol, client_order_id=order.venue_id)
            old_fills = venue.fills(order.symbol, venue_order_id=old.venue_order_id).fills
        except VenueCallError as err:
            failed = f"modify failed: {err}"
            self.commit(order_id, lambda o: self._back_to_work(o, failed, self.clock()))
            raise Conflict(f"the venue did not cancel the working order: {err.detail}") from err
        report = report_of(old, old_fills)
        if old.status.value == "open":  # the venue refused the cancel: placing a replacement would double up
            self.commit(order_id, lambda o: _chain(apply_venue_report(o, report, self.clock()),
                                                    lambda u: self._back_to_work(u, "modify refused: the venue "
                                                                                 "kept the order", self.clock())))
            raise Conflict("the venue refused to cancel the working order; it keeps its old terms")
        order = self.commit(order_id, lambda o: apply_venue_report(o, replace(report, status="open"), self.clock()))
        if old.status.value == "filled" or order.filled_quantity >= terms.quantity:
            order = self.commit(order_id, lambda o: apply_venue_report(o, report, self.clock(),
                                                                        reason="modify: already filled"))
            raise Conflict(f"the order was {order.status.value} with {order.filled_quantity} filled before "
                           f"it could be modified")
        replace_count = order.replace_count + 1
        new_id = replacement_client_order_id(order.client_order_id, replace_count)
        remaining = terms.quantity - order.filled_quantity
        try:
            placed = self._place_replacement(venue, terms, new_id, remaining)
        except VenueCallError as err:
            reason = f"replacement refused: {err.detail}; the original was cancelled"
            if err.kind is not ErrorKind.FINAL:
                reason = (f"attention: replacement {new_id} may be at the venue ({err.code.value}); "
                          f"the original was cancelled")
            self.commit(order_id, lambda o: self._to(o, S.CANCELED, self.clock(), reason))
            raise Conflict(reason) from err

        def change(current: Order) -> tuple[Order, list[OrderEvent]]:
            at = self.clock()
            current, event = current.transition(
                working_status(current), at, reason="modified", price=terms.price, quantity=terms.quantity,
                stop_price=terms.stop_price, venue_client_order_id=new_id,
                venue_order_id=placed.order.venue_order_id, replace_count=replace_count)
            current, more = apply_venue_report(current, report_of(placed.order, placed.fills), at)
            return current, [event, *more]

        updated = self.commit(order_id, change)
        if not updated.is_terminal:
            self.scheduler.sync(order_id, attempt=0, delay_s=backoff_s(0))
        return updated

    def _place_replacement(self, venue: Venue, terms: Order, new_id: str, quantity: Decimal) -> PlaceResult:
        """Place the replacement; after an unknown outcome, look it up once before giving up on it."""
        try:
            return venue.place(placement(terms, new_id, quantity))
        except VenueCallError as err:
            if err.kind is not ErrorKind.UNKNOWN_OUTCOME:
                raise
            found = venue.get(terms.symbol, client_order_id=new_id)  # raises unknown_order if it never arrived
            fills = venue.fills(terms.symbol, venue_order_id=found.venue_order_id).fills
            return PlaceResult(order=found, created=False, fills=fills)

    @staticmethod
    def _back_to_work(order: Order, reason: str, now: int) -> tuple[Order, list[OrderEvent]]:
        if order.status is not S.PENDING_REPLACE:
            return order, []
        order, event = order.transition(working_status(order), now, reason=reason)
        return order, [event]

    # ---- reconciliation ----------------------------------------------------------------------------------
    def sweep(self, limit: int = 1000) -> dict[str, Any]:
        """What the per-order tasks may have missed: unpublished events, NEW orders whose submission was lost,
        working orders out of step with their venue, and venue orders the record does not know."""
        now = self.clock()
        republished = 0
        for order, outbox in self.store.with_pending_events(limit):
            republished += self._publish(order.order_id, outbox)
        resubmitted, refreshed = 0, 0
        known: dict[str, set[str]] = {name: set() for name in self.venues}
        for order in self.store.open_orders(limit):
            known.setdefault(order.exchange, set()).add(order.venue_id)
            if order.is_parent:
                if order.paused or (order.next_slice_at or order.created_at) > now - STUCK_NEW_MS:
                    continue
                self.scheduler.slice(order.order_id, slice_index=order.slices_done, delay_s=0)  # a lost slice
                resubmitted += 1
            elif order.status is S.NEW:
                if now - order.created_at >= STUCK_NEW_MS:
                    self.scheduler.submit(order.order_id, attempt=1, delay_s=0)
                    resubmitted += 1
            else:
                self.sync(order.order_id, attempt=len(SYNC_BACKOFF_S))
                refreshed += 1
        unknown: list[dict[str, str]] = []
        for name, venue in self.venues.items():
            try:
                open_at_venue = venue.open_orders()
            except VenueCallError as err:
                logger.warning("sweep could not list open orders at %s: %s", name, err)
                continue
            for vo in open_at_venue:
                if vo.client_order_id not in known.get(name, set()):
                    unknown.append({"exchange": name, "client_order_id": vo.client_order_id,
                                    "venue_order_id": vo.venue_order_id, "symbol": vo.symbol})
        if unknown:
            logger.warning("venue orders unknown to the record: %s", unknown)
            self.metrics.count("unknown_venue_orders", len(unknown))
        return {"republished_events": republished, "resubmitted": resubmitted, "refreshed": refreshed,
                "unknown_venue_orders": unknown}

    # ---- commit and publish ------------------------------------------------------------------------------
    def commit(self, order_id: str, change: Callable[[Order], tuple[Order, list[OrderEvent]]]) -> Order:
        """One transaction; then publish what waits in the outbox. An illegal transition is refused and logged."""
        try:
            order, outbox = self.store.update(order_id, change)
        except IllegalTransition as exc:
            logger.error("refused: %s", exc, extra={"fields": {"order_id": order_id}})
            self.metrics.count("illegal_transitions")
            order = self.store.get(order_id)
            if order is None:
                raise OrderNotFound(order_id) from exc
            return order
        self.cache.put(order)
        self._publish(order_id, outbox)
        return order

    def _publish(self, order_id: str, outbox: list[dict[str, Any]]) -> int:
        """Publish the outbox in sequence; mark what went out. Returns how many events were published."""
        if not outbox:
            return 0
        done = self.events.publish_events(outbox)
        sent = outbox[:done]
        if sent:
            self.store.mark_published(order_id, sent)
        for event in sent:
            self.metrics.order_event(event["status"], event["exchange"], event["strategy_id"])
        return len(sent)
