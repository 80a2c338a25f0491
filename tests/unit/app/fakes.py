"""In-memory fakes behind the ports of shared/app/ports.py and the ``Venue`` protocol of shared/app/orders.py.

They copy the semantics of the real adapters that matter to the use cases, nothing more:

- ``FakeStore`` behaves like ``shared.infra.store.FirestoreOrderStore``: ``create`` returns the existing order on a
  duplicate id; ``update`` runs the change, keeps the outbox events plus the new
  events' ``as_message()`` dicts made JSON-ready, and writes only when something changed; ``mark_published``
  removes exactly the given events. Reads and writes are counted the way the real store reports them.
- ``FakeCache`` is ``RedisOrderCache``: newest version wins; when "down", get misses and put does nothing.
- ``FakeVenue`` is a scripted exchange behind an adapter: at most one venue order per client order id (a repeated
  ``place`` returns the existing order with ``created=False``), cancel is idempotent on terminal orders, unknown
  orders raise ``unknown_order``. Every call is recorded; errors can be injected per call.

No clock, no I/O: time comes from ``FakeClock``.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.adapters.protocol import (
    ErrorCode,
    Fill as VenueFill,
    FillsPage,
    OrderType as VenueOrderType,
    PlaceOrder,
    PlaceResult,
    Side as VenueSide,
    VenueCallError,
    VenueOrder,
    VenueStatus,
)
from shared.app.events import encode as wire_encode
from shared.app.ports import Change, OrderNotFound, Page
from shared.domain.orders import OPEN, Order, OrderEvent
from shared.domain.reconcile import ReconcileTask, record_keys
from shared.infra.codec import jsonable
from shared.infra.metrics import FAMILIES


# ---- clock ------------------------------------------------------------------------------------------------
class FakeClock:
    """Epoch milliseconds that move only when a test says so."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        self.now_ms += ms
        return self.now_ms


# ---- store ------------------------------------------------------------------------------------------------
def event_dicts(events: Sequence[OrderEvent]) -> list[dict[str, Any]]:
    return [jsonable(e.as_message()) for e in events]


