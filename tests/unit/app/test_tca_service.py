"""The TCA of real orders: what the service recorded (decision mid, arrival touch, fills) and the venue's tape,
turned into costs. The order path runs over the fakes; the tape is scripted."""

from __future__ import annotations

from decimal import Decimal as D

from dataclasses import replace

from shared.adapters.protocol import ErrorCode, PublicTrade
from shared.domain.orders import Order
from shared.domain.orders import Status as S
from shared.app.tca import Samples, TcaService, fill_key, market_json

from .fakes import venue_error
from .test_order_service import OID, Env, Touches


class ScriptedTape:
    def __init__(self, trades=(), fail=False):
        self.trades, self.fail, self.asked = list(trades), fail, []

    def tape(self, venue, symbol, since_ms, until_ms):
        self.asked.append((venue, symbol, since_ms, until_ms))
        if self.fail:
            raise venue_error(ErrorCode.VENUE_UNAVAILABLE, "no tape")
        return [t for t in self.trades if since_ms <= t.timestamp_ms <= until_ms]


def _filled_at_once(tape: ScriptedTape) -> tuple[Env, TcaService]:
    env = Env(quote_ahead=Touches((D("49990"), D("50010")), (D("49995"), D("50005"))))
    env.venue.on_place(fill="all")  # a marketable limit: filled by the placement, at its limit 50000
    env.create(quantity=D("2"))
    env.run_submit()
    return env, TcaService(store=env.store, market=tape, clock=env.clock)


def test_an_order_filled_at_once_is_costed_against_what_was_recorded():
    env, service = _filled_at_once(ScriptedTape())
    order = env.stored()
    trade = order.fills[0].trade_id
    service.market.trades = [PublicTrade(trade_id=trade, timestamp_ms=order.fills[0].timestamp_ms,
                                         price=D(50000), quantity=D(2)),
                             PublicTrade(trade_id="other", timestamp_ms=order.fills[0].timestamp_ms,
                                         price=D(49980), quantity=D(6))]
    _, r = service.report(OID)
    assert r.filled_quantity == D(2) and r.average_price == D(50000)
    assert r.arrival_cost_bps == D(0)  # filled at the arrival mid 50000 (touch 49995/50005)
    assert r.shortfall.delay == D(0)  # decided at a mid of 50000 too
    fill = r.fills[0]
    assert fill.quoted_spread_bps == D(2) and fill.effective_spread_bps == D(0)  # quoted at the arrival touch
    # interval VWAP (50000*2 + 49980*6)/8 = 49985; without ours 49980
    assert r.interval_vwap == D(49985) and r.interval_vwap_ex_ours == D(49980)
    assert r.participation == D("0.25")
    assert r.fees == order.fills[0].fee and r.taker_share == D(1)
    assert r.markouts_bps[1] is None and "markout_1s_pending" in r.flags  # the pipeline has sampled nothing


def test_markout_samples_reach_the_record():
    env, service = _filled_at_once(ScriptedTape())
    order = env.stored()
    key = fill_key(order.exchange, order.fills[0].trade_id)
    service.samples = lambda order_ids, root_id: Samples(mids={key: {1: D(50010), 10: D(49990)}})
    _, r = service.report(OID)
    assert (r.markouts_bps[1], r.markouts_bps[10]) == (D(2), D(-2))  # a buy at 50000: +1 bps = in our favour


def test_without_the_tape_the_benchmarks_are_flagged_not_zero():
    env, service = _filled_at_once(ScriptedTape(fail=True))
    _, r = service.report(OID)
    assert r.interval_vwap_cost_bps is None and r.participation is None and "no_tape" in r.flags
    assert r.arrival_cost_bps == D(0)  # what does not need the tape is still there


def _parent_with_two_filled_children(apart_ms: int = 0) -> tuple[Env, Order, TcaService]:
    """A TWAP parent of 3 whose children c-0 (1 @ 101) and c-1 (2 @ 102) filled, `apart_ms` apart."""
    env = Env()
    parent = env.order("p-1", algorithm="twap", quantity=D(3))
    env.store.put(replace(parent, decision_mid=D(100), arrival_mid=D(100), symbol="BTC/USDT"))
    for i, (qty, px) in enumerate([(D(1), D(101)), (D(2), D(102))]):
        env.venue.on_place(fill="all")
        env.create(f"c-{i}", quantity=qty, price=px, parent_id=parent.order_id)
        env.run_submit()
        env.clock.advance(apart_ms)
    return env, parent, TcaService(store=env.store, market=ScriptedTape(), clock=env.clock)


