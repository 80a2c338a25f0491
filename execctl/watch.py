"""``execctl orders watch ORDER_ID``: an order followed until it ends (README, Operator tools).

Two halves. The view model is pure: from successive snapshots of ``GET /orders/{id}`` (and, for algorithm
parents, ``GET /orders/{id}/tca``) and a ``now_ms`` the caller passes in (there is no clock in it), ``observe``
folds what was seen into a ``WatchState`` and says what changed (records: ``status``, ``fill``, ``progress``), and
``parent_progress`` computes what the display shows of a parent:

- filled against the plan: the service's ``progress.schedule_planned`` (what the latest slice aimed to have
  done: TWAP, VWAP, POV); before it has one, what the schedule has due by now by the domain planner's own rule
  (execctl/schedule.py: TWAP, and VWAP given an explicit ``profile``); without a schedule (iceberg, smart) it is
  left out and the record says why;
- filled: the children's fresh fills (the parent's own total folds them only at each slice), never less than the
  parent's total;
- arrival cost in bps, side-aware (positive: it cost us), of the fills so far against the parent's arrival mid,
  by ``shared.domain.tca``'s rule;
- participation: the TCA record's (our fills over the venue's tape in the window); without a tape it is left out,
  with the TCA flag saying why;
- slices done and the next slice's time, the children, and the time left in the schedule's window (or to the
  order's own expiry).

The loop (``follow``) polls with an injected clock and sleep. Each request is already retried by the client
(execctl/client.py); a poll that still gets "try again" (503, such as ``contended``) or no answer is tried again
``RETRIES`` times more, since a watch should outlast a busy moment (the polls are reads). It returns the exit
code: 0 when the order is terminal, ``TIMED_OUT`` (4) when ``--timeout`` passed first, 3 (via ``Unreachable``)
when the service stayed silent through the retries.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Optional

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from execctl import common, output
from execctl.client import Api, Refused, Unreachable
from execctl.common import INTERRUPTED, TIMED_OUT, OutputOpt, api
from execctl.output import Column, Format, dec
from execctl.schedule import plan_of
from shared.domain import tca as tca_rules
from shared.domain.orders import TERMINAL, Side
from shared.infra.codec import jsonable

TERMINAL_STATUSES = frozenset(s.value for s in TERMINAL)
RETRIES = 5  # consecutive answers of "try again" (503) or silences before giving up
TCA_EVERY_MS = 5_000  # a parent's TCA (participation: it reads the venues' tapes) at most this often while it fills
PCT = Decimal("0.01")
BPS_SHOWN = Decimal("0.01")


# ---- what the display shows of a parent ----------------------------------------------------------------------
@dataclass(frozen=True)
class ParentProgress:
    order_id: str
    algorithm: str | None
    status: str
    side: str
    symbol: str
    exchange: str
    quantity: Decimal
    filled: Decimal
    filled_pct: Decimal
    planned: Decimal | None
    planned_pct: Decimal | None
    plan_note: str | None
    slices_done: int
    slices_planned: int | None
    next_slice_at: int | None
    end_at: int | None
    time_left_ms: int | None
    paused: bool
    arrival_mid: Decimal | None
    average_price: Decimal | None
    arrival_cost_bps: Decimal | None
    participation: Decimal | None
    participation_note: str | None
    children: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]

    @property
    def working_children(self) -> int:
        return sum(1 for c in self.children if c.get("status") not in TERMINAL_STATUSES)

    def signature(self) -> tuple:
        """What a change of is worth a record (the time left changes every poll: it is not)."""
        return (self.status, self.filled, self.planned, self.slices_done, self.next_slice_at, self.paused,
                self.arrival_cost_bps, self.participation,
                tuple((c.get("order_id"), c.get("status"), c.get("filled_quantity")) for c in self.children))


def _pct(part: Decimal | None, whole: Decimal) -> Decimal | None:
    if part is None or not whole:
        return None
    return (part / whole * 100).quantize(PCT)


def _fills_of_children(children: Sequence[Mapping[str, Any]]) -> list[tuple[Decimal, Decimal]]:
    pairs = []
    for child in children:
        qty, price = dec(child.get("filled_quantity")), dec(child.get("average_price"))
        if qty and price is not None:
            pairs.append((qty, price))
    return pairs


def arrival_cost_bps(side: str, fills: Sequence[tuple[Decimal, Decimal]], arrival_mid: Decimal | None,
                     quantity: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """(average price, arrival cost in bps) of `fills` (quantity, price) against `arrival_mid`, by the TCA rule
    (positive: it cost us); None where there is no fill or no arrival mid."""
    if not fills:
        return None, None
    record = tca_rules.analyze(tca_rules.TcaInput(
        side=Side(side), quantity=quantity, arrival_mid=arrival_mid,
        fills=tuple(tca_rules.TcaFill(quantity=q, price=p, timestamp_ms=0) for q, p in fills)), horizons=())
    return record.average_price, record.arrival_cost_bps


def _participation(tca: Mapping[str, Any] | None) -> tuple[Decimal | None, str | None]:
    if tca is None:
        return None, "not read yet (TCA is read as the order fills)"
    if "unavailable" in tca:
        return None, f"TCA unavailable: {tca['unavailable']}"
    record = tca.get("tca") or {}
    value = dec(record.get("participation"))
    if value is not None:
        return value, None
    flags = [f for f in record.get("flags", ()) if f in ("no_tape", "no_market_trades_in_window", "no_fills")]
    return None, f"no market volume to compare with ({', '.join(flags) or 'none in the TCA record'})"


def parent_progress(order: Mapping[str, Any], tca: Mapping[str, Any] | None, now_ms: int) -> ParentProgress:
    """What the live display shows of an algorithm parent, from its latest snapshot (and TCA) at `now_ms`."""
    progress = order.get("progress") or {}
    children = tuple(progress.get("children") or ())
    quantity = dec(order["quantity"])
    parent_filled = dec(order.get("filled_quantity")) or Decimal(0)
    fills = _fills_of_children(children)
    children_filled = sum((q for q, _ in fills), Decimal(0))
    if children_filled >= parent_filled:
        filled = parent_filled if children_filled == parent_filled else children_filled  # the service's digits
        average, cost = arrival_cost_bps(order["side"], fills, dec(order.get("arrival_mid")), quantity)
    else:  # retired children are in the parent's total only
        filled = parent_filled
        average = dec(order.get("average_price"))
        average, cost = arrival_cost_bps(order["side"], [(filled, average)] if filled and average else [],
                                         dec(order.get("arrival_mid")), quantity)
    plan = plan_of(order, now_ms, filled)
    terminal = order["status"] in TERMINAL_STATUSES
    end = plan.end_ms
    participation, participation_note = _participation(tca)
    return ParentProgress(
        order_id=order["order_id"], algorithm=order.get("algorithm"), status=order["status"], side=order["side"],
        symbol=order["symbol"], exchange=order["exchange"], quantity=quantity, filled=filled,
        filled_pct=_pct(filled, quantity) or Decimal(0), planned=plan.planned, planned_pct=_pct(plan.planned, quantity),
        plan_note=plan.why, slices_done=progress.get("slices_done", order.get("slices_done") or 0),
        slices_planned=plan.slices, next_slice_at=None if terminal else progress.get("next_slice_at",
                                                                                     order.get("next_slice_at")),
        end_at=end, time_left_ms=None if end is None else (0 if terminal else max(0, end - now_ms)),
        paused=bool(progress.get("paused", order.get("paused"))), arrival_mid=dec(order.get("arrival_mid")),
        average_price=average, arrival_cost_bps=cost, participation=participation,
        participation_note=participation_note, children=children, notes=tuple(progress.get("notes") or ()))


def progress_record(p: ParentProgress, now_ms: int) -> dict[str, Any]:
    """A parent's progress as one JSON-ready record (the ``progress`` kind)."""
    return {
        "kind": "progress", "at": now_ms, "order_id": p.order_id, "algorithm": p.algorithm, "status": p.status,
        "quantity": p.quantity, "filled_quantity": p.filled, "filled_pct": p.filled_pct,
        "planned_quantity": p.planned, "planned_pct": p.planned_pct, "plan_note": p.plan_note,
        "slices_done": p.slices_done, "slices_planned": p.slices_planned, "next_slice_at": p.next_slice_at,
        "time_left_ms": p.time_left_ms, "paused": p.paused, "arrival_mid": p.arrival_mid,
        "average_price": p.average_price, "arrival_cost_bps": p.arrival_cost_bps, "participation": p.participation,
        "participation_note": p.participation_note, "working_children": p.working_children,
        "children": [{k: c.get(k) for k in ("slice", "order_id", "exchange", "status", "quantity", "price",
                                             "filled_quantity", "average_price")} for c in p.children],
    }