class FakeStore:
    """order_id -> (Order, outbox). Counts reads and writes like the Firestore store."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[Order, list[dict[str, Any]]]] = {}
        self.reads = 0
        self.writes = 0
        self.updates = 0  # transactions run (written or not)
        self.pages_read = 0  # open_orders_page calls
        self.watermarks: dict[str, dict[str, Any]] = {}
        self._update_errors: deque[Exception] = deque()
        self._concurrent: deque[Callable[[], None]] = deque()

    # -- test controls (not counted) --
    def put(self, order: Order, outbox: Sequence[dict[str, Any]] = ()) -> Order:
        self.docs[order.order_id] = (order, list(outbox))
        return order

    def peek(self, order_id: str) -> Order:
        return self.docs[order_id][0]

    def outbox(self, order_id: str) -> list[dict[str, Any]]:
        return list(self.docs[order_id][1])

    def fail_next_update(self, exc: Exception, times: int = 1) -> None:
        """The next `times` update transactions raise `exc` (before changing anything)."""
        self._update_errors.extend([exc] * times)

    def concurrently(self, writer: Callable[[], None]) -> None:
        """Run `writer` (another process committing) right before the next update transaction reads."""
        self._concurrent.append(writer)

    # -- the port --
    def create(self, order: Order, events: Sequence[OrderEvent]) -> tuple[Order, bool]:
        if order.order_id in self.docs:
            self.reads += 1  # the real store reads the existing document back
            return self.docs[order.order_id][0], False
        self.docs[order.order_id] = (order, event_dicts(events))
        self.writes += 1
        return order, True

    def get(self, order_id: str) -> Order | None:
        self.reads += 1
        doc = self.docs.get(order_id)
        return doc[0] if doc else None

    def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        self.reads += len(set(order_ids))
        return {i: self.docs[i][0] for i in order_ids if i in self.docs}

    def update(self, order_id: str, change: Change) -> tuple[Order, list[dict[str, Any]]]:
        while self._concurrent:
            self._concurrent.popleft()()
        if self._update_errors:
            raise self._update_errors.popleft()
        self.updates += 1
        self.reads += 1
        if order_id not in self.docs:
            raise OrderNotFound(order_id)
        current, stored = self.docs[order_id]
        outbox = list(stored)
        updated, events = change(current)  # may raise (IllegalTransition): nothing is written
        outbox += event_dicts(events)
        if updated == current and len(outbox) == len(stored):
            return current, list(outbox)
        self.docs[order_id] = (updated, outbox)
        self.writes += 1
        return updated, list(outbox)

    def mark_published(self, order_id: str, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        self.reads += 1
        order, outbox = self.docs[order_id]
        left = [e for e in outbox if e not in events]
        if len(left) != len(outbox):  # the real store recomputes the count in a transaction
            self.docs[order_id] = (order, left)
            self.writes += 1

    def list(self, filters: dict[str, Any], limit: int, cursor: str | None) -> Page:
        orders = sorted((o for o, _ in self.docs.values()), key=lambda o: (o.created_at, o.order_id), reverse=True)
        for name in ("status", "strategy_id", "signal_id", "symbol", "exchange", "parent_id"):
            if filters.get(name) is not None:
                orders = [o for o in orders if getattr(o, name) == filters[name]]
        if filters.get("strategy_ids") is not None:
            orders = [o for o in orders if o.strategy_id in filters["strategy_ids"]]
        start = int(cursor) if cursor else 0
        page = orders[start:start + limit]
        self.reads += max(1, len(page))
        more = len(orders) > start + limit
        return Page(page, str(start + limit) if more else None)

    def with_pending_events(self, page: int = 500) -> Iterator[tuple[Order, list[dict[str, Any]]]]:
        found = [(o, list(box)) for o, box in self.docs.values() if box]
        self.reads += max(1, len(found))
        return iter(found)

    def open_orders(self, page: int = 500) -> Iterator[Order]:
        found = [o for o, _ in self.docs.values() if o.status in OPEN]
        self.reads += max(1, len(found))
        return iter(found)

    def open_orders_page(self, exchange: str, low: str | None, high: str | None, after: str | None,
                         limit: int) -> Page:
        ids = sorted(i for i, (o, _) in self.docs.items() if o.exchange == exchange and o.status in OPEN
                     and (low is None or i >= low) and (high is None or i < high) and (after is None or i > after))
        page = [self.docs[i][0] for i in ids[:limit]]
        self.reads += max(1, len(page))
        self.pages_read += 1
        return Page(page, page[-1].order_id if len(page) == limit else None)

    def open_venue_keys(self, exchange: str) -> set[str]:
        found = [o for o, _ in self.docs.values() if o.exchange == exchange and o.status in OPEN]
        self.reads += max(1, len(found))
        return {k for o in found for k in record_keys(o)}

    def known_venue_keys(self, keys: Sequence[str]) -> set[str]:
        held = {k for o, _ in self.docs.values() for k in record_keys(o)}
        self.reads += 1
        return held & set(keys)

    def watermark(self, name: str) -> dict[str, Any]:
        self.reads += 1
        return dict(self.watermarks.get(name, {}))

    def save_watermark(self, name: str, value: dict[str, Any]) -> None:
        self.writes += 1
        self.watermarks[name] = dict(value)


# ---- cache ------------------------------------------------------------------------------------------------
class FakeCache:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.misses: Counter[str] = Counter()
        self.down = False

    def get(self, order_id: str) -> Order | None:
        return None if self.down else self.orders.get(order_id)

    def put(self, order: Order) -> None:
        if self.down:
            return
        cached = self.orders.get(order.order_id)
        if cached is None or cached.version < order.version:  # a slow writer never overwrites a newer snapshot
            self.orders[order.order_id] = order

    def count_miss(self, order_id: str) -> int | None:
        if self.down:
            return None
        self.misses[order_id] += 1
        return self.misses[order_id]


# ---- publisher --------------------------------------------------------------------------------------------
class FakePublisher:
    """Records what went out, and the bytes the Pub/Sub publisher would send for it (``wire``: every message goes
    through ``shared.app.events.encode``, as the real publisher does, so a message that does not fit the wire
    format fails the test that emitted it). ``fail_from(k)``: the k-th event offered from now on, and every later
    one, fails (``publish_events`` then returns how many of its batch went out) until ``heal()``."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.rejections: list[dict[str, Any]] = []
        self.wire: list[bytes] = []
        self._budget: int | None = None

    def fail_from(self, k: int) -> None:
        self._budget = k - 1

    def heal(self) -> None:
        self._budget = None

    def publish_events(self, events: Sequence[dict[str, Any]]) -> int:
        for done, event in enumerate(events):
            if self._budget is not None:
                if self._budget <= 0:
                    return done
                self._budget -= 1
            self.wire.append(wire_encode(event))
            self.published.append(event)
        return len(events)

    def publish_notice(self, payload: dict[str, Any]) -> None:
        self.wire.append(wire_encode(payload))
        self.rejections.append(payload)

    def sequences(self, order_id: str) -> list[int]:
        return [e["sequence"] for e in self.published if e["order_id"] == order_id]

    def statuses(self, order_id: str) -> list[str]:
        return [e["status"] for e in self.published if e["order_id"] == order_id]


