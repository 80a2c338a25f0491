"""The TCA pipeline: what transaction cost analysis must sample as it happens, since functions hold no timers.

Two entry points (functions/tca.py):
- ``on_event``: every order event (a push subscription of order-events). It re-reads the order (fresh state, never
  the event's copy) and, in the order's own TCA document (``tca/{order_id}``, naming its top-level order as
  ``root_id``), records each fill the first time it is seen, with the venue's touch read then (a quote read more
  than ``QUOTE_FRESH_MS`` after the fill is kept but not used: flagged), and the second each markout horizon is
  due. One document per order, not one per parent: a SmartRouter parent's children fill at once on several venues,
  and a parent document written at every child's fill would be a hot spot (Firestore serialises the writers of one
  document; on the emulator a sweep of 45 BTC kept them aborting for seconds). Markout tasks are scheduled before the document is written (idempotent names), so a crash in
  between leaves a task that finds nothing, never a due sample without a task. When the top-level order has ended:
  the mid then (P_end, for the opportunity cost of an unfilled rest), then the TCA row (``tca_row``) is computed,
  published to the tca-records topic, logged (``tca record``) and observed in the metrics, once.
- ``on_markout``: one Cloud Task per venue, symbol and second with fills due. One book read serves every fill due
  in that second: its mid is written into each document waiting for it (``pending`` holds the keys), each markout
  is observed once (``markout`` histogram, ``tca markout`` log line), and when the last markout of an ended top-level
  order (of every child of a parent) is in, its row is published again, complete (``version`` + 1: keep the
  highest).

Bounds, said loudly: a markout's mid is read when its task runs (Cloud Tasks is punctual to about a second; a mid
read more than ``MARKOUT_LATE_MS`` after it was due is flagged late); a task that cannot read the book answers
503 and the queue retries it (tasks.tf retry_config); a markout is never scheduled sooner than
``SCHEDULE_MARGIN_S`` from now, so its document is written before it runs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from pydantic import TypeAdapter

from shared.app.ports import Metrics, OrderNotFound, OrderStore
from shared.app.tca import Samples, TcaService, fill_key
from shared.domain.orders import SMART, TERMINAL, Order, Side
from shared.domain.tca import MARKOUT_HORIZONS_S, Quote, TcaRecord, markout_bps

logger = logging.getLogger(__name__)

QUOTE_FRESH_MS = 1_000  # a touch read later than this after the fill does not quote it (kept, flagged)
MARKOUT_LATE_MS = 2_000  # a markout mid read later than this after it was due is flagged late
SCHEDULE_MARGIN_S = 2  # a markout task is due at least this long after it is scheduled
HORIZONS = tuple(h for h in MARKOUT_HORIZONS_S if h > 0)  # sampled; -10 s comes from the tape (shared/app/tca.py)


class MarketDataUnavailable(Exception):
    """The venue's book could not be read: the markout task is answered 503 and retried by its queue."""


@dataclass(frozen=True)
class SeenFill:
    """One fill as the pipeline first saw it, and the mids sampled after it."""

    venue: str
    trade_id: str
    quantity: Decimal
    price: Decimal
    timestamp_ms: int
    seen_at: int  # when the pipeline first saw it (and read the touch)
    bid: Decimal | None = None
    ask: Decimal | None = None
    due: dict[int, int] = field(default_factory=dict)  # horizon (s) -> the second its mid is to be read at
    mids: dict[int, Decimal] = field(default_factory=dict)  # horizon -> the mid read
    read_at: dict[int, int] = field(default_factory=dict)  # horizon -> when it was read (ms)


@dataclass(frozen=True)
class TcaDoc:
    """``tca/{order_id}`` of one order: its fills as seen and their markouts; for a top-level order (direct or
    parent) also its end mid and its published row."""

    order_id: str
    root_id: str  # the top-level order: the order itself, or its parent
    side: Side
    symbol: str
    fills: dict[str, SeenFill] = field(default_factory=dict)  # fill_key(venue, trade_id) -> fill
    pending: tuple[str, ...] = ()  # due_key of every markout second still to be read
    end_mid: Decimal | None = None
    row: dict[str, Any] | None = None  # the last published TCA row
    row_at: int | None = None  # the order's end, once its row is published (the aggregates' time axis)
    row_complete: bool = False  # the published row has every markout


DOC = TypeAdapter(TcaDoc)


