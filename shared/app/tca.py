"""Transaction cost analysis of real orders: the facts recorded on the order record, the venue's public tape, and
the mids sampled after each fill (markouts), turned into ``shared.domain.tca`` input and analyzed.

What comes from where (docs/tca.md has the whole pipeline):
- decision price: the order's ``decision_mid`` (the mid read at intake, ``OrderService.create``);
- arrival mid and touch: ``arrival_mid`` / ``arrival_bid`` / ``arrival_ask`` (read while the first venue order was
  in flight); a parent's arrival mid is its first slice's;
- fills: the order's own, or for a parent every child's (children listed by ``parent_id``, paged to the end); a
  fill that came with the placement answer is quoted at the arrival touch; later fills at the touch sampled
  when the TCA pipeline first saw them (``samples``), when it did;
- markout mids and the end mid: ``samples``, the TCA pipeline's document for the order (None here: pending);
- the interval VWAP and participation: the venue's public tape over [first venue order sent, last fill] (none
  yet: the end, or now), our own trades recognised by trade id.

Never raises for missing market data: what cannot be had is None in the input, and the record flags it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from pydantic import TypeAdapter

from shared.adapters.protocol import PublicTrade, VenueCallError
from shared.app.ports import OrderNotFound, OrderStore
from shared.domain.orders import Fill, Order
from shared.domain.tca import (Quote, RouterEstimate, ScheduleTrack, TapeTrade, TcaFill, TcaInput, TcaRecord, Times,
                               analyze, fee_in_quote)

logger = logging.getLogger(__name__)
_reads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tca-tape")  # the venues' tapes, read at once

PLACEMENT_FILL_MS = 1_000  # a fill within this of the venue's acknowledgement came with the placement answer
TAPE_WAIT_S = 5.0  # the public tape of every venue of an order within this, or none (flagged no_tape): a slow
# venue must not hold the TCA pipeline's workers; the complete row, published later, reads it again
CHILDREN_PAGE = 500


class Tape(Protocol):
    def tape(self, venue: str, symbol: str, since_ms: int, until_ms: int) -> list[PublicTrade]: ...


PRE_TRADE_S = 10  # the pre-trade markout's horizon (seconds before the fill)
PRE_TRADE_TAPE_S = 10  # the last public trade at most this long before it stands in for the mid then


def fill_key(venue: str, trade_id: str) -> str:
    """A fill's key across venues (trade ids are unique per venue only)."""
    return f"{venue}:{trade_id}"


@dataclass(frozen=True)
class Samples:
    """What the TCA pipeline measured after the fact for one top-level order: per fill (``fill_key``) the touch
    when it was first seen and the mid at each markout horizon; the mid when the order ended; notes on samples
    that came late (they become flags)."""

    quotes: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    mids: Mapping[str, Mapping[int, Decimal]] = field(default_factory=dict)
    end_mid: Decimal | None = None
    notes: tuple[str, ...] = ()