# ---- scheduler --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubmitTask:
    order_id: str
    attempt: int
    delay_s: float


@dataclass(frozen=True)
class SliceTask:
    order_id: str
    slice_index: int
    delay_s: float
    key: str = ""


@dataclass(frozen=True)
class SyncTask:
    order_id: str
    attempt: int
    delay_s: float
    chain: int | None = None


class TaskNames:
    """Cloud Tasks' task names: a name once used is refused (production keeps it for about an hour)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def first(self, name: str) -> bool:
        """True the first time `name` is used."""
        if name in self.used:
            return False
        self.used.add(name)
        return True

    @staticmethod
    def chain(order_id: str, chain: int, attempt: int) -> str:
        return f"sync-{order_id}-c{chain}-{attempt}"


class FakeScheduler:
    """Records tasks. Named tasks (chain syncs, reconcile tasks) are refused when the name was used before, as
    Cloud Tasks does (and the local emulator, scripts/tasks_emulator.py)."""

    def __init__(self) -> None:
        self.submits: list[SubmitTask] = []
        self.submit_venues: list[str] = []  # the venue each submission was queued for (its own queue)
        self.syncs: list[SyncTask] = []
        self.reconciles: list[ReconcileTask] = []
        self.names = TaskNames()
        self.slices: list[SliceTask] = []
        self.markouts: list[tuple[str, dict[str, Any], float]] = []

    def submit(self, order_id: str, attempt: int, delay_s: float, key: str = "", *, venue: str) -> None:
        self.submits.append(SubmitTask(order_id, attempt, delay_s))
        self.submit_venues.append(venue)

    def sync(self, order_id: str, attempt: int, delay_s: float, chain: int | None = None) -> None:
        if chain is None or self.names.first(TaskNames.chain(order_id, chain, attempt)):
            self.syncs.append(SyncTask(order_id, attempt, delay_s, chain))

    def reconcile(self, task: ReconcileTask, delay_s: float = 0) -> None:
        if not self.names.first(task.name):
            return
        self.reconciles.append(task)

    def slice(self, order_id: str, slice_index: int, delay_s: float, key: str = "") -> None:
        self.slices.append(SliceTask(order_id, slice_index, delay_s, key))

    def markout(self, name: str, body: dict[str, Any], delay_s: float) -> None:
        if self.names.first(name):  # one task per venue, symbol and second, however many fills ask for it
            self.markouts.append((name, dict(body), delay_s))


class FakeTcaStore:
    """TCA documents in a dict, through the JSON form the Firestore store writes (so the codec is exercised).
    ``replays`` runs each change that many extra times first, as an aborted transaction would."""

    def __init__(self) -> None:
        from shared.app.tca_pipeline import DOC
        self._codec = DOC
        self.docs: dict[str, dict[str, Any]] = {}
        self.replays = 0
        self.writes = 0

    def get(self, order_id: str) -> Any:
        data = self.docs.get(order_id)
        return self._codec.validate_python(data) if data is not None else None

    def get_many(self, order_ids: Sequence[str]) -> list[Any]:
        return [doc for i in dict.fromkeys(order_ids) if (doc := self.get(i)) is not None]

    def update(self, order_id: str, change: Callable[[Any], Any]) -> Any:
        for _ in range(self.replays):
            change(self.get(order_id))
        updated = change(self.get(order_id))
        if updated is None:
            return self.get(order_id)
        self.docs[order_id] = self._codec.dump_python(updated, mode="json")
        self.writes += 1
        return self.get(order_id)

    def due(self, key: str) -> Iterator[Any]:
        for order_id in sorted(self.docs):
            if key in self.docs[order_id]["pending"]:
                yield self.get(order_id)


# ---- metrics ----------------------------------------------------------------------------------------------
class FakeMetrics:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.observations: list[tuple[str, float, dict[str, str]]] = []
        self.counts: Counter[str] = Counter()
        self.count_labels: list[tuple[str, int, dict[str, str]]] = []

    def order_event(self, status: str, venue: str, strategy: str) -> None:
        self.events.append((status, venue, strategy))

    @staticmethod
    def _declared(name: str, kind: str, labels: dict[str, str]) -> None:
        family = FAMILIES.get(name)  # what the real RedisMetrics would refuse, refused here too
        assert family is not None and family.kind == kind and set(labels) == set(family.labels), (name, labels)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._declared(name, "histogram", labels)
        self.observations.append((name, value, labels))

    def count(self, name: str, amount: int = 1, **labels: str) -> None:
        self._declared(name, "counter", labels)
        self.counts[name] += amount
        self.count_labels.append((name, amount, labels))


# ---- venue ------------------------------------------------------------------------------------------------
def venue_error(code: ErrorCode, message: str = "injected") -> VenueCallError:
    return VenueCallError("fake", code, message)


@dataclass(frozen=True)
class VenueCall:
    method: str  # place | get | cancel | fills | open_orders
    client_order_id: str | None = None
    venue_order_id: str | None = None
    request: PlaceOrder | None = None


@dataclass
class OnPlace:
    """What the venue does with the next new order: fill `fill` at once ("all", a quantity, or nothing), then
    optionally end in `status` (e.g. expired for an IOC remainder)."""

    fill: Decimal | str | None = None
    status: VenueStatus | None = None


@dataclass
class _Fault:
    error: VenueCallError
    took_effect: bool  # the call did its work at the venue before the error reached the caller


class FakeVenue:
    """A scripted venue behind an adapter (the ``Venue`` protocol). Unscripted new orders rest (open)."""

    def __init__(self, name: str = "binance", clock: Callable[[], int] | None = None,
                 market_price: Decimal = Decimal("50000"), fee_rate: Decimal = Decimal("0.001")) -> None:
        self.name = name
        self.clock = clock or (lambda: 0)
        self.market_price = market_price
        self.fee_rate = fee_rate
        self.orders: dict[str, VenueOrder] = {}  # by client order id: at most one venue order each
        self.trades: dict[str, list[VenueFill]] = {}  # by venue order id
        self.created: list[str] = []  # client order ids, once per venue order made
        self.calls: list[VenueCall] = []
        self.refuse_cancels = False  # cancel answers with the order still open
        self._plans: deque[OnPlace] = deque()
        self._faults: dict[str, deque[_Fault]] = {}
        self._during: dict[str, deque[Callable[[], None]]] = {}
        self._forgotten: set[str] = set()
        self._venue_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)

    # -- scripting --
    def on_place(self, fill: Decimal | str | None = None, status: VenueStatus | None = None) -> None:
        self._plans.append(OnPlace(Decimal(fill) if isinstance(fill, str) and fill != "all" else fill, status))

    def fail(self, method: str, code: ErrorCode, *, took_effect: bool = False, times: int = 1,
             message: str = "injected") -> None:
        """The next `times` calls of `method` raise; with took_effect the venue acted first (a timeout after
        the request arrived)."""
        self._faults.setdefault(method, deque()).extend(
            _Fault(venue_error(code, message), took_effect) for _ in range(times))

    def during(self, method: str, action: Callable[[], None]) -> None:
        """Run `action` once while the next `method` call is in flight (after the venue acted, before the
        answer reaches the caller): for races."""
        self._during.setdefault(method, deque()).append(action)

    def fill(self, client_order_id: str, quantity: Decimal | str | None = None,
             price: Decimal | None = None) -> VenueFill:
        """Market activity: a trade against a working order (all of its remainder by default)."""
        vo = self.orders[client_order_id]
        qty = vo.remaining_quantity if quantity is None else Decimal(quantity)
        return self._trade(vo, qty, price)

    def set_status(self, client_order_id: str, status: VenueStatus) -> None:
        self.orders[client_order_id] = self.orders[client_order_id].model_copy(update={"status": status})

    def forget(self, client_order_id: str) -> None:
        """The venue answers unknown_order for it from now on (and stops listing it)."""
        self._forgotten.add(client_order_id)

    def add_foreign_order(self, client_order_id: str, symbol: str = "ETH/USDT") -> VenueOrder:
        """An order the service never sent (e.g. placed by hand)."""
        req = PlaceOrder(client_order_id=client_order_id, symbol=symbol, side=VenueSide.BUY,
                         type=VenueOrderType.LIMIT, quantity=Decimal("1"), price=Decimal("100"))
        return self._new_order(req)

    # -- reading what happened --
    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def placed(self) -> list[PlaceOrder]:
        return [c.request for c in self.calls if c.method == "place" and c.request is not None]

    def order(self, client_order_id: str) -> VenueOrder:
        return self.orders[client_order_id]

    # -- internals --
    def _fault(self, method: str) -> _Fault | None:
        faults = self._faults.get(method)
        return faults.popleft() if faults else None

    def _in_flight(self, method: str) -> None:
        actions = self._during.get(method)
        if actions:
            actions.popleft()()

    def _find(self, client_order_id: str | None, venue_order_id: str | None) -> VenueOrder:
        for vo in self.orders.values():
            if vo.client_order_id in self._forgotten:
                continue
            if (client_order_id and vo.client_order_id == client_order_id) or (
                    venue_order_id and vo.venue_order_id == venue_order_id):
                return vo
        raise venue_error(ErrorCode.UNKNOWN_ORDER, f"no order {client_order_id or venue_order_id}")

    def _new_order(self, req: PlaceOrder) -> VenueOrder:
        vo = VenueOrder(
            venue=self.name, client_order_id=req.client_order_id, venue_order_id=f"v{next(self._venue_ids)}",
            symbol=req.symbol, side=req.side, type=req.type, status=VenueStatus.OPEN, quantity=req.quantity,
            filled_quantity=Decimal(0), remaining_quantity=req.quantity, price=req.price, stop_price=req.stop_price,
            time_in_force=req.time_in_force, post_only=req.post_only, created_at_ms=self.clock(),
            updated_at_ms=self.clock())
        self.orders[req.client_order_id] = vo
        self.trades[vo.venue_order_id] = []
        self.created.append(req.client_order_id)
        return vo

    def _trade(self, vo: VenueOrder, qty: Decimal, price: Decimal | None) -> VenueFill:
        px = price or vo.price or self.market_price
        trade = VenueFill(trade_id=f"t{next(self._trade_ids)}", venue_order_id=vo.venue_order_id,
                          client_order_id=vo.client_order_id, symbol=vo.symbol, side=vo.side, price=px,
                          quantity=qty, fee=(qty * px * self.fee_rate), fee_currency="USDT",
                          liquidity="taker", timestamp_ms=self.clock())
        self.trades[vo.venue_order_id].append(trade)
        filled = vo.filled_quantity + qty
        status = VenueStatus.FILLED if filled >= vo.quantity else vo.status
        self.orders[vo.client_order_id] = vo.model_copy(update={
            "filled_quantity": filled, "remaining_quantity": max(Decimal(0), vo.quantity - filled),
            "status": status, "average_price": px, "updated_at_ms": self.clock()})
        return trade

    # -- the Venue protocol --
    def place(self, order: PlaceOrder) -> PlaceResult:
        self.calls.append(VenueCall("place", client_order_id=order.client_order_id, request=order))
        fault = self._fault("place")
        if fault and not fault.took_effect:
            raise fault.error
        if order.client_order_id in self.orders and order.client_order_id not in self._forgotten:
            result = PlaceResult(order=self.orders[order.client_order_id], created=False)
        else:
            vo = self._new_order(order)
            plan = self._plans.popleft() if self._plans else OnPlace()
            fills = []
            if plan.fill is not None:
                fills.append(self._trade(vo, vo.quantity if plan.fill == "all" else Decimal(plan.fill), None))
            if plan.status is not None:
                self.set_status(order.client_order_id, plan.status)
            result = PlaceResult(order=self.orders[order.client_order_id], created=True, fills=fills)
        self._in_flight("place")
        if fault:
            raise fault.error
        return result

    def get(self, symbol: str, *, client_order_id: str | None = None,
            venue_order_id: str | None = None) -> VenueOrder:
        self.calls.append(VenueCall("get", client_order_id, venue_order_id))
        fault = self._fault("get")
        if fault:
            raise fault.error
        found = self._find(client_order_id, venue_order_id)
        self._in_flight("get")
        return found

    def cancel(self, symbol: str, *, client_order_id: str | None = None,
               venue_order_id: str | None = None) -> VenueOrder:
        self.calls.append(VenueCall("cancel", client_order_id, venue_order_id))
        fault = self._fault("cancel")
        if fault and not fault.took_effect:
            raise fault.error
        vo = self._find(client_order_id, venue_order_id)
        if vo.status is VenueStatus.OPEN and not self.refuse_cancels:
            vo = vo.model_copy(update={"status": VenueStatus.CANCELED, "updated_at_ms": self.clock()})
            self.orders[vo.client_order_id] = vo
        self._in_flight("cancel")
        if fault:
            raise fault.error
        return vo  # terminal orders come back as they are (idempotent)

    def fills(self, symbol: str, since: str | None = None, limit: int = 500,
              venue_order_id: str | None = None) -> FillsPage:
        self.calls.append(VenueCall("fills", venue_order_id=venue_order_id))
        fault = self._fault("fills")
        if fault:
            raise fault.error
        trades = [t for vid, ts in self.trades.items() if venue_order_id in (None, vid) for t in ts
                  if venue_order_id is not None or t.symbol == symbol]
        if since is not None:
            ids = [t.trade_id for t in trades]
            trades = trades[ids.index(since) + 1:] if since in ids else trades
        trades = trades[:limit]
        return FillsPage(fills=trades, cursor=trades[-1].trade_id if trades else since)

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        self.calls.append(VenueCall("open_orders"))
        fault = self._fault("open_orders")
        if fault:
            raise fault.error
        return [vo for vo in self.orders.values() if vo.status is VenueStatus.OPEN
                and vo.client_order_id not in self._forgotten and symbol in (None, vo.symbol)]


@dataclass
class Fakes:
    """Everything an OrderService needs, faked, sharing one clock."""

    clock: FakeClock = field(default_factory=FakeClock)
    store: FakeStore = field(default_factory=FakeStore)
    cache: FakeCache = field(default_factory=FakeCache)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    scheduler: FakeScheduler = field(default_factory=FakeScheduler)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)
    venue: FakeVenue = field(init=False)

    def __post_init__(self) -> None:
        self.venue = FakeVenue("binance", clock=self.clock)