def worth_a_look(event: Mapping[str, Any]) -> bool:
    """Whether an order event can bring the pipeline anything: a fill (``last_fill``), or an end (the end mid, the
    row, and fills an order may settle with). Other events (new, pending_submit, accepted, ...) are acknowledged
    without a read: most events are those."""
    return bool(event.get("last_fill")) or event.get("status") in _ENDED


_ENDED = frozenset(s.value for s in TERMINAL)


def due_key(venue: str, symbol: str, second: int) -> str:
    return f"{venue}|{symbol}|{second}"


def task_name(venue: str, symbol: str, second: int) -> str:
    """A Cloud Tasks name (letters, digits, - and _): the symbol is hashed, so no two symbols share a name."""
    digest = hashlib.sha1(symbol.encode()).hexdigest()[:10]
    return f"markout-{venue}-{digest}-{second}"


def samples_of(docs: Iterable[TcaDoc], root_id: str) -> Samples:
    """The documents of an order and its children as ``TcaService`` input: fresh quotes, sampled mids, the
    top-level order's end mid, and notes on what came late."""
    docs = list(docs)
    quotes: dict[str, tuple[Decimal, Decimal]] = {}
    mids: dict[str, dict[int, Decimal]] = {}
    notes: list[str] = []
    fills = [kv for doc in docs for kv in doc.fills.items()]
    for key, f in sorted(fills, key=lambda kv: kv[1].timestamp_ms):
        if f.bid is not None and f.ask is not None:
            if f.seen_at - f.timestamp_ms <= QUOTE_FRESH_MS:
                quotes[key] = (f.bid, f.ask)
            else:
                notes.append(f"quote_late@{f.timestamp_ms}")
        mids[key] = dict(f.mids)
        for h, at in f.read_at.items():
            if at - (f.timestamp_ms + h * 1000) > MARKOUT_LATE_MS:
                notes.append(f"markout_{h}s_late@{f.timestamp_ms}")
    end_mid = next((doc.end_mid for doc in docs if doc.order_id == root_id), None)
    return Samples(quotes=quotes, mids=mids, end_mid=end_mid, notes=tuple(notes))