@dataclass
class TcaService:
    store: OrderStore
    market: Tape
    clock: Callable[[], int]
    # the pipeline's samples of these orders (an order and its children); the end mid is the root id's
    samples: Callable[[Sequence[str], str], Samples] = lambda order_ids, root_id: Samples()

    def report(self, order_id: str) -> tuple[Order, TcaRecord]:
        """The order's TCA as its facts stand now (also while it works). Raises OrderNotFound."""
        analysis = self.analysis(order_id)
        return analysis.order, analysis.record

    def analysis(self, order_id: str) -> Analysis:
        """The order's TCA with the input it was computed from (which fill came from which venue order, the mids
        sampled). Raises OrderNotFound."""
        order = self.store.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return self.analysis_of(order)

    def analysis_of(self, order: Order) -> Analysis:
        """As ``analysis``, of an order the caller has just read (the API, which read it to check the key's scope)."""
        members = self.members(order)
        # every fill with the venue order it came from, in fill-time order: the order of the record's fills
        sources = tuple(sorted(((m, f) for m in members for f in m.fills), key=lambda mf: mf[1].timestamp_ms))
        tca_input = self._input(order, members, sources)
        return Analysis(order, tuple(members), sources, tca_input, analyze(tca_input))

    def _input(self, order: Order, members: list[Order], fills: Sequence[tuple[Order, Fill]]) -> TcaInput:
        own = self.samples(list(dict.fromkeys([order.order_id, *(m.order_id for m in members)])), order.order_id)
        tca_fills = [self._fill(m, f, own) for m, f in fills]
        acknowledged = min((m.acknowledged_at for m in members if m.acknowledged_at), default=None)
        submitted = min((m.submitted_at for m in members if m.submitted_at), default=None)
        end = order.terminal_at or self.clock()
        last_fill = max((f.timestamp_ms for _, f in fills), default=None)
        # From when the first venue order went out (the venue's acknowledgement is stamped by our clock after the
        # answer, later than a fill the placement itself made) to the last fill, or the end.
        first_fill = min((f.timestamp_ms for _, f in fills), default=None)
        opened = min((x for x in (submitted, acknowledged, first_fill) if x is not None), default=None)
        window = None
        if opened is not None:
            window = (opened, max(opened, last_fill if last_fill is not None else end))
        ours = {fill_key(m.exchange, f.trade_id) for m, f in fills}
        venues = sorted({m.exchange for m in members})
        notes = list(own.notes)
        tape = None
        if window is not None:  # from early enough to stand in for the mid ten seconds before the first fill
            since = min(window[0], first_fill or window[0]) - (PRE_TRADE_S + PRE_TRADE_TAPE_S) * 1000
            tape = self._tape(venues, order.symbol, (since, window[1]), ours)
        if tape is not None and tca_fills:
            tca_fills = [self._pre_trade(f, m.exchange, tape) for (m, _), f in zip(fills, tca_fills, strict=True)]
            if any(-PRE_TRADE_S in f.mids for f in tca_fills):
                notes.append(f"markout_-{PRE_TRADE_S}s_from_tape")
        mids: list[tuple[int, Decimal]] = []
        if order.decision_mid is not None:
            mids.append((order.created_at, order.decision_mid))
        for m in members:
            if m.arrival_mid is not None and m.submitted_at is not None:
                mids.append((m.submitted_at, m.arrival_mid))
        mids += [(f.timestamp_ms, f.quote.mid) for f in tca_fills if f.quote is not None]
        cancel_requested = min((m.cancel_requested_at for m in members if m.cancel_requested_at), default=None)
        if order.cancel_requested_at is not None:
            cancel_requested = order.cancel_requested_at
        confirmed = order.terminal_at if cancel_requested is not None and order.is_terminal else None
        return TcaInput(
            side=order.side, quantity=order.quantity, fills=tuple(tca_fills), decision_price=order.decision_mid,
            arrival_mid=order.arrival_mid, end_mid=own.end_mid if order.is_terminal else None,
            tape=tuple(TapeTrade(t.timestamp_ms, t.price, t.quantity, t.ours) for t in tape) if tape else tape,
            window=window, mids=tuple(sorted(mids)), notes=tuple(notes),
            schedule=ScheduleTrack(order.schedule_points, order.schedule_gap_max, order.schedule_gap_sq)
            if order.schedule_points else None,
            router=RouterEstimate(order.router_best_price, order.router_consolidated_price)
            if order.router_best_price is not None or order.router_consolidated_price is not None else None,
            times=Times(decided=order.created_at, submitted=submitted, acknowledged=acknowledged,
                        first_fill=first_fill, cancel_requested=cancel_requested, cancel_confirmed=confirmed))

    def members(self, order: Order) -> list[Order]:
        """The orders whose fills are the order's: a parent's children (listed by parent_id, paged to the end),
        else the order itself."""
        return list(self._children(order)) if order.is_parent else [order]

    def _children(self, parent: Order) -> Iterator[Order]:
        cursor = None
        while True:
            page = self.store.list({"parent_id": parent.order_id}, CHILDREN_PAGE, cursor)
            yield from page.orders
            if page.cursor is None:
                return
            cursor = page.cursor

    @staticmethod
    def _pre_trade(fill: TcaFill, venue: str, tape: tuple[_TapeRow, ...]) -> TcaFill:
        """The pre-trade markout's mid: the venue's last public trade in the PRE_TRADE_TAPE_S before fill - 10 s
        (no mid history is kept; flagged ``markout_-10s_from_tape``)."""
        at = fill.timestamp_ms - PRE_TRADE_S * 1000
        before = [t for t in tape if t.venue == venue and at - PRE_TRADE_TAPE_S * 1000 <= t.timestamp_ms <= at]
        if not before:
            return fill
        return replace(fill, mids={**fill.mids, -PRE_TRADE_S: before[-1].price})

    @staticmethod
    def _fill(order: Order, fill: Fill, samples: Samples) -> TcaFill:
        base, quote_currency = (order.symbol.split("/") + [""])[:2]
        fee: Decimal | None = Decimal(0)
        if fill.fee:  # a fee in no named currency cannot be converted: None, flagged
            fee = fee_in_quote({fill.fee_currency: fill.fee}, base, quote_currency, fill.price) \
                if fill.fee_currency else None
        quote = None
        if order.arrival_bid is not None and order.arrival_ask is not None and order.acknowledged_at is not None \
                and fill.timestamp_ms <= order.acknowledged_at + PLACEMENT_FILL_MS:
            quote = Quote(order.arrival_bid, order.arrival_ask)
        elif fill_key(order.exchange, fill.trade_id) in samples.quotes:
            quote = Quote(*samples.quotes[fill_key(order.exchange, fill.trade_id)])
        return TcaFill(fill.quantity, fill.price, fill.timestamp_ms, fee, fill.liquidity, quote,
                       dict(samples.mids.get(fill_key(order.exchange, fill.trade_id), {})))

    def _tape(self, venues: list[str], symbol: str, window: tuple[int, int],
              ours: set[str]) -> tuple[_TapeRow, ...] | None:
        trades: list[_TapeRow] = []
        reads = {venue: _reads.submit(self.market.tape, venue, symbol, *window) for venue in venues}
        for venue, read in reads.items():
            try:
                public = read.result(timeout=TAPE_WAIT_S)
            except (VenueCallError, KeyError, TimeoutError) as exc:
                logger.warning("no public tape of %s %s for TCA: %r", venue, symbol, exc)
                return None
            trades += [_TapeRow(venue, t.timestamp_ms, t.price, t.quantity, fill_key(venue, t.trade_id) in ours)
                       for t in public]
        return tuple(sorted(trades, key=lambda t: t.timestamp_ms))