def test_a_parent_is_costed_over_all_of_its_children():
    env, parent, service = _parent_with_two_filled_children()
    _, r = service.report(parent.order_id)
    assert r.filled_quantity == D(3) and r.average_price == D("101.666666666667")  # 305 / 3
    assert r.shortfall.execution == D(1) + D(4)  # 1*(101-100) + 2*(102-100)


def test_the_pre_trade_markout_comes_from_the_tape_ten_seconds_before_and_says_so():
    env, service = _filled_at_once(ScriptedTape())
    order = env.stored()
    at = order.fills[0].timestamp_ms
    service.market.trades = [PublicTrade(trade_id="t-25", timestamp_ms=at - 25_000, price=D(49000), quantity=D(1)),
                             PublicTrade(trade_id="t-12", timestamp_ms=at - 12_000, price=D(49950), quantity=D(1)),
                             PublicTrade(trade_id="t-5", timestamp_ms=at - 5_000, price=D(49900), quantity=D(1))]
    _, r = service.report(OID)
    # the last trade at or before t-10 s, within 10 s of it: 49950 (t-25 s is too old, t-5 s too late)
    assert r.markouts_bps[-10] == D(-10) and "markout_-10s_from_tape" in r.flags  # a buy at 50000: s*(m-p)/p
    assert r.interval_vwap is None  # the earlier trades are outside the working window
    asked_since = service.market.asked[-1][2]
    assert asked_since <= at - 20_000


def test_a_cancelled_order_has_its_cancel_latency():
    env = Env()
    env.working()
    env.clock.advance(40)
    requested = env.clock()
    assert env.svc.cancel(OID).status is S.CANCELED
    order = env.stored()
    service = TcaService(store=env.store, market=ScriptedTape(), clock=env.clock)
    _, r = service.report(OID)
    assert order.cancel_requested_at == requested
    assert r.latencies_ms["cancel_to_confirm"] == order.terminal_at - requested


def test_an_order_never_cancelled_has_no_cancel_latency():
    env, service = _filled_at_once(ScriptedTape())
    _, r = service.report(OID)
    assert env.stored().cancel_requested_at is None and r.latencies_ms["cancel_to_confirm"] is None


def test_the_market_samples_behind_a_record_name_each_fills_venue_and_every_mid_measured():
    """What a chart of the order may draw (GET /orders/{id}/tca ``market``): the record's fills in its order, each
    with its venue and venue order, and the mids the service has: decision, arrival, fill touch, markouts."""
    env, service = _filled_at_once(ScriptedTape())
    order = env.stored()
    fill = order.fills[0]
    service.samples = lambda order_ids, root_id: Samples(mids={fill_key(order.exchange, fill.trade_id):
                                                               {1: D(50010), 10: D(49990)}})
    analysis = service.analysis(OID)
    doc = market_json(analysis)
    (got,) = doc["fills"]
    assert got["venue"] == order.exchange and got["order_id"] == OID and got["trade_id"] == fill.trade_id
    assert (got["quantity"], got["price"], got["timestamp"]) == (fill.quantity, fill.price, fill.timestamp_ms)
    assert (got["quantity"], got["price"]) == (analysis.record.fills[0].quantity, analysis.record.fills[0].price)
    assert (got["bid"], got["ask"]) == (D(49995), D(50005)) and got["mids"] == {"1": D(50010), "10": D(49990)}
    sources = [(m["source"], m["mid"]) for m in doc["mids"]]
    assert ("decision", order.decision_mid) in sources and ("arrival", D(50000)) in sources
    assert ("fill_touch", D(50000)) in sources
    assert ("markout_1s", D(50010)) in sources and ("markout_10s", D(49990)) in sources
    assert [m["at"] for m in doc["mids"]] == sorted(m["at"] for m in doc["mids"])
    later = {m["source"]: m["at"] for m in doc["mids"]}
    assert later["markout_10s"] == fill.timestamp_ms + 10_000


def test_a_parents_market_samples_name_the_child_each_fill_came_from():
    env, parent, service = _parent_with_two_filled_children(apart_ms=1000)
    doc = market_json(service.analysis(parent.order_id))
    children = {o.client_order_id: o for o in env.store.list({"parent_id": parent.order_id}, 10, None).orders}
    assert [(f["order_id"], f["quantity"], f["price"]) for f in doc["fills"]] == [
        (children["c-0"].order_id, D(1), D(101)), (children["c-1"].order_id, D(2), D(102))]