def _ceil_s(ms: int) -> int:
    return -(-ms // 1000)


def tca_row(order: Order, record: TcaRecord, version: int, complete: bool) -> dict[str, Any]:
    """The flat row of a top-level order's TCA (the tca-records topic, BigQuery's tca_records table, the
    aggregates): Decimals as strings, times as epoch ms, null where the record has None."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    markouts = record.markouts_bps
    latencies = record.latencies_ms
    return {
        "order_id": order.order_id, "version": version, "complete": complete,
        "algorithm": order.algorithm or "DIRECT", "venue": order.exchange, "symbol": order.symbol,
        "side": order.side.value, "strategy_id": order.strategy_id, "status": order.status.value,
        "created_at": order.created_at, "ended_at": order.terminal_at,
        "quantity": text(record.quantity), "filled_quantity": text(record.filled_quantity),
        "notional": text(record.notional), "average_price": text(record.average_price),
        "fill_ratio": text(record.fill_ratio), "arrival_cost_bps": text(record.arrival_cost_bps),
        "shortfall_bps": text(record.shortfall.total_bps if record.shortfall else None),
        "shortfall_delay_bps": text(record.shortfall.delay_bps if record.shortfall else None),
        "shortfall_execution_bps": text(record.shortfall.execution_bps if record.shortfall else None),
        "shortfall_opportunity_bps": text(record.shortfall.opportunity_bps if record.shortfall else None),
        "shortfall_fees_bps": text(record.shortfall.fees_bps if record.shortfall else None),
        "interval_vwap_cost_bps": text(record.interval_vwap_cost_bps),
        "twap_mid_cost_bps": text(record.twap_mid_cost_bps), "fees_bps": text(record.fees_bps),
        "maker_share": text(record.maker_share), "participation": text(record.participation),
        "schedule_deviation_rms": text(record.schedule_deviation_rms),
        "router_vs_best_venue_bps": text(record.router_vs_best_venue_bps),
        "router_vs_consolidated_bps": text(record.router_vs_consolidated_bps),
        "markout_pre10s_bps": text(markouts.get(-10)), "markout_1s_bps": text(markouts.get(1)),
        "markout_10s_bps": text(markouts.get(10)), "markout_60s_bps": text(markouts.get(60)),
        "markout_300s_bps": text(markouts.get(300)),
        "decision_to_submit_ms": latencies.get("decision_to_submit"),
        "submit_to_ack_ms": latencies.get("submit_to_ack"),
        "ack_to_first_fill_ms": latencies.get("ack_to_first_fill"),
        "cancel_to_confirm_ms": latencies.get("cancel_to_confirm"),
        "rejected": order.status.value == "rejected", "flags": list(record.flags),
    }


class TcaStore(Protocol):
    def get(self, order_id: str) -> TcaDoc | None: ...

    def get_many(self, order_ids: Sequence[str]) -> list[TcaDoc]:
        """The documents that exist of these orders (batched reads)."""
        ...

    def update(self, order_id: str, change: Callable[[TcaDoc | None], TcaDoc | None]) -> TcaDoc | None:
        """Read-modify-write in a transaction; `change` answers None for no write (the doc is returned as is)."""
        ...

    def due(self, key: str) -> Iterator[TcaDoc]:
        """Every document with `key` in ``pending``, paged to the end."""
        ...


class MarkoutScheduler(Protocol):
    def markout(self, name: str, body: Mapping[str, Any], delay_s: float) -> None: ...


@dataclass
class TcaPipeline:
    orders: OrderStore
    docs: TcaStore
    service: TcaService
    touch: Callable[[str, str], Quote | None]  # the venue's touch now (None: no book)
    scheduler: MarkoutScheduler
    publish: Callable[[dict[str, Any]], None]  # a row to the tca-records topic
    metrics: Metrics
    clock: Callable[[], int]

    # ---- order events ------------------------------------------------------------------------------------------
    def on_event(self, order_id: str) -> str:
        order = self.orders.get(order_id)
        if order is None:
            return "unknown order"
        doc = self.docs.get(order_id)
        # a parent's fills are its children's (folded copies): only their own events record them
        new = [] if order.is_parent else [f for f in order.fills
                                          if fill_key(order.exchange, f.trade_id) not in (doc.fills if doc else {})]
        # the end mid and the row: on the top-level order's own events only (its end is one of them), so a herd
        # of children's events does not contend for the parent's document
        ended = order.parent_id is None and order.is_terminal
        wants_end_mid = ended and order.filled_quantity < order.quantity and (doc is None or doc.end_mid is None)
        wants_row = ended and (doc is None or doc.row is None)
        if not new and not wants_end_mid and not wants_row:
            return "nothing new"
        now = self.clock()
        quote = self.touch(order.exchange, order.symbol) if new else None
        end_mid = None
        if wants_end_mid:  # a SmartRouter parent's: where its first child went
            venue = order.exchange if order.exchange != SMART else next((c.venue for c in order.children), None)
            end = quote if quote is not None and venue == order.exchange else (
                self.touch(venue, order.symbol) if venue is not None else None)
            end_mid = end.mid if end is not None else None
        seen: dict[str, SeenFill] = {}
        for f in new:
            due = {h: max(_ceil_s(f.timestamp_ms + h * 1000), _ceil_s(now) + SCHEDULE_MARGIN_S) for h in HORIZONS}
            seen[fill_key(order.exchange, f.trade_id)] = SeenFill(
                order.exchange, f.trade_id, f.quantity, f.price, f.timestamp_ms, now,
                quote.bid if quote else None, quote.ask if quote else None, due)
        for second in sorted({s for sf in seen.values() for s in sf.due.values()}):
            # before the document: a crash in between leaves a task that finds nothing, not a sample without one
            self.scheduler.markout(task_name(order.exchange, order.symbol, second),
                                   {"venue": order.exchange, "symbol": order.symbol, "second": second},
                                   max(0.0, (second * 1000 - now) / 1000))
        if seen or end_mid is not None:
            self.docs.update(order_id, _adding(order, order.parent_id or order_id, seen, end_mid))
        if wants_row:
            self._publish_row(order_id, first=True)
        return f"{len(new)} fills seen"

    # ---- markout tasks -------------------------------------------------------------------------------------------
    def on_markout(self, venue: str, symbol: str, second: int) -> int:
        """Read the mid once and hand it to every fill due at `second`; answers how many markouts it recorded."""
        quote = self.touch(venue, symbol)
        if quote is None:
            raise MarketDataUnavailable(f"no book of {venue} {symbol} for the markouts due at {second}")
        mid, now, key = quote.mid, self.clock(), due_key(venue, symbol, second)
        recorded = 0
        for waiting in self.docs.due(key):
            taken: list[tuple[SeenFill, int]] = []

            def change(current: TcaDoc | None) -> TcaDoc | None:
                taken.clear()  # a transaction may run more than once: only the committed attempt counts
                if current is None or key not in current.pending:
                    return None
                fills = dict(current.fills)
                for k, f in current.fills.items():
                    horizons = [h for h, s in f.due.items() if s == second and f.venue == venue and h not in f.mids]
                    if horizons:
                        fills[k] = replace(f, mids={**f.mids, **{h: mid for h in horizons}},
                                           read_at={**f.read_at, **{h: now for h in horizons}})
                        taken.extend((f, h) for h in horizons)
                return replace(current, fills=fills, pending=tuple(p for p in current.pending if p != key))

            doc = self.docs.update(waiting.order_id, change)
            for f, h in taken:
                value = markout_bps(doc.side if doc else waiting.side, f.price, mid)
                self.metrics.observe("markout", float(value), venue=venue, horizon=str(h))
                logger.info("tca markout", extra={"fields": {"markout": {
                    "venue": venue, "symbol": symbol, "horizon_s": h, "markout_bps": str(value),
                    "order_id": waiting.order_id, "trade_id": f.trade_id}}})
            recorded += len(taken)
            if taken and doc is not None and not doc.pending:
                root = doc if doc.root_id == doc.order_id else self.docs.get(doc.root_id)
                if root is not None and root.row is not None and not root.row_complete:
                    self._publish_row(root.order_id, first=False)
        return recorded

    # ---- rows ----------------------------------------------------------------------------------------------------
    def _publish_row(self, order_id: str, first: bool) -> None:
        """Compute the top-level order's TCA as it stands and publish it (before recording it: at least once; the
        highest version wins), then record it; metrics and the log line only from the writer whose record
        committed. A row is complete when no document of the order (or of a child) waits for a markout; the
        second publication happens only then."""
        current = self.docs.get(order_id)
        if first and current is not None and current.row is not None:
            return
        if not first and (current is None or current.row is None or current.row_complete):
            return
        try:
            order, record = self.service.report(order_id)
        except OrderNotFound:
            return
        members = [order.order_id, *(m.order_id for m in self.service.members(order) if m is not order)]
        complete = not any(doc.pending for doc in self.docs.get_many(members))
        if not first and not complete:
            return
        version = ((current.row if current else None) or {}).get("version", 0) + 1
        row = tca_row(order, record, version, complete)
        self.publish(row)
        won: list[bool] = []

        def change(doc: TcaDoc | None) -> TcaDoc | None:
            won.clear()
            doc = doc or TcaDoc(order.order_id, order.order_id, order.side, order.symbol)
            if (doc.row or {}).get("version", 0) >= version:
                return None
            won.append(True)
            return replace(doc, row=row, row_at=order.terminal_at, row_complete=complete)

        self.docs.update(order_id, change)
        if not won:
            return
        logger.info("tca record", extra={"fields": {"tca": row}})
        if first:
            labels = {"venue": order.exchange, "algorithm": order.algorithm or "DIRECT", "strategy": order.strategy_id}
            self.metrics.observe("fill_ratio", float(record.fill_ratio), **labels)
            if record.arrival_cost_bps is not None:
                self.metrics.observe("arrival_cost", float(record.arrival_cost_bps), **labels)
            if record.shortfall is not None:
                self.metrics.observe("shortfall", float(record.shortfall.total_bps), **labels)


def _adding(order: Order, root_id: str, fills: Mapping[str, SeenFill],
            end_mid: Decimal | None) -> Callable[[TcaDoc | None], TcaDoc | None]:
    """The change recording fills first seen (each once, by key, with its due markout keys) and the end mid."""

    def change(current: TcaDoc | None) -> TcaDoc | None:
        current = current or TcaDoc(order.order_id, root_id, order.side, order.symbol)
        added = {k: sf for k, sf in fills.items() if k not in current.fills}
        mid = current.end_mid if current.end_mid is not None else end_mid
        if not added and mid == current.end_mid:
            return None
        pending = set(current.pending) | {due_key(sf.venue, order.symbol, s)
                                          for sf in added.values() for s in sf.due.values()}
        return replace(current, fills={**current.fills, **added}, pending=tuple(sorted(pending)), end_mid=mid)

    return change