@dataclass(frozen=True)
class _TapeRow:
    venue: str
    timestamp_ms: int
    price: Decimal
    quantity: Decimal
    ours: bool


@dataclass(frozen=True)
class Analysis:
    """One order's TCA and what it was computed from: ``sources[i]`` is the venue order (a parent's child, or the
    order itself) and fill behind ``input.fills[i]`` and ``record.fills[i]`` (all in fill-time order)."""

    order: Order
    members: tuple[Order, ...]
    sources: tuple[tuple[Order, Fill], ...]
    input: TcaInput
    record: TcaRecord


def market_json(analysis: Analysis) -> dict[str, Any]:
    """The market data the record was computed from, as a JSON-ready document (Decimals as they are), so that a
    chart of the order draws only what was measured: ``fills`` (``record.fills`` in the same order, with the venue
    and venue order each came from, the touch it was quoted at and the mid sampled at each markout horizon; -10 is
    the venue's last public trade before it, not a mid) and ``mids``, every mid the service has for the order's
    life and after it, in time order: the decision mid (``decision``), each venue order's arrival mid
    (``arrival``), each fill's touch (``fill_touch``) and each markout sample (``markout_<h>s``). No mid history
    is kept beyond these."""
    order = analysis.order
    mids: list[dict[str, Any]] = []
    if order.decision_mid is not None:
        mids.append({"at": order.created_at, "mid": order.decision_mid, "source": "decision", "venue": None})
    for member in analysis.members:
        if member.arrival_mid is not None and member.submitted_at is not None:
            mids.append({"at": member.submitted_at, "mid": member.arrival_mid, "source": "arrival",
                         "venue": member.exchange})
    fills: list[dict[str, Any]] = []
    for (member, fill), tca_fill in zip(analysis.sources, analysis.input.fills, strict=True):
        quote = tca_fill.quote
        if quote is not None:
            mids.append({"at": fill.timestamp_ms, "mid": quote.mid, "source": "fill_touch", "venue": member.exchange})
        for horizon, mid in sorted(tca_fill.mids.items()):
            if horizon > 0:
                mids.append({"at": fill.timestamp_ms + horizon * 1000, "mid": mid, "source": f"markout_{horizon}s",
                             "venue": member.exchange})
        fills.append({"order_id": member.order_id, "venue": member.exchange, "trade_id": fill.trade_id,
                      "timestamp": fill.timestamp_ms, "quantity": fill.quantity, "price": fill.price,
                      "liquidity": fill.liquidity, "bid": quote.bid if quote else None,
                      "ask": quote.ask if quote else None,
                      "mids": {str(h): m for h, m in sorted(tca_fill.mids.items())}})
    mids.sort(key=lambda m: (m["at"], m["source"]))
    return {"fills": fills, "mids": mids}


def record_json(record: TcaRecord) -> dict[str, Any]:
    """The record as JSON: Decimals as strings, horizons as keys ("1", "10", ...)."""
    return _RECORD.dump_python(record, mode="json")


_RECORD = TypeAdapter(TcaRecord)
