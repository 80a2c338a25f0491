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
import uuid
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
from shared.adapters.protocol import TimeInForce as VenueTif
from shared.app.ports import (
    Contended,
    EventPublisher,
    Metrics,
    OrderCache,
    OrderNotFound,
    OrderStore,
    Page,
    Scheduler,
)
from shared.domain.algorithms.base import InvalidParams, parse_params
from shared.domain.orders import (
    SMART,
    Fill,
    IllegalTransition,
    Intent,
    IntentKind,
    InvalidOrder,
    Leg,
    LegState,
    Order,
    OrderEvent,
    OrderType,
    S,
    Status,
    TimeInForce,
    VenueReport,
    apply_venue_report,
    differing_terms,
    expiry_ms,
    replacement_client_order_id,
    settle,
    validate,
    working_status,
)
from shared.domain.reconcile import Orphan, ReconcileTask, plan_sweep, shard_bounds, venue_keys
from shared.domain.tca import Quote

logger = logging.getLogger(__name__)

NOT_FOUND_LIMIT = 3  # venue "unknown order" answers before an acknowledged order is flagged for attention
SYNC_BACKOFF_S = (0.5, 1, 2, 4, 8, 15, 30)  # then every 30 s
STUCK_NEW_MS = 10_000  # a NEW order this old lost its submission task: the sweep submits it again
FILLS_PAGE = 500  # fills asked for per call; pages are followed to the end
# A placement whose answer was lost can reach the venue only within its validity window (Binance's recvWindow
# is 5 s; the adapter signs each request): once this long has passed since it was sent, a lookup that cannot
# find it is definitive, and only then may the same venue client id be sent again.
UNKNOWN_OUTCOME_HORIZON_MS = 30_000
INTENT_STALE_MS = 15_000  # an intent held this long lost its holder (crashed): another may take it over
LATE_FILL_CHECKS_S = (2, 10, 60)  # a closed order is re-read this long after it closed, for late fills
RECONCILE_PAGE = 200  # open orders read per page by a reconcile task (pages are followed to the end)
RECONCILE_BUDGET_MS = 30_000  # a reconcile task hands the rest of its shard to a follow-up task after this long
# TCA's touch reads never hold an order up for long: intake waits this long for the decision mid (the read
# overlaps intake's own checks), placement this long after the venue answered for the arrival touch.
DECISION_QUOTE_WAIT_S = 0.1
ARRIVAL_QUOTE_WAIT_S = 1.0
ORPHAN_LOOKUP_CHUNK = 300  # open venue orders looked up per budget check of the orphan search (10 queries)
ORPHAN_SCAN_MAX_SYMBOLS = 100  # above this many venue symbols, only those we are known to trade are scanned
SYNC_LEASE_MS = 60_000  # a sync chain promises its next task by its lease; extended (one write) when needed
SYNC_LEASE_GRACE_MS = 120_000  # a chain whose lease ran out this long ago is dead: another may start


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
    """The request cannot apply to the order as it is (HTTP 409). ``problems``: (field, issue) pairs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


# The record's reason when the venue's own cancel-all-after (the dead man's switch, account-wide) cancelled it.
VENUE_SWITCH_REASON = "canceled by the venue's cancel-all-after (dead man's switch, account-wide at the venue)"


class Halted(Conflict):
    """Trading is halted for the order's strategy (the dead man's switch fired)."""


def _flag(order: Order, reason: str, now: int) -> tuple[Order, list[OrderEvent]]:
    if order.attention == reason:
        return order, []
    order, event = order.flagged(reason, now)
    return order, [event]


def backoff_s(attempt: int) -> float:
    return SYNC_BACKOFF_S[min(attempt, len(SYNC_BACKOFF_S) - 1)]


def _fill(f: Any) -> Fill:
    return Fill(trade_id=f.trade_id, quantity=f.quantity, price=f.price, fee=f.fee, fee_currency=f.fee_currency,
                timestamp_ms=f.timestamp_ms, liquidity=f.liquidity, venue_order_id=f.venue_order_id)


def report_of(order: VenueOrder, fills: list[Any]) -> VenueReport:
    return VenueReport(status=order.status.value, venue_order_id=order.venue_order_id,
                       filled_quantity=order.filled_quantity, fills=tuple(_fill(f) for f in fills),
                       venue_client_id=order.client_order_id)


def placement(order: Order, client_order_id: str, quantity: Decimal) -> PlaceOrder:
    """What the venue is asked for. GTD and DAY go out as GTC: the service expires them itself."""
    tif = order.time_in_force.value if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) else "GTC"
    # A collared market order carries its collar as its price: it goes out as an IOC limit.
    kind = OrderType.LIMIT if order.order_type is OrderType.MARKET and order.price is not None else order.order_type
    return PlaceOrder(client_order_id=client_order_id, symbol=order.symbol, side=order.side,
                      type=kind, quantity=quantity, price=order.price,
                      stop_price=order.stop_price, time_in_force=VenueTif(tif), post_only=order.post_only,
                      reduce_only=order.reduce_only)


def all_fills(venue: Venue, symbol: str, venue_order_id: str | None) -> list[Any]:
    """Every fill of one venue order: pages are followed to the end (a page shorter than asked for, or one that
    brings nothing new, is the last)."""
    fills: list[Any] = []
    seen: set[str] = set()
    since: str | None = None
    while True:
        page = venue.fills(symbol, since=since, limit=FILLS_PAGE, venue_order_id=venue_order_id)
        new = [f for f in page.fills if f.trade_id not in seen]
        fills += new
        seen.update(f.trade_id for f in new)
        if len(page.fills) < FILLS_PAGE or not new or page.cursor in (None, since):
            return fills
        since = page.cursor



# How a rejection this module writes begins: the metric's reason label is read back from it (reject_reason).
REFUSED_BY_VENUE = "venue refused: "  # then the venue's error code, ":", its detail
UNREACHABLE = ("venue unreachable", "never reached the venue")
NO_MARKET_DATA = "no market data"


def reject_reason(reason: str | None) -> str:
    """A rejection's reason as a bounded metric label: the venue's error code when it refused (the reasons this
    module writes), ``unreachable``, ``no_market_data``, or ``venue_rejected`` (the venue reported it so)."""
    text = reason or ""
    if text.startswith(REFUSED_BY_VENUE):
        code = text.removeprefix(REFUSED_BY_VENUE).split(":", 1)[0]
        return code if code in _ERROR_CODES else "venue_refused"
    if text.startswith(UNREACHABLE):
        return "unreachable"
    if text.startswith(NO_MARKET_DATA):
        return "no_market_data"
    return "venue_rejected"


_ERROR_CODES = frozenset(code.value for code in ErrorCode)

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
    new_token: Callable[[], str] = lambda: uuid.uuid4().hex  # names the holder of an intent
    reconcile_shards: int = 16  # the sweep's fan-out: one reconcile task per venue and shard of the order ids
    venue_symbols: Callable[[str], list[str]] = lambda venue: []  # the symbols a venue lists (orphan search)
    # (venue, symbol) -> a getter of the venue's touch (bid, ask), read meanwhile: starts the read at once; the
    # getter waits at most `wait_s` and answers None without a touch (TCA then flags what it cannot compute).
    quote_ahead: Callable[[str, str, float], Callable[[], Quote | None]] = lambda venue, symbol, wait_s: lambda: None

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
        """Record a new order (or return the existing one with the same strategy and client order id) and
        schedule its submission. Raises InvalidOrder; a repeat with other terms raises Conflict naming them."""
        validate(order, venues=set(self.venues), now_ms=order.created_at)
        touch = self.quote_ahead(order.exchange, order.symbol, DECISION_QUOTE_WAIT_S) \
            if order.exchange != SMART else None  # read while intake checks the order
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
            quote = touch() if touch is not None else None
            if quote is not None:
                order = replace(order, decision_mid=quote.mid)
            stored, created = self.store.create(order, [order.created_event()])
            self.cache.put(stored)
            if created:
                # The `new` event waits in the outbox: submission (or the first slice) publishes it with its own,
                # in one batch, which keeps the answer fast and costs no write to mark it.
                self._start(stored)
                return stored, True
            existing = stored
        differ = differing_terms(existing, order)
        if differ:
            raise Conflict(f"client_order_id {order.client_order_id} of strategy {order.strategy_id} is already "
                           f"used by order {existing.order_id} with other terms",
                           [(name, f"{getattr(order, name)!s} differs from {getattr(existing, name)!s} on record")
                            for name in differ])
        if existing.status is S.NEW:
            # A redelivery after a crash between create and schedule: schedule again (the same task name, so
            # production's Cloud Tasks drops the duplicate; submission is idempotent anyway).
            self._start(existing)
        return existing, False

    def _start(self, order: Order) -> None:
        if order.is_parent:
            self.scheduler.slice(order.order_id, slice_index=0, delay_s=0)
        else:
            self.scheduler.submit(order.order_id, attempt=0, delay_s=0, venue=order.exchange)

    def children(self, parent_id: str) -> list[Order]:
        """Every child of a parent, paged to the end."""
        out: list[Order] = []
        cursor: str | None = None
        while True:
            page = self.store.list({"parent_id": parent_id}, limit=500, cursor=cursor)
            out += page.orders
            if not page.cursor:
                return out
            cursor = page.cursor

    # ---- intents: one owner per venue command ------------------------------------------------------------
    def _take(self, order_id: str, decide: Callable[[Order, str, int], tuple[Order, list[OrderEvent]] | None],
              ) -> tuple[Order, str | None]:
        """Record an intent: `decide(current, token, now)` returns the order carrying a new intent with `token`
        (and its events), or None to leave it. Returns the order and the token if this caller now holds it."""
        token = self.new_token()
        now = self.clock()

        def change(current: Order) -> tuple[Order, list[OrderEvent]]:
            decided = decide(current, token, now)
            return decided if decided is not None else (current, [])

        order = self.commit(order_id, change, publish=False)  # its events go out with the venue's answer
        held = order.intent is not None and order.intent.token == token
        return order, token if held else None

    def _take_over(self, order_id: str, intent: Intent, resend: bool = False) -> tuple[Order, str | None]:
        """Take over `intent` (its holder gave it up or died) unless someone changed it meanwhile. `resend`: its
        venue order is about to be sent again (the previous attempt definitely never arrived)."""
        def take(current: Order, token: str, at: int) -> tuple[Order, list[OrderEvent]] | None:
            if current.intent != intent:
                return None
            if resend:
                leg = current.leg(intent.venue_client_id) or Leg(intent.venue_client_id)
                current = current.with_leg(replace(leg, state=LegState.UNCONFIRMED, attempts=leg.attempts + 1))
            return replace(current, intent=replace(intent, token=token, since=at, attempt=intent.attempt + 1)), []

        return self._take(order_id, take)

    @staticmethod
    def _mine(order: Order, token: str) -> bool:
        return order.intent is not None and order.intent.token == token

    def _stale(self, intent: Intent, now: int) -> bool:
        return not intent.token or now - intent.since >= INTENT_STALE_MS

    # ---- submitting ------------------------------------------------------------------------------------
    def submit(self, order_id: str, attempt: int = 0) -> Order:
        """Send a NEW order to its venue, or resolve a placement in flight by looking it up. Idempotent: a
        duplicate task finds the intent and never places a second venue order."""
        order = self.store.get(order_id)  # decide on fresh state
        if order is None:
            raise OrderNotFound(order_id)
        if order.is_parent or order.is_terminal:
            return order
        if order.intent is not None:
            return self._drive(order, attempt)
        if order.status is not S.NEW and not (order.status in (S.PENDING_SUBMIT, S.PENDING_CANCEL)
                                              and not order.acknowledged_at and not order.live_legs):
            return order
        if order.status is S.PENDING_CANCEL:
            return self.commit(order_id, lambda o: self._close_unsent(o, S.CANCELED, o.reason or "canceled"))
        collar: tuple[Decimal, Decimal] | None = None
        if order.order_type is OrderType.MARKET and order.price is None and self.market_collar is not None:
            collar = self.market_collar(order.side, order.exchange, order.symbol, order.max_slippage_bps)
            if collar is None:
                reason = f"{NO_MARKET_DATA} to bound a market order's slippage by"
                return self.commit(order_id, lambda o: self._close_unsent(o, S.REJECTED, reason))

        def take(current: Order, token: str, now: int) -> tuple[Order, list[OrderEvent]] | None:
            if current.intent is not None or current.is_terminal or current.status not in (S.NEW, S.PENDING_SUBMIT):
                return None
            events: list[OrderEvent] = []
            if collar is not None:
                current = replace(current, arrival_mid=current.arrival_mid or collar[1])
            if current.status is S.NEW:
                current, event = current.transition(S.PENDING_SUBMIT, now)
                events.append(event)
            previous = current.leg(current.venue_id)
            # A market order goes out as an IOC limit at its collar: the collar is the intent's, the order's terms
            # stay as the client sent them (a retried request with the same terms is the same order).
            intent = Intent(IntentKind.PLACE, current.venue_id, token, now,
                            attempt=(previous.attempts if previous else 0),
                            price=collar[0] if collar is not None else None)
            current = current.with_leg(Leg(current.venue_id, LegState.UNCONFIRMED, attempts=intent.attempt + 1))
            return replace(current, intent=intent), events

        order, token = self._take(order_id, take)
        if token is None:
            return self._drive(order, attempt) if order.intent is not None else order
        return self._place(order, token, attempt)

    def _place(self, order: Order, token: str, attempt: int) -> Order:
        """The holder of a PLACE intent sends it and records the answer."""
        intent = order.intent
        assert intent is not None
        venue = self.venues[order.exchange]
        terms = order
        if order.order_type is OrderType.MARKET and intent.price is not None:
            terms = replace(order, price=intent.price, time_in_force=TimeInForce.IOC)
        touch = self.quote_ahead(order.exchange, order.symbol, ARRIVAL_QUOTE_WAIT_S) \
            if order.arrival_bid is None else None  # the touch as the order reaches the venue (for TCA)
        try:
            result = venue.place(placement(terms, intent.venue_client_id, order.quantity))
            fills = result.fills if result.created else all_fills(venue, order.symbol, result.order.venue_order_id)
        except VenueCallError as err:
            return self._place_failed(order, token, err, attempt)
        updated = self._record_answer(order.order_id, token, report_of(result.order, fills),
                                      arrival=touch() if touch is not None else None)
        return self._after_answer(updated, attempt)

    def _record_answer(self, order_id: str, token: str | None, report: VenueReport,
                       reason: str | None = None, arrival: Quote | None = None) -> Order:
        """Record a definitive venue answer about one leg; it completes the intent it answers (whoever holds it:
        the venue's word on a place ends the uncertainty). A cancel refused by the venue returns the order to
        work. Facts are always recorded, whoever asked."""
        now = self.clock()

        def change(current: Order) -> tuple[Order, list[OrderEvent]]:
            events: list[OrderEvent] = []
            intent = current.intent
            refused_cancel = False
            if intent is not None and intent.venue_client_id == report.venue_client_id and (
                    intent.kind is IntentKind.PLACE or (token is not None and intent.token == token)):
                refused_cancel = intent.kind is IntentKind.CANCEL and report.status == "open"
                current = replace(current, intent=None)
            if arrival is not None and current.arrival_bid is None:
                current = replace(current, arrival_bid=arrival.bid, arrival_ask=arrival.ask,
                                  arrival_mid=current.arrival_mid or arrival.mid)
            current, more = apply_venue_report(current, report, now, reason=reason)
            events += more
            if refused_cancel and current.status is S.PENDING_CANCEL:
                current, event = current.transition(working_status(current), now,
                                                    reason=f"cancel refused by the venue: {reason or 'canceled'}")
                events.append(event)
            return current, events

        return self.commit(order_id, change)

    def _after_answer(self, order: Order, attempt: int) -> Order:
        """What follows a venue answer: a cancel asked for meanwhile, the sync chain, the latency metric."""
        if order.acknowledged_at and order.submitted_at and attempt == 0:
            self.metrics.observe("submit_latency", (order.acknowledged_at - order.created_at) / 1000,
                                 venue=order.exchange)
            self.metrics.observe("venue_ack_latency", (order.acknowledged_at - order.submitted_at) / 1000,
                                 venue=order.exchange)
            logger.info("venue acknowledged", extra={"fields": {  # Cloud Monitoring's log-based latency metric
                "venue": order.exchange, "ack_latency_ms": order.acknowledged_at - order.submitted_at}})
        if order.status is S.PENDING_CANCEL and order.intent is None and order.live_legs:
            order = self._cancel_working(order, order.reason or "canceled")
        self._schedule_sync(order, 0)
        return order

    def _place_failed(self, order: Order, token: str, err: VenueCallError, attempt: int) -> Order:
        now = self.clock()
        if err.code is ErrorCode.DUPLICATE:
            # The venue already holds an order under this client id: it is there; look it up.
            order = self.commit(order.order_id, lambda o: self._release(o, token, str(err)))
            return self._drive(order, attempt) if order.intent is not None else order
        if err.kind is ErrorKind.FINAL:
            reason = f"{REFUSED_BY_VENUE}{err.code.value}: {err.detail}"
            return self.commit(order.order_id, lambda o: self._close_unsent(o, S.REJECTED, reason, token))
        if err.kind is ErrorKind.RETRYABLE:
            # Definitely not at the venue (refused before it arrived): the next attempt may place at once.
            if attempt + 1 > self.max_retries:
                reason = f"{UNREACHABLE[0]} after {attempt + 1} attempts: {err.code.value}: {err.detail}"
                return self.commit(order.order_id, lambda o: self._close_unsent(o, S.REJECTED, reason, token))
            final = S.CANCELED
            order = self.commit(order.order_id, lambda o: (
                self._close_unsent(o, final, o.reason or "canceled", token) if o.status is S.PENDING_CANCEL
                else self._release(o, token, str(err), unsent=True)))
        else:
            # Unknown outcome: it may be at the venue. Keep the intent (released): lookups resolve it.
            order = self.commit(order.order_id, lambda o: self._release(o, token, str(err)))
        self.metrics.count("submit_retries", venue=order.exchange, code=err.code.value)
        if not order.is_terminal:
            self.scheduler.submit(order.order_id, attempt=attempt + 1, delay_s=backoff_s(attempt), venue=order.exchange)
        return order

    @staticmethod
    def _release(order: Order, token: str, reason: str, unsent: bool = False) -> tuple[Order, list[OrderEvent]]:
        """The holder gives its intent up after a failed call: anyone may take it next (a PLACE is still looked
        up first). `unsent`: the venue certainly never got it, so the leg (and a PLACE intent) go."""
        if not OrderService._mine(order, token):
            return order, []
        intent = order.intent
        assert intent is not None
        if unsent and intent.kind is IntentKind.PLACE:
            leg = order.leg(intent.venue_client_id)
            order = replace(order, intent=None)
            if leg is not None:
                order = order.with_leg(replace(leg, state=LegState.UNSENT))
        elif unsent and intent.kind is IntentKind.REPLACE:
            leg = order.leg(intent.venue_client_id)
            order = replace(order, intent=replace(intent, token=""))
            if leg is not None:
                order = order.with_leg(replace(leg, state=LegState.UNSENT))
        else:
            order = replace(order, intent=replace(intent, token=""))
        return replace(order, reason=reason, version=order.version + 1), []

    def _close_unsent(self, order: Order, status: Status, reason: str,
                      token: str | None = None) -> tuple[Order, list[OrderEvent]]:
        """End an order (or its placement attempt) that certainly never reached the venue."""
        if order.is_terminal:
            return order, []
        if token is not None and not self._mine(order, token):
            return order, []
        intent = order.intent
        if intent is not None and intent.kind is IntentKind.PLACE:
            leg = order.leg(intent.venue_client_id)
            order = replace(order, intent=None)
            if leg is not None:
                order = order.with_leg(replace(leg, state=LegState.CLOSED, venue_status="rejected"))
        if order.live_legs or order.intent is not None:
            return order, []  # something of it may still be at the venue: not ours to close
        return self._to(order, status, self.clock(), reason)

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

    # ---- an intent found in flight -------------------------------------------------------------------------
    def _drive(self, order: Order, attempt: int = 0) -> Order:
        """Someone else's intent (or one whose holder gave it up or died). A placement is looked up, never sent
        again until the venue's answer is definitive; a cancel is idempotent at the venue and is sent again once
        its holder is gone."""
        intent = order.intent
        assert intent is not None
        now = self.clock()
        placing = intent.kind is IntentKind.PLACE or (intent.kind is IntentKind.REPLACE and intent.cancelled_old)
        if placing:
            return self._look_up_placement(order, attempt)
        if not self._stale(intent, now):
            return self._refresh(order)  # its holder is at work: only read

        order, token = self._take_over(order.order_id, intent)
        if token is None:
            return order
        if intent.kind is IntentKind.CANCEL:
            return self._cancel_step(order, token)
        return self._replace_step(order, token)

    def _look_up_placement(self, order: Order, attempt: int) -> Order:
        intent = order.intent
        assert intent is not None
        venue = self.venues[order.exchange]
        now = self.clock()
        leg = order.leg(intent.venue_client_id)
        if leg is not None and leg.state is LegState.UNSENT:
            return self._retake_placement(order, attempt)
        try:
            found = venue.get(order.symbol, client_order_id=intent.venue_client_id)
            fills = all_fills(venue, order.symbol, found.venue_order_id)
        except VenueCallError as err:
            if err.code is ErrorCode.UNKNOWN_ORDER:
                if now - intent.since >= UNKNOWN_OUTCOME_HORIZON_MS and (
                        not intent.token or now - intent.since >= INTENT_STALE_MS):
                    return self._retake_placement(order, attempt)
                # Not there yet: it may still arrive. Look again once it can no longer.
                wait_s = max(backoff_s(attempt), (intent.since + UNKNOWN_OUTCOME_HORIZON_MS - now) / 1000)
                self.scheduler.submit(order.order_id, attempt=attempt + 1, delay_s=wait_s, venue=order.exchange)
                return order
            self.metrics.count("submit_retries", venue=order.exchange, code=err.code.value)
            if attempt + 1 > self.max_retries:
                reason = f"attention: placement outcome unknown after {attempt + 1} lookups: {err.detail}"
                order = self.commit(order.order_id, lambda o: _flag(o, reason, now))
            self.scheduler.submit(order.order_id, attempt=attempt + 1, delay_s=backoff_s(attempt), venue=order.exchange)
            return order
        if intent.kind is IntentKind.REPLACE:
            return self._replacement_placed(order, None, found, fills)
        updated = self._record_answer(order.order_id, None, report_of(found, fills))
        return self._after_answer(updated, attempt)

    def _retake_placement(self, order: Order, attempt: int) -> Order:
        """The venue definitively does not have the placement: send it again under the same venue client id
        (it can no longer arrive twice), or give up when the attempts are used up."""
        intent = order.intent
        assert intent is not None
        if intent.attempt + 1 > self.max_retries:
            reason = f"{UNREACHABLE[1]} after {intent.attempt + 1} attempts"
            if intent.kind is IntentKind.PLACE:
                final = S.CANCELED if order.status is S.PENDING_CANCEL else S.REJECTED
                return self.commit(order.order_id, lambda o: self._close_unsent(o, final, reason)
                                   if o.intent == intent else (o, []))
            return self.commit(order.order_id, lambda o: self._end_replace(o, intent, f"replacement {reason}; "
                                                                           "the original was cancelled")
                               if o.intent == intent else (o, []))

        order, token = self._take_over(order.order_id, intent, resend=True)
        if token is None:
            return order
        if intent.kind is IntentKind.REPLACE:
            return self._place_replacement(order, token)
        if order.status is S.PENDING_CANCEL:
            return self.commit(order.order_id, lambda o: self._close_unsent(o, S.CANCELED, o.reason or "canceled",
                                                                             token))
        return self._place(order, token, attempt)

    # ---- keeping in sync ---------------------------------------------------------------------------------
    def sync(self, order_id: str, attempt: int = 0, chain: int | None = None) -> Order:
        """Poll the venue for one order; expire or time it out when due; drive a stalled intent.

        A task of the order's sync chain (`chain`, its generation) reschedules itself until the order is
        terminal, then re-reads it a few times for late fills; a task of any other generation is a no-op, so one
        order never has two live chains. A one-off check (`chain` None: the sweep, a user's action, a task from
        before chains existed) never reschedules itself; it only makes sure a chain watches the order."""
        order = self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if chain is not None and chain != order.sync_chain:
            return order  # a superseded chain's task
        if order.is_parent:
            return order  # a parent's slices keep it in step
        if order.status is S.NEW and order.intent is None:
            return order  # submission owns it
        if order.is_terminal:
            if attempt < 0 and order.legs:
                order = self._refresh(order, every_leg=True)  # a late check: every leg's fills again
            if chain is not None:
                self._chain_late_check(order, chain, -attempt if attempt < 0 else 0)
            return order
        now = self.clock()
        due = expiry_ms(order)
        overdue = self._overdue(order, now)
        if order.intent is not None:
            order = self._drive(order, attempt)
        elif overdue is not None:
            order = self._request_cancel(order, *overdue)
        elif order.status is S.PENDING_CANCEL:
            order = self._cancel_working(order, order.reason or "canceled")
        else:
            order = self._refresh(order)
        if chain is None:
            self._ensure_chain(order)
        elif order.is_terminal:
            self._chain_late_check(order, chain, 0)
        else:
            delay = backoff_s(attempt + 1)
            if due is not None and now < due:
                delay = min(delay, (due - now) / 1000)  # wake up at the expiry, not after it
            self._chain_next(order, chain, attempt + 1, delay)
        return order

    # ---- the one sync chain of an order --------------------------------------------------------------------
    @staticmethod
    def _chain_alive(order: Order, now: int) -> bool:
        return order.sync_chain > 0 and now <= order.sync_lease_until + SYNC_LEASE_GRACE_MS

    @staticmethod
    def _needs_watching(order: Order) -> bool:
        if order.is_parent or (order.status is S.NEW and order.intent is None):
            return False
        return not order.is_terminal or (bool(order.legs) and order.status is not S.FILLED)

    def _ensure_chain(self, order: Order, delay_s: float | None = None) -> bool:
        """Start the order's sync chain unless one is alive (fenced in a transaction: two callers at once start
        one chain). A terminal order's chain only re-reads it for late fills. Returns True if it started one."""
        now = self.clock()
        if self._chain_alive(order, now) or not self._needs_watching(order):
            return False
        started: list[Order] = []

        def start(current: Order) -> tuple[Order, list[OrderEvent]]:
            started.clear()
            if self._chain_alive(current, now) or not self._needs_watching(current):
                return current, []
            delay = LATE_FILL_CHECKS_S[0] if current.is_terminal else (backoff_s(0) if delay_s is None else delay_s)
            begun = replace(current, sync_chain=current.sync_chain + 1,
                            sync_lease_until=now + int(delay * 1000) + SYNC_LEASE_MS)
            started.append(begun)
            return begun, []

        self.commit(order.order_id, start)
        if not started:
            return False
        begun = started[0]
        if begun.is_terminal:
            self.scheduler.sync(begun.order_id, attempt=-1, delay_s=LATE_FILL_CHECKS_S[0], chain=begun.sync_chain)
        else:
            self.scheduler.sync(begun.order_id, attempt=0, delay_s=backoff_s(0) if delay_s is None else delay_s,
                                chain=begun.sync_chain)
        return True

    def _chain_next(self, order: Order, chain: int, attempt: int, delay_s: float) -> None:
        """The chain's next task; its lease is extended first when the task would run past it (so a chain
        costs one write about every SYNC_LEASE_MS, not one per poll)."""
        due = self.clock() + int(delay_s * 1000)
        if order.sync_lease_until < due:
            def extend(current: Order) -> tuple[Order, list[OrderEvent]]:
                if current.sync_chain != chain:
                    return current, []
                return replace(current, sync_lease_until=due + SYNC_LEASE_MS), []

            if self.commit(order.order_id, extend).sync_chain != chain:
                return  # superseded meanwhile
        self.scheduler.sync(order.order_id, attempt=attempt, delay_s=delay_s, chain=chain)

    def _chain_late_check(self, order: Order, chain: int, index: int) -> None:
        """A closed order is read again LATE_FILL_CHECKS_S after it closed (chain attempts -1, -2, ...): fills may
        still arrive for a cancelled, expired or rejected one (a filled one has all its quantity already)."""
        if index < len(LATE_FILL_CHECKS_S) and order.legs and order.status is not S.FILLED:
            self._chain_next(order, chain, -(index + 1), LATE_FILL_CHECKS_S[index])

    def _schedule_sync(self, order: Order, attempt: int) -> None:
        """Look at the order again soon: its chain, started if none is alive; else a one-off check (the live
        chain's next task may be far off). Never a second chain."""
        delay_s = backoff_s(attempt)
        if self._ensure_chain(order, delay_s):
            return
        if not order.is_terminal and self._needs_watching(order):
            self.scheduler.sync(order.order_id, attempt=attempt, delay_s=delay_s)

    def _overdue(self, order: Order, now: int) -> tuple[str, Status] | None:
        """Why a working order must be cancelled now, and how it then ends: its time in force ran out, or
        EXECUTION_TIMEOUT (which bounds orders without an expiry of their own)."""
        if order.status is S.PENDING_CANCEL:
            return None
        due = expiry_ms(order)
        if due is not None and now >= due:
            return "expired (time in force)", S.EXPIRED
        if due is None and now - order.created_at >= self.execution_timeout_ms:
            return "EXECUTION_TIMEOUT: working too long", S.CANCELED
        return None

    def _refresh(self, order: Order, every_leg: bool = False) -> Order:
        """Read each live (or lagging) leg at the venue and record what it says."""
        venue = self.venues[order.exchange]
        now = self.clock()
        lagging = order.fill_lag()
        legs = [leg for leg in order.legs if every_leg or leg.live or leg.venue_client_id in lagging]
        if not legs and not order.legs and order.status is not S.NEW:
            legs = [Leg(order.venue_id, LegState.UNCONFIRMED)]  # a record from before legs were kept
        for leg in legs:
            if leg.state is LegState.UNSENT:
                continue
            try:
                current = venue.get(order.symbol, client_order_id=leg.venue_client_id)
                fills = all_fills(venue, order.symbol, current.venue_order_id)
            except VenueCallError as err:
                if err.code is ErrorCode.UNKNOWN_ORDER and leg.state is LegState.OPEN:
                    order = self._not_found(order, now)
                elif err.code is not ErrorCode.UNKNOWN_ORDER:
                    logger.warning("sync of %s failed: %s", order.order_id, err)
                continue
            # a definitive answer completes a PLACE intent whoever holds it; other intents stay their holder's
            order = self._record_answer(order.order_id, None, report_of(current, fills),
                                        reason=VENUE_SWITCH_REASON if current.canceled_by else None)
        return order

    def _not_found(self, order: Order, now: int) -> Order:
        """The venue cannot find an order it acknowledged: count it, and after a few answers flag it for a person
        (never mark it failed: it may be working at the venue)."""
        self.metrics.count("venue_not_found", venue=order.exchange)
        misses = self.cache.count_miss(order.order_id)
        if order.attention or (misses is not None and misses < NOT_FOUND_LIMIT):
            return order
        reason = "attention: the venue cannot find this order"
        return self.commit(order.order_id, lambda o: _flag(o, reason, now))

    # ---- cancelling --------------------------------------------------------------------------------------
    def cancel(self, order_id: str, reason: str = "canceled by request") -> Order:
        """Idempotent: a terminal order is returned as it is. An order whose placement is in flight is marked
        pending_cancel and cancelled once the venue has answered for the placement (never assumed)."""
        order = self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.is_terminal:
            return order
        if order.is_parent:
            now = self.clock()
            # Future slices see it terminal and stop; then every working child is cancelled.
            order = self.commit(order_id, lambda o: self._to(o, S.CANCELED, now, reason) if not o.is_terminal
                                else (o, []))
            for child in self.children(order_id):
                if not child.is_terminal:
                    self.cancel(child.order_id, reason=f"parent cancelled: {reason}")
            # the slices fold the children's last fills into the closed parent until every child is closed
            self.scheduler.slice(order_id, slice_index=order.slices_done, delay_s=1, key="cancel")
            return order
        return self._request_cancel(order, reason)

    def _request_cancel(self, order: Order, reason: str, final: Status = S.CANCELED) -> Order:
        now = self.clock()

        def ask(current: Order) -> tuple[Order, list[OrderEvent]]:
            if current.is_terminal or current.status is S.PENDING_CANCEL:
                return current, []
            if current.status is S.NEW and current.intent is None and not current.live_legs:
                return self._to(current, final, now, reason)  # never sent: nothing to cancel at the venue
            return self._to(current, S.PENDING_CANCEL, now, reason)

        order = self.commit(order.order_id, ask)
        if order.is_terminal or order.intent is not None:
            if not order.is_terminal:
                self._schedule_sync(order, 0)
            return order  # the command in flight finishes first, then sees the cancel asked for
        return self._cancel_working(order, reason, final)

    def _cancel_working(self, order: Order, reason: str, final: Status = S.CANCELED) -> Order:
        """Take a CANCEL intent on the live leg and send it."""
        def take(current: Order, token: str, now: int) -> tuple[Order, list[OrderEvent]] | None:
            if current.intent is not None or current.is_terminal:
                return None
            live = current.live_legs
            if not live:
                if current.status is S.PENDING_CANCEL and not current.legs:
                    return self._to(current, final, now, reason)
                return None
            return replace(current, intent=Intent(IntentKind.CANCEL, live[-1].venue_client_id, token, now,
                                                  expire=final is S.EXPIRED)), []

        order, token = self._take(order.order_id, take)
        if token is None:
            if not order.is_terminal and order.intent is None and not order.live_legs and order.fill_lag():
                # Cancelled at the venue, but its trades list lagged the cancel's filled quantity: nothing is left
                # to cancel, only the fills to read again (which settles the order once they add up).
                order = self._refresh(order)
            if not order.is_terminal:
                self._schedule_sync(order, 1)
            return order
        return self._cancel_step(order, token)

    def _cancel_step(self, order: Order, token: str) -> Order:
        intent = order.intent
        assert intent is not None
        venue = self.venues[order.exchange]
        reason = order.reason or "canceled"
        try:
            answer = venue.cancel(order.symbol, client_order_id=intent.venue_client_id)
            fills = all_fills(venue, order.symbol, answer.venue_order_id)
        except VenueCallError as err:
            now = self.clock()
            if err.code is ErrorCode.UNKNOWN_ORDER:
                leg = order.leg(intent.venue_client_id)
                order = self.commit(order.order_id, lambda o: self._release(o, token, reason))
                if leg is not None and leg.state is LegState.OPEN:
                    return self._not_found(order, now)
                return order
            logger.warning("cancel of %s failed (%s); the sync task retries", order.order_id, err)
            order = self.commit(order.order_id, lambda o: self._release(o, token, reason))
            self._schedule_sync(order, 1)
            return order
        report = report_of(answer, fills)
        if intent.expire and answer.status.value == "canceled":
            report = replace(report, status="expired")
        order = self._record_answer(order.order_id, token, report, reason=reason)
        if not order.is_terminal:
            self._schedule_sync(order, 1)
        else:
            self._schedule_sync(order, 0)
        return order

    # ---- modifying ---------------------------------------------------------------------------------------
    def modify(self, order_id: str, *, price: Decimal | None, quantity: Decimal | None,
               stop_price: Decimal | None) -> Order:
        """Cancel/replace at the venue (no venue gets a native modify here): the new terms take effect on a new
        venue order with a deterministic id, for the quantity not yet filled. The replacement is part of the
        order (a leg) from the moment its intent is recorded, whatever happens to the original."""
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
        misfit = self.venue_fit(terms)
        if misfit:
            raise InvalidOrder(misfit)
        if terms.quantity <= order.filled_quantity:
            raise Conflict(f"quantity {terms.quantity} is not above the filled {order.filled_quantity}")
        if (terms.price, terms.quantity, terms.stop_price) == (order.price, order.quantity, order.stop_price):
            return order

        def take(current: Order, token: str, now: int) -> tuple[Order, list[OrderEvent]] | None:
            if current.intent is not None or current.status not in (S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED):
                return None
            count = current.replace_count + 1
            new_id = replacement_client_order_id(current.legs[0].venue_client_id if current.legs
                                                 else current.venue_id, count)
            current, event = current.transition(S.PENDING_REPLACE, now, reason="modify requested",
                                                replace_count=count)
            intent = Intent(IntentKind.REPLACE, new_id, token, now, replaces=current.venue_id,
                            price=terms.price, quantity=terms.quantity, stop_price=terms.stop_price)
            return replace(current.with_leg(Leg(new_id)), intent=intent), [event]

        order, token = self._take(order_id, take)
        if token is None:
            raise Conflict(f"order is {order.status.value}" + (" with a venue command in flight"
                                                               if order.intent else "") +
                           ": only a working order can be modified")
        return self._replace_step(order, token, raise_conflicts=True)

    def _replace_step(self, order: Order, token: str, raise_conflicts: bool = False) -> Order:
        """Phase 1 of a REPLACE: cancel the original; once the venue has closed it, place the replacement."""
        intent = order.intent
        assert intent is not None and intent.replaces is not None
        if intent.cancelled_old:
            return self._place_replacement(order, token, raise_conflicts)
        venue = self.venues[order.exchange]
        try:
            old = venue.cancel(order.symbol, client_order_id=intent.replaces)
            old_fills = all_fills(venue, order.symbol, old.venue_order_id)
        except VenueCallError as err:
            order = self.commit(order.order_id, lambda o: self._release(o, token, f"modify: {err}"))
            self._schedule_sync(order, 1)
            return order  # still pending_replace: the sync completes it (the API answers 202)
        report = report_of(old, old_fills)
        now = self.clock()

        def after_cancel(current: Order) -> tuple[Order, list[OrderEvent]]:
            if not self._mine(current, token):
                return apply_venue_report(current, report, now)
            if report.status == "open":  # refused: placing a replacement would double up
                current = replace(current, intent=None,
                                  legs=tuple(leg for leg in current.legs if leg.venue_client_id != intent.venue_client_id))
                current, events = apply_venue_report(current, report, now)
                if current.status is S.PENDING_CANCEL:  # a cancel asked for meanwhile stays asked for
                    return current, events
                back, event = current.transition(working_status(current), now,
                                                 reason="modify refused: the venue kept the order")
                return back, [*events, event]
            closed = replace(current, intent=replace(intent, cancelled_old=True))
            closed, events = apply_venue_report(closed, report, now)
            wanted = intent.quantity or closed.quantity
            if closed.status is S.PENDING_CANCEL or report.status == "filled" or closed.filled_quantity >= wanted:
                why = ("cancel requested during modify" if closed.status is S.PENDING_CANCEL
                       else "modify: already filled")
                ended, more = self._end_replace(closed, closed.intent, why)
                return ended, events + more
            leg = closed.leg(intent.venue_client_id) or Leg(intent.venue_client_id)
            return closed.with_leg(replace(leg, state=LegState.UNCONFIRMED, attempts=leg.attempts + 1)), events

        order = self.commit(order.order_id, after_cancel)
        if order.status is S.PENDING_CANCEL and order.intent is None and order.live_legs:
            order = self._cancel_working(order, order.reason or "canceled")  # the cancel asked for during it
        if not self._mine(order, token):
            if raise_conflicts and report.status == "open":
                raise Conflict("the venue refused to cancel the working order; it keeps its old terms")
            if raise_conflicts and order.is_terminal:
                raise Conflict(f"the order was {order.status.value} with {order.filled_quantity} filled before "
                               f"it could be modified")
            self._schedule_sync(order, 0)
            return order
        return self._place_replacement(order, token, raise_conflicts)

    def _end_replace(self, order: Order, intent: Intent | None, reason: str) -> tuple[Order, list[OrderEvent]]:
        """A replace that will place nothing (more): its unsent replacement leg goes, and the order settles on
        what the venue said of its legs."""
        if intent is None:
            return order, []
        legs = tuple(leg for leg in order.legs
                     if not (leg.venue_client_id == intent.venue_client_id and leg.state is not LegState.OPEN
                             and leg.venue_status is None))
        order = replace(order, intent=None, legs=legs)
        return settle(order, self.clock(), reason)

    def _place_replacement(self, order: Order, token: str, raise_conflicts: bool = False) -> Order:
        """Phase 2 of a REPLACE: the original is closed at the venue; send the replacement for what is left."""
        intent = order.intent
        assert intent is not None
        venue = self.venues[order.exchange]
        terms = replace(order, price=intent.price, quantity=intent.quantity or order.quantity,
                        stop_price=intent.stop_price)
        remaining = terms.quantity - order.filled_quantity
        try:
            placed = venue.place(placement(terms, intent.venue_client_id, remaining))
            fills = placed.fills if placed.created else all_fills(venue, order.symbol, placed.order.venue_order_id)
        except VenueCallError as err:
            if err.kind is ErrorKind.FINAL:
                reason = f"replacement refused: {err.detail}; the original was cancelled"
                now = self.clock()

                def refused(current: Order) -> tuple[Order, list[OrderEvent]]:
                    if not self._mine(current, token):
                        return current, []
                    leg = current.leg(intent.venue_client_id)
                    if leg is not None:
                        current = current.with_leg(replace(leg, state=LegState.CLOSED, venue_status="rejected"))
                    current = replace(current, intent=None)
                    if current.is_terminal:
                        return current, []
                    return settle(current, now, reason)

                order = self.commit(order.order_id, refused)
                if raise_conflicts:
                    raise Conflict(reason) from err
                return order
            unsent = err.kind is ErrorKind.RETRYABLE
            order = self.commit(order.order_id, lambda o: self._release(o, token, f"replacement: {err}", unsent))
            self._schedule_sync(order, 1)
            return order
        return self._replacement_placed(order, token, placed.order, fills)

    def _replacement_placed(self, order: Order, token: str | None, placed: VenueOrder, fills: list[Any]) -> Order:
        intent = order.intent
        assert intent is not None
        report = report_of(placed, fills)

        def change(current: Order) -> tuple[Order, list[OrderEvent]]:
            at = self.clock()
            if current.intent is None or current.intent.venue_client_id != intent.venue_client_id:
                return apply_venue_report(current, report, at)  # someone else completed it: facts only
            events: list[OrderEvent] = []
            current = replace(current, intent=None, price=intent.price, quantity=intent.quantity or current.quantity,
                              stop_price=intent.stop_price, venue_client_order_id=intent.venue_client_id,
                              venue_order_id=placed.venue_order_id)
            if current.status is S.PENDING_REPLACE:
                current, event = current.transition(working_status(current), at, reason="modified")
                events.append(event)
            current, more = apply_venue_report(current, report, at)
            return current, events + more

        updated = self.commit(order.order_id, change)
        if updated.status is S.PENDING_CANCEL and updated.intent is None and updated.live_legs:
            updated = self._cancel_working(updated, updated.reason or "canceled")
        self._schedule_sync(updated, 0)
        return updated

    # ---- reconciliation ----------------------------------------------------------------------------------
    def sweep(self) -> dict[str, Any]:
        """The periodic reconciliation, fanned out. This call itself only publishes leftover outboxes and enqueues
        the run's reconcile tasks (shared/domain/reconcile.py): one per venue and shard of the order ids (the
        SmartRouter's parents, exchange "smart", are a venue of their own here), and one orphan search per venue.
        Task names carry the run (the sweep's minute), so a duplicated sweep delivery makes no second set."""
        now = self.clock()
        run = now // 60_000
        counts = {"republished_events": 0, "failed": 0, "tasks": 0}
        for order, outbox in self.store.with_pending_events():
            try:
                counts["republished_events"] += self._publish(order.order_id, outbox)
            except Exception:  # noqa: BLE001 (one contended order must not stop the sweep)
                logger.exception("sweep could not publish the events of %s", order.order_id)
                counts["failed"] += 1
        for task in plan_sweep([*self.venues, SMART], self.reconcile_shards, run, orphan_venues=self.venues):
            try:
                self.scheduler.reconcile(task)
                counts["tasks"] += 1
            except Exception:  # noqa: BLE001 (the others still go out; the next run names its own)
                logger.exception("sweep could not enqueue %s", task.name)
                counts["failed"] += 1
        return {**counts, "run": run, "shards": self.reconcile_shards}

    def reconcile(self, task: ReconcileTask) -> dict[str, Any]:
        """One task of the sweep's fan-out: a venue's shard of open orders, or a venue's orphan search."""
        if task.kind == "orphans":
            return self.find_orphans(task.venue, task)
        return self.reconcile_shard(task)

    def reconcile_shard(self, task: ReconcileTask) -> dict[str, Any]:
        """Every open order of `task.venue` in the task's shard, paged from its cursor to the end: the venue's open
        orders are listed once per task (lazily: not at all for an empty shard) and compared; only orders out of
        step are read one by one (a one-off check: no second sync chain). One order failing never stops the
        others. Past RECONCILE_BUDGET_MS the rest goes to a follow-up task that starts at the cursor."""
        started = self.clock()
        low, high = shard_bounds(task.shard, task.shards)
        counts = {"resubmitted": 0, "refreshed": 0, "in_step": 0, "open_orders": 0, "failed": 0}
        listed: dict[str, VenueOrder] | None = None
        listing_done = task.venue not in self.venues  # smart parents: nothing to list
        cursor = task.cursor
        result: dict[str, Any] = {"venue": task.venue, "shard": task.shard, "shards": task.shards,
                                  "run": task.run, "part": task.part}
        while True:
            page = self.store.open_orders_page(task.venue, low, high, cursor, RECONCILE_PAGE)
            if page.orders and not listing_done:
                listed = self._listing(task.venue)
                listing_done = True
            for order in page.orders:
                if self.clock() - started >= RECONCILE_BUDGET_MS and cursor is not None:
                    follow = task.follow_up(cursor)
                    self.scheduler.reconcile(follow)
                    logger.warning("reconcile %s ran out of time after %d orders; %s carries on from %s",
                                   task.name, counts["open_orders"], follow.name, cursor)
                    self._count_reconciled(task.venue, counts)
                    return {**result, **counts, "continued_from": cursor}
                counts["open_orders"] += 1
                try:
                    outcome = self._reconcile(order, listed, self.clock())
                except Exception:  # noqa: BLE001
                    logger.exception("reconcile could not check %s", order.order_id)
                    counts["failed"] += 1
                    outcome = None
                if outcome is not None:
                    counts[outcome] += 1
                cursor = order.order_id
            if page.cursor is None:
                self._count_reconciled(task.venue, counts)
                return {**result, **counts, "continued_from": None}
            cursor = page.cursor

    def _count_reconciled(self, venue: str, counts: dict[str, int]) -> None:
        for outcome in ("resubmitted", "refreshed", "in_step", "failed"):
            if counts[outcome]:
                self.metrics.count("reconciled_orders", counts[outcome], venue=venue, outcome=outcome)

    def _listing(self, name: str) -> dict[str, VenueOrder] | None:
        try:
            return {vo.client_order_id: vo for vo in self.venues[name].open_orders()}
        except VenueCallError as err:
            logger.warning("reconcile could not list open orders at %s (every order is read instead): %s",
                           name, err)
            return None

    def _reconcile(self, order: Order, listed: dict[str, VenueOrder] | None, now: int) -> str:
        if order.is_parent:
            if order.paused or (order.next_slice_at or order.created_at) > now - STUCK_NEW_MS:
                return "in_step"
            # a lost slice, under a name of this sweep's minute (the index's own name may be used already)
            self.scheduler.slice(order.order_id, slice_index=order.slices_done, delay_s=0, key=f"sweep{now // 60_000}")
            return "resubmitted"
        if order.status is S.NEW and order.intent is None:
            if now - order.created_at < STUCK_NEW_MS:
                return "in_step"
            # its submission was lost: again, under a name of this sweep's minute (attempt 1's may be used already)
            self.scheduler.submit(order.order_id, attempt=1, delay_s=0, key=f"sweep{now // 60_000}",
                                  venue=order.exchange)
            return "resubmitted"
        if order.intent is not None:
            if order.intent.token and now - order.intent.since < INTENT_STALE_MS:
                return "in_step"  # its holder is at work
            order = self._drive(order, attempt=1)
            self._ensure_chain(order)
            return "refreshed"
        overdue = self._overdue(order, now)
        if overdue is not None:
            self._request_cancel(order, *overdue)
            return "refreshed"
        if listed is not None and order.status is not S.PENDING_CANCEL and not order.fill_lag():
            live = order.live_legs
            views = [listed.get(leg.venue_client_id) for leg in live]
            if live and all(v is not None and v.filled_quantity == leg.venue_filled for v, leg in zip(views, live)):
                self._ensure_chain(order)  # a chain that died is replaced (a live one is left alone)
                return "in_step"  # open at the venue as recorded, nothing new filled
        order = self._refresh(order)
        self._ensure_chain(order)
        return "refreshed"

    def find_orphans(self, name: str, task: ReconcileTask | None = None) -> dict[str, Any]:
        """Every venue order of venue `name` that belongs to no record: open ones (the venue's open orders) and
        ones that already traded (the account's trades since each symbol's watermark, paged to the end, mapped
        to records by venue order id, else by client order id, which a record holds from before its venue call).
        Each is logged (a structured warning), counted (``orphan_venue_orders``) and returned.

        The open orders not held by an open record are looked up in key order from the task's cursor; past
        RECONCILE_BUDGET_MS the rest goes to a follow-up task (thousands of lookups must not outlive the queue's
        dispatch deadline, or the queue delivers the task again while it still runs). The account's trades are
        scanned by the part that finishes the open orders."""
        started = self.clock()
        venue = self.venues[name]
        orphans: dict[str, Orphan] = {}
        try:
            listing = venue.open_orders()
        except VenueCallError as err:
            logger.warning("orphan search could not list open orders at %s: %s", name, err)
            listing = None
        by_key: dict[str, list[VenueOrder]] = {}
        for vo in listing or []:
            by_key.setdefault(venue_keys(name, [vo.client_order_id], [])[0], []).append(vo)
        # Most open venue orders belong to open records: one paged scan of those (the reads the shard tasks make
        # too) leaves the few candidates to look up by key, each lookup a query over every record.
        open_keys = self.store.open_venue_keys(name) if by_key else set()
        cursor = task.cursor if task is not None else None
        keys = [k for k in sorted(by_key) if k not in open_keys and (cursor is None or k > cursor)]
        for i in range(0, len(keys), ORPHAN_LOOKUP_CHUNK):
            if i and task is not None and self.clock() - started >= RECONCILE_BUDGET_MS:
                follow = task.follow_up(keys[i - 1])
                self.scheduler.reconcile(follow)
                logger.warning("orphan search %s ran out of time after %d open orders; %s carries on", task.name,
                               i, follow.name)
                self._report_orphans(name, orphans)
                return {"venue": name, "orphan_venue_orders": [o.as_dict() for o in orphans.values()],
                        "continued_from": keys[i - 1]}
            chunk = keys[i:i + ORPHAN_LOOKUP_CHUNK]
            known = self.store.known_venue_keys(chunk)
            for key in chunk:
                if key not in known:
                    for vo in by_key[key]:
                        orphans[vo.venue_order_id] = Orphan(name, vo.venue_order_id, vo.client_order_id, vo.symbol,
                                                            vo.status.value)
        marks = self.store.watermark(f"trades-{name}")
        cursors: dict[str, str] = dict(marks.get("cursors") or {})
        symbols = set(cursors) | {vo.symbol for vo in listing or []}
        listed_symbols = self.venue_symbols(name)
        bounded = len(listed_symbols) > ORPHAN_SCAN_MAX_SYMBOLS
        if bounded:
            logger.warning("orphan search at %s: the venue lists %d symbols, over ORPHAN_SCAN_MAX_SYMBOLS (%d): "
                           "only the %d symbols with open orders or a trades watermark are scanned", name,
                           len(listed_symbols), ORPHAN_SCAN_MAX_SYMBOLS, len(symbols))
        else:
            symbols |= set(listed_symbols)
        scanned = 0
        unreadable: list[str] = []
        for symbol in sorted(symbols):
            try:
                trades, cursor = self._trades_since(venue, symbol, cursors.get(symbol))
            except VenueCallError as err:
                logger.warning("orphan search could not read %s trades at %s: %s", symbol, name, err)
                unreadable.append(symbol)
                continue
            scanned += len(trades)
            self._orphan_trades(name, venue, symbol, trades, orphans)
            if cursor is not None:
                cursors[symbol] = cursor
        if cursors != (marks.get("cursors") or {}):
            self.store.save_watermark(f"trades-{name}", {**marks, "cursors": cursors})
        self._report_orphans(name, orphans)
        return {"venue": name, "orphan_venue_orders": [o.as_dict() for o in orphans.values()],
                "trades_scanned": scanned, "symbols": sorted(symbols), "symbols_bounded": bounded,
                "unreadable_symbols": unreadable, "continued_from": None}

    def _report_orphans(self, name: str, orphans: Mapping[str, Orphan]) -> None:
        for orphan in orphans.values():
            logger.warning("venue order belongs to no record: %s %s (%s)", name, orphan.venue_order_id,
                           orphan.status, extra={"fields": {"orphan": orphan.as_dict()}})
            self.metrics.count("orphan_venue_orders", venue=name, status=orphan.status)

    @staticmethod
    def _trades_since(venue: Venue, symbol: str, since: str | None) -> tuple[list[Any], str | None]:
        """The account's trades of `symbol` after the cursor, to the end (as all_fills), and the new cursor."""
        trades: list[Any] = []
        seen: set[str] = set()
        while True:
            page = venue.fills(symbol, since=since, limit=FILLS_PAGE)
            new = [f for f in page.fills if f.trade_id not in seen]
            trades += new
            seen.update(f.trade_id for f in new)
            cursor = page.cursor or since
            if len(page.fills) < FILLS_PAGE or not new or cursor in (None, since):
                return trades, cursor
            since = cursor

    def _orphan_trades(self, name: str, venue: Venue, symbol: str, trades: list[Any],
                       orphans: dict[str, Orphan]) -> None:
        by_order: dict[str, list[Any]] = {}
        for t in trades:
            by_order.setdefault(t.venue_order_id, []).append(t)
        keys = {vid: venue_keys(name, [t.client_order_id for t in ts if t.client_order_id], [vid])
                for vid, ts in by_order.items()}
        known = self.store.known_venue_keys(sorted({k for ks in keys.values() for k in ks})) if keys else set()
        unknown = [vid for vid, ks in keys.items() if not set(ks) & known]
        # The record may not know the venue order id yet (its answer was lost): ask the venue for the client id.
        asked: dict[str, VenueOrder | None] = {}
        for vid in unknown:
            try:
                asked[vid] = venue.get(symbol, venue_order_id=vid)
            except VenueCallError as err:
                logger.warning("orphan search could not look up venue order %s at %s: %s", vid, name, err)
                asked[vid] = None
        by_client = {vid: venue_keys(name, [vo.client_order_id], [])[0] for vid, vo in asked.items() if vo}
        known_clients = self.store.known_venue_keys(sorted(set(by_client.values()))) if by_client else set()
        for vid in unknown:
            vo = asked[vid]
            if vo is not None and by_client[vid] in known_clients:
                continue
            if vid in orphans:
                orphans[vid] = replace(orphans[vid], trades=len(by_order[vid]))
                continue
            orphans[vid] = Orphan(name, vid, vo.client_order_id if vo else by_order[vid][0].client_order_id,
                                  symbol, vo.status.value if vo else "traded", len(by_order[vid]))

    # ---- commit and publish ------------------------------------------------------------------------------
    def commit(self, order_id: str, change: Callable[[Order], tuple[Order, list[OrderEvent]]],
               publish: bool = True) -> Order:
        """One transaction; then publish what waits in the outbox. An illegal transition is a defect: it is
        logged, counted and raised (nothing of the change is written)."""
        try:
            order, outbox = self.store.update(order_id, change)
        except IllegalTransition as exc:
            logger.error("refused: %s", exc, extra={"fields": {"order_id": order_id}})
            self.metrics.count("illegal_transitions")
            raise
        self.cache.put(order)
        if publish:
            try:
                self._publish(order_id, outbox)
            except Contended:  # the change is committed; its events stay in the outbox, which the sweep drains
                logger.warning("events of %s not marked published (contention); the sweep publishes them", order_id)
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
            if event["status"] == S.REJECTED.value:
                reason = reject_reason(event.get("reason"))
                self.metrics.count("rejects", venue=event["exchange"], reason=reason)
                logger.info("order rejected", extra={"fields": {"venue": event["exchange"], "reject_reason": reason}})
        return len(sent)