# ---- the fold: what was seen, and what changed ------------------------------------------------------------------
@dataclass(frozen=True)
class WatchState:
    """Everything seen of one order so far. `history`: its status and fill records, oldest first (a direct order's
    display); `last_progress`: the signature of the last progress record emitted."""

    order: Mapping[str, Any] | None = None
    tca: Mapping[str, Any] | None = None
    history: tuple[dict[str, Any], ...] = ()
    fills_seen: frozenset[str] = frozenset()
    last_progress: tuple | None = None

    @property
    def status(self) -> str | None:
        return None if self.order is None else self.order["status"]

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_parent(self) -> bool:
        return bool(self.order and self.order.get("algorithm") and self.order.get("algorithm") != "direct")


def observe(state: WatchState, order: Mapping[str, Any], tca: Mapping[str, Any] | None,
            now_ms: int) -> tuple[WatchState, list[dict[str, Any]]]:
    """Fold one snapshot (and the latest TCA, if any) into `state`; returns the new state and the records of what
    changed: a ``status`` record per state change seen (states between two snapshots are not seen), a ``fill``
    record per new fill (by trade id), and for a parent a ``progress`` record when what it shows changed."""
    records: list[dict[str, Any]] = []
    tca = tca if tca is not None else state.tca
    if order["status"] != state.status:
        records.append({"kind": "status", "at": order.get("updated_at") or now_ms, "order_id": order["order_id"],
                        "status": order["status"], "previous_status": state.status, "reason": order.get("reason"),
                        "filled_quantity": dec(order.get("filled_quantity")), "quantity": dec(order["quantity"])})
    seen = set(state.fills_seen)
    for fill in order.get("fills") or ():
        key = str(fill.get("trade_id"))
        if key in seen:
            continue
        seen.add(key)
        records.append({"kind": "fill", "at": fill.get("timestamp") or now_ms, "order_id": order["order_id"],
                        "status": order["status"], "trade_id": fill.get("trade_id"),
                        "fill_quantity": dec(fill.get("quantity")), "fill_price": dec(fill.get("price")),
                        "fee": dec(fill.get("fee")), "fee_currency": fill.get("fee_currency"),
                        "liquidity": fill.get("liquidity"), "filled_quantity": dec(order.get("filled_quantity")),
                        "quantity": dec(order["quantity"])})
    new = replace(state, order=order, tca=tca, fills_seen=frozenset(seen), history=(*state.history, *records))
    if new.is_parent:
        progress = parent_progress(order, tca, now_ms)
        if progress.signature() != state.last_progress:
            records.append(progress_record(progress, now_ms))
            new = replace(new, last_progress=progress.signature())
    return new, records


