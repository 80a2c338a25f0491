"""The TCA pipeline over the fakes: fills seen once with the touch then, markout tasks batched per venue, symbol
and second (one book read each), every markout observed once however often a task or event is delivered, and the
TCA row published at the end and again, complete, when the last markout is in."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from shared.app.tca import TcaService
from shared.app.tca_pipeline import (
    HORIZONS,
    QUOTE_FRESH_MS,
    MarketDataUnavailable,
    TcaPipeline,
    due_key,
    samples_of,
)
from shared.domain.tca import Quote

from .fakes import FakeTcaStore
from .test_order_service import CID, OID, Env
from .test_tca_service import ScriptedTape


class Book:
    """The touch port: one (bid, ask) for every read until changed; None: no book. Counts the reads."""

    def __init__(self, bid="49990", ask="50010"):
        self.quote: Quote | None = Quote(D(bid), D(ask))
        self.reads: list[tuple[str, str]] = []

    def __call__(self, venue, symbol):
        self.reads.append((venue, symbol))
        return self.quote


class Pipe:
    def __init__(self, env: Env | None = None):
        self.env = env or Env()
        self.docs = FakeTcaStore()
        self.book = Book()
        self.rows: list[dict] = []
        self.service = TcaService(store=self.env.store, market=ScriptedTape(), clock=self.env.clock,
                                  samples=lambda ids, root: samples_of(self.docs.get_many(ids), root))
        self.pipeline = TcaPipeline(orders=self.env.store, docs=self.docs, service=self.service, touch=self.book,
                                    scheduler=self.env.scheduler, publish=self.rows.append, metrics=self.env.metrics,
                                    clock=self.env.clock)

    def markouts(self):
        return self.env.scheduler.markouts

    def run_markouts(self, start: int = 0) -> int:
        """Run the scheduled markout tasks from `start`, each at its due second."""
        recorded = 0
        for _, body, _ in self.markouts()[start:]:
            due = body["second"] * 1000
            if self.env.clock() < due:
                self.env.clock.advance(due - self.env.clock())
            recorded += self.pipeline.on_markout(body["venue"], body["symbol"], body["second"])
        return recorded

    def observed(self, name):
        return [(v, labels) for n, v, labels in self.env.metrics.observations if n == name]


def _filled(pipe: Pipe, client_order_id: str = CID, **kw):
    pipe.env.venue.on_place(fill="all")
    order = pipe.env.create(client_order_id, quantity=D("2"), **kw)
    pipe.env.run_submit()
    return pipe.env.store.get(order.order_id)


def test_a_fill_is_seen_once_with_the_touch_and_its_markouts_are_scheduled():
    pipe = Pipe()
    order = _filled(pipe)
    assert pipe.pipeline.on_event(OID) == "1 fills seen"
    doc = pipe.docs.get(OID)
    (fill,) = doc.fills.values()
    assert (fill.bid, fill.ask, fill.seen_at) == (D(49990), D(50010), pipe.env.clock())
    assert sorted(fill.due) == list(HORIZONS) == [1, 10, 60, 300]
    assert len(pipe.markouts()) == 4 and set(doc.pending) == {
        due_key("binance", order.symbol, s) for s in fill.due.values()}
    # ended (filled at once): the row goes out, once, and the order's metrics are observed once
    assert [r["version"] for r in pipe.rows] == [1] and pipe.rows[0]["complete"] is False
    assert len(pipe.observed("fill_ratio")) == 1 and pipe.observed("fill_ratio")[0][0] == 1.0

    assert pipe.pipeline.on_event(OID) == "nothing new"  # Pub/Sub delivered it again
    assert len(pipe.markouts()) == 4 and len(pipe.rows) == 1 and len(pipe.observed("fill_ratio")) == 1
    assert len(pipe.book.reads) == 1


def test_markouts_arrive_once_each_and_complete_the_row(caplog):
    caplog.set_level("INFO", logger="shared.app.tca_pipeline")
    pipe = Pipe()
    order = _filled(pipe)
    pipe.pipeline.on_event(OID)
    price = order.fills[0].price  # a buy at 50000; the mid will be 50005: +1 bps in our favour
    pipe.book.quote = Quote(D(50000), D(50010))
    assert pipe.run_markouts() == 4
    marks = pipe.observed("markout")
    assert sorted(labels["horizon"] for _, labels in marks) == ["1", "10", "300", "60"]
    assert {v for v, _ in marks} == {float((D(50005) - price) / price * 10_000)} == {1.0}
    assert [(r["version"], r["complete"]) for r in pipe.rows] == [(1, False), (2, True)]
    assert D(pipe.rows[-1]["markout_300s_bps"]) == D(1) == D(pipe.rows[-1]["markout_1s_bps"])
    assert pipe.docs.get(OID).pending == ()

    assert pipe.run_markouts() == 0  # every task delivered again: nothing more recorded, observed or published
    assert len(pipe.observed("markout")) == 4 and len(pipe.rows) == 2
    # the log lines Cloud Monitoring's log-based metrics read (tests/terraform/tfcheck.py TCA_LOG_MESSAGES)
    marks = [r.fields["markout"] for r in caplog.records if r.getMessage() == "tca markout"]
    assert sorted(m["horizon_s"] for m in marks) == [1, 10, 60, 300] and {m["markout_bps"] for m in marks} == {"1.000000"}
    assert {m["venue"] for m in marks} == {"binance"} and {m["order_id"] for m in marks} == {OID}
    records = [r.fields["tca"] for r in caplog.records if r.getMessage() == "tca record"]
    assert [r["version"] for r in records] == [1, 2] and records == pipe.rows


def test_fills_due_in_the_same_second_share_one_task_and_one_book_read():
    pipe = Pipe()
    first = _filled(pipe, "c-a").order_id
    second = _filled(pipe, "c-b").order_id  # same venue, symbol and millisecond
    pipe.pipeline.on_event(first)
    pipe.pipeline.on_event(second)
    assert len(pipe.markouts()) == 4  # not 8
    reads = len(pipe.book.reads)
    assert pipe.run_markouts() == 8
    assert len(pipe.book.reads) - reads == 4  # one read per task, for both orders


def test_a_replayed_transaction_still_observes_each_markout_once():
    pipe = Pipe()
    _filled(pipe)
    pipe.pipeline.on_event(OID)
    pipe.docs.replays = 2  # every change runs three times, as aborted transactions do
    assert pipe.run_markouts() == 4
    assert len(pipe.observed("markout")) == 4 and [r["version"] for r in pipe.rows] == [1, 2]


def test_a_quote_read_in_time_quotes_a_fill_that_came_after_the_placement():
    pipe = Pipe()  # no arrival touch was recorded: only the pipeline's quote can price the spread
    _filled(pipe)
    pipe.pipeline.on_event(OID)
    _, record = pipe.service.report(OID)
    assert record.fills[0].quoted_spread_bps == D(4)  # (50010 - 49990) / 50000


def test_a_quote_read_late_is_kept_but_does_not_quote_the_fill():
    pipe = Pipe()
    order = _filled(pipe)
    pipe.env.clock.advance(QUOTE_FRESH_MS + 1)  # the event reached the pipeline late
    pipe.pipeline.on_event(OID)
    assert pipe.docs.get(OID).fills  # kept
    _, record = pipe.service.report(OID)
    assert record.fills[0].effective_spread_bps is None
    assert f"quote_late@{order.fills[0].timestamp_ms}" in record.flags


def test_a_markout_read_late_is_flagged():
    pipe = Pipe()
    order = _filled(pipe)
    pipe.pipeline.on_event(OID)
    name, body, _ = pipe.markouts()[0]
    pipe.env.clock.advance(body["second"] * 1000 - pipe.env.clock() + 5_000)  # the task ran 5 s late
    pipe.pipeline.on_markout(body["venue"], body["symbol"], body["second"])
    _, record = pipe.service.report(OID)
    assert f"markout_1s_late@{order.fills[0].timestamp_ms}" in record.flags
    assert record.fills[0].markouts_bps[1] is not None  # still the best estimate there is


def test_a_markout_task_without_a_book_records_nothing_and_asks_to_be_retried():
    pipe = Pipe()
    _filled(pipe)
    pipe.pipeline.on_event(OID)
    pipe.book.quote = None
    _, body, _ = pipe.markouts()[0]
    with pytest.raises(MarketDataUnavailable):
        pipe.pipeline.on_markout(body["venue"], body["symbol"], body["second"])
    assert len(pipe.docs.get(OID).pending) == 4 and pipe.observed("markout") == []


def test_a_childs_fills_go_to_its_parents_document_and_the_row_waits_for_the_parent():
    pipe = Pipe()
    env = pipe.env
    parent = env.order("p-1", algorithm="twap", quantity=D(4))
    env.store.put(replace(parent, decision_mid=D(50000), arrival_mid=D(50000)))
    child = _filled(pipe, "c-1", parent_id=parent.order_id)
    assert pipe.pipeline.on_event(child.order_id) == "1 fills seen"
    # the child's own document (not the parent's: many children fill at once), naming its parent
    assert len(pipe.docs.get(child.order_id).fills) == 1 and pipe.docs.get(child.order_id).root_id == parent.order_id
    assert pipe.docs.get(parent.order_id) is None and pipe.rows == []  # the parent still works
    env.store.put(replace(env.store.get(parent.order_id), status=child.status, terminal_at=env.clock()))
    pipe.pipeline.on_event(parent.order_id)
    assert [r["order_id"] for r in pipe.rows] == [parent.order_id]
    assert pipe.rows[0]["algorithm"] == "twap" and pipe.rows[0]["filled_quantity"] == "2"
    assert pipe.rows[0]["complete"] is False  # the child's markouts are still due
    assert pipe.run_markouts() == 4  # the child's markouts complete the parent's row
    assert [(r["order_id"], r["version"], r["complete"]) for r in pipe.rows][-1] == (parent.order_id, 2, True)
    assert pipe.rows[-1]["markout_300s_bps"] is not None


def test_an_unknown_order_is_acknowledged_without_work():
    pipe = Pipe()
    assert pipe.pipeline.on_event("no-such-order") == "unknown order" and pipe.docs.docs == {}


def test_a_smart_router_parent_is_never_sampled_itself_only_its_childrens_fills():
    """The parent's fills are its children's, folded: sampling them again would double them and ask the book of
    a venue called "smart"."""
    pipe = Pipe()
    env = pipe.env
    parent = env.order("p-s", algorithm="smart", exchange="smart", quantity=D(2))
    child = _filled(pipe, "c-s", parent_id=parent.order_id)
    ended = replace(parent, status=child.status, terminal_at=env.clock(), fills=child.fills)  # folded copies
    env.store.put(ended)
    pipe.pipeline.on_event(child.order_id)
    pipe.pipeline.on_event(parent.order_id)
    assert all(venue != "smart" for venue, _ in pipe.book.reads)
    assert all(body["venue"] != "smart" for _, body, _ in pipe.markouts())
    assert pipe.docs.get(parent.order_id).fills == {}  # its row only; the fills live in the child's document
    assert [r["venue"] for r in pipe.rows] == ["smart"] and pipe.rows[0]["filled_quantity"] == "2"


def test_only_events_with_a_fill_or_an_end_are_worth_a_read():
    from shared.app.tca_pipeline import worth_a_look

    assert worth_a_look({"status": "partially_filled", "last_fill": {"trade_id": "t1"}})
    assert worth_a_look({"status": "canceled", "last_fill": None})  # the end: end mid, row, settled fills
    assert not worth_a_look({"status": "accepted", "last_fill": None})
    assert not worth_a_look({"status": "pending_cancel"})