# ---- showing it --------------------------------------------------------------------------------------------------
RECORD_FIELDS = ("kind", "at", "order_id", "status", "previous_status", "reason", "quantity", "filled_quantity",
                 "filled_pct", "planned_quantity", "planned_pct", "slices_done", "slices_planned", "next_slice_at",
                 "time_left_ms", "arrival_cost_bps", "participation", "working_children", "trade_id",
                 "fill_quantity", "fill_price", "fee", "fee_currency", "liquidity")


def _clock(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


def _seconds(ms: int | None) -> str:
    return "" if ms is None else f"{ms / 1000:.1f} s"


def record_line(record: Mapping[str, Any]) -> str:
    """One record as a line for a person (-o table when stdout is not a terminal)."""
    return f"{_clock(record.get('at'))} {record.get('order_id')} {record['kind']} {describe(record)}"


def describe(record: Mapping[str, Any]) -> str:
    """What a record says, in words (its time, order and kind aside)."""
    if record["kind"] == "status":
        was = f" (was {record['previous_status']})" if record.get("previous_status") else ""
        why = f": {record['reason']}" if record.get("reason") else ""
        return f"{record['status']}{was}{why}; filled {record['filled_quantity']} of {record['quantity']}"
    if record["kind"] == "fill":
        fee = f", fee {record['fee']} {record.get('fee_currency') or ''}".rstrip() if record.get("fee") is not None else ""
        return (f"{record['fill_quantity']} @ {record['fill_price']}{fee} (trade {record['trade_id']}); "
                f"filled {record['filled_quantity']} of {record['quantity']}")
    planned = (f"planned {record['planned_quantity']} ({record['planned_pct']}%)" if record["planned_quantity"]
               is not None else f"planned n/a ({record['plan_note']})")
    slices = f"slices {record['slices_done']}" + (f" of {record['slices_planned']} + catch-up"
                                                  if record["slices_planned"] else "")
    nxt = f", next {_clock(record['next_slice_at'])}" if record.get("next_slice_at") else ""
    cost = f"{record['arrival_cost_bps'].quantize(BPS_SHOWN)} bps" if record["arrival_cost_bps"] is not None else "n/a"
    part = (f"{record['participation']}" if record["participation"] is not None
            else f"n/a ({record['participation_note']})")
    left = f", {_seconds(record['time_left_ms'])} left" if record.get("time_left_ms") is not None else ""
    return (f"{record['status']}: filled {record['filled_quantity']} of {record['quantity']} "
            f"({record['filled_pct']}%), {planned}; {slices}{nxt}; arrival cost {cost}; participation {part}; "
            f"{record['working_children']} working children{left}")


class Lines:
    """Records as they come: JSON lines, CSV rows (one header, fixed columns) or readable lines."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self._writer = csv.writer(sys.stdout, lineterminator="\n") if fmt is Format.csv else None
        if self._writer is not None:
            self._writer.writerow(RECORD_FIELDS)

    def emit(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            if self.fmt is Format.json:
                output.emit_json(jsonable(record))  # decimals as strings, as the service writes them
            elif self._writer is not None:
                self._writer.writerow([output.csv_cell(record.get(k)) for k in RECORD_FIELDS])
            else:
                output.out.print(record_line(record), markup=False, highlight=False)
        sys.stdout.flush()


def _bar(label: str, part: Decimal | None, whole: Decimal, note: str) -> Table:
    row = Table.grid(padding=(0, 1))
    row.add_column(width=8)
    row.add_column(width=40)
    row.add_column()
    bar = ProgressBar(total=float(whole), completed=float(part or 0), width=40) if part is not None else "n/a"
    row.add_row(label, bar, note)
    return row


def render_parent(p: ParentProgress) -> RenderableType:
    from execctl.main import CHILD_COLUMNS  # the one definition of a child's columns (main imports this module)

    head = (f"[bold]{escape(p.order_id)}[/] {escape(p.algorithm or '')} {p.side} {p.quantity} {escape(p.symbol)} on "
            f"{escape(p.exchange)}: [bold]{p.status}[/]" + (" [yellow](paused)[/]" if p.paused else ""))
    planned_note = (f"{p.planned} ({p.planned_pct}%) due by now" if p.planned is not None
                    else f"n/a: {p.plan_note}")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    slices = f"{p.slices_done} done" + (f" of {p.slices_planned} (then a catch-up)" if p.slices_planned else "")
    if p.next_slice_at:
        slices += f", next at {_clock(p.next_slice_at)}"
    facts.add_row("slices", slices)
    cost = (f"{p.arrival_cost_bps.quantize(BPS_SHOWN)} bps (average {p.average_price} vs arrival mid {p.arrival_mid})"
            if p.arrival_cost_bps is not None else "n/a (no fill yet, or no arrival mid)")
    facts.add_row("arrival cost", cost)
    facts.add_row("participation", str(p.participation) if p.participation is not None
                  else f"n/a: {p.participation_note}")
    facts.add_row("time left", _seconds(p.time_left_ms) if p.time_left_ms is not None else "open-ended")
    for note in p.notes[-3:]:
        facts.add_row("note", note)
    parts: list[RenderableType] = [
        head, _bar("filled", p.filled, p.quantity, f"{p.filled} ({p.filled_pct}%)"),
        _bar("planned", p.planned, p.quantity, planned_note), facts]
    if p.children:
        parts.append(output.table(p.children, CHILD_COLUMNS, f"children ({p.working_children} working)"))
    return Group(*parts)


def render_direct(state: WatchState) -> RenderableType:
    order = state.order or {}
    head = (f"[bold]{escape(str(order.get('order_id')))}[/] {order.get('side')} {order.get('quantity')} "
            f"{escape(str(order.get('symbol')))} on {escape(str(order.get('exchange')))}: [bold]{order.get('status')}[/]"
            f"; filled {order.get('filled_quantity')} at {order.get('average_price') or '-'}")
    columns = (Column("time", "at", "ms"), Column("change", "kind"),
               Column("what", "", read=describe))
    return Group(head, output.table(state.history, columns, "seen so far"))


def render(state: WatchState, now_ms: int) -> RenderableType:
    if state.order is None:
        return "waiting for the order..."
    if state.is_parent:
        return render_parent(parent_progress(state.order, state.tca, now_ms))
    return render_direct(state)


# ---- the loop ------------------------------------------------------------------------------------------------------
def _call(read: Callable[[], Any], sleep: Callable[[float], None], pause_s: float) -> Any:
    """`read()`, again after a pause while the service says to try again (503) or does not answer, RETRIES times."""
    for attempt in range(RETRIES + 1):
        try:
            return read()
        except Refused as exc:
            if exc.status != 503 or attempt == RETRIES:
                raise
        except Unreachable:
            if attempt == RETRIES:
                raise
        sleep(pause_s * (attempt + 1))
    raise AssertionError("unreachable")


def follow(client: Api, order_id: str, on_change: Callable[[WatchState, list[dict[str, Any]], int], None], *,
           interval_s: float = 1.0, timeout_s: float | None = None, wall_ms: Callable[[], int],
           monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Poll the order until it is terminal (0) or `timeout_s` passes (TIMED_OUT); `on_change` gets every new state
    with its records. Raises Refused (an unknown order: 1) and Unreachable (3) as the service answered them."""
    started = monotonic()
    state = WatchState()
    last_tca_ms: int | None = None
    tca_filled: Any = None
    pause = min(max(interval_s, 0.2), 2.0)
    while True:
        order = _call(lambda: client.get(f"/orders/{order_id}"), sleep, pause)
        now = wall_ms()
        tca = None
        is_parent = bool(order.get("algorithm") and order.get("algorithm") != "direct")
        ended = order["status"] in TERMINAL_STATUSES
        if is_parent and (ended or (order.get("filled_quantity") != tca_filled and
                                    (last_tca_ms is None or now - last_tca_ms >= TCA_EVERY_MS))):
            tca = _tca(client, order_id, sleep, pause)
            last_tca_ms, tca_filled = now, order.get("filled_quantity")
        state, records = observe(state, order, tca, now)
        on_change(state, records, now)
        if state.ended:
            return 0
        if timeout_s is not None and monotonic() - started >= timeout_s:
            return TIMED_OUT
        sleep(interval_s)


def _tca(client: Api, order_id: str, sleep: Callable[[float], None], pause: float) -> dict[str, Any]:
    """The order's TCA, or why it could not be had (it only adds participation: its failure ends nothing)."""
    try:
        return _call(lambda: client.get(f"/orders/{order_id}/tca"), sleep, pause)
    except Refused as exc:
        return {"unavailable": f"HTTP {exc.status} {exc.error.get('code')}"}
    except Unreachable as exc:
        return {"unavailable": str(exc)}


def watch(
    order_id: Annotated[str, typer.Argument(help="the order_id")],
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="seconds between polls")] = 1.0,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.0, help="give up after this many "
                                                     "seconds (exit 4: the order is still working)")] = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """Follow an order until it ends (exit 0): a parent's progress against its schedule, slices, arrival cost,
    participation, children and time left; a direct order's state changes and fills.

    On a terminal with -o table: a live display. Otherwise one record per change: JSON lines (-o json), CSV rows
    (-o csv) or a readable line (-o table), each of kind status, fill or progress. Polls GET /orders/{id} every
    --interval seconds (states between two polls are not seen: `execctl events tail` sees every event). Exit 0 when
    the order is terminal, 4 when --timeout passed first, 1 when the service refused (an unknown order), 3 when it
    stayed unreachable through retries (an answer of 503, such as contended, is retried), 130 on Ctrl-C (the order
    is left as it is).
    """
    client = api()
    kwargs = dict(interval_s=interval, timeout_s=timeout, wall_ms=common.now_ms)
    try:
        if fmt is Format.table and output.out.is_terminal:
            with Live(console=output.out, auto_refresh=False) as live:
                code = follow(client, order_id, lambda state, _, now: live.update(render(state, now), refresh=True),
                              **kwargs)
        else:
            lines = Lines(fmt)
            code = follow(client, order_id, lambda _, records, __: lines.emit(records), **kwargs)
    except KeyboardInterrupt:  # the operator stopped watching: the order is untouched
        raise typer.Exit(INTERRUPTED) from None
    if code == TIMED_OUT:
        output.err.print(f"[bold yellow]timed out[/]: {escape(order_id)} still working after {timeout} s", highlight=False)
        raise typer.Exit(TIMED_OUT)
