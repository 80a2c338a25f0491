"""The sweep's fan-out (shards, task names, paging with a cursor, follow-ups), the orphan search (open and already
filled venue orders that belong to no record) and the fencing of each order's one sync chain, against the fakes."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import shared.app.orders as orders_module
from shared.adapters.protocol import VenueStatus
from shared.domain.orders import S, TimeInForce, order_id_for
from shared.domain.reconcile import ReconcileTask, plan_sweep, shard_bounds, shard_of

from .test_order_service import CID, OID, Env

D = Decimal


@pytest.fixture
def env() -> Env:
    return Env()


# ---- planning -------------------------------------------------------------------------------------------
@given(st.one_of(st.text(max_size=40), st.builds(lambda h: f"ord_{h}", st.text("0123456789abcdef", max_size=24))),
       st.integers(1, 300))
def test_every_id_falls_in_exactly_one_shard_and_the_shard_its_range_says(order_id, shards):
    inside = [k for k in range(shards)
              if (lambda lo, hi: (lo is None or order_id >= lo) and (hi is None or order_id < hi))(
                  *shard_bounds(k, shards))]
    assert inside == [shard_of(order_id, shards)]


def test_order_ids_spread_over_the_shards():
    counts = [0] * 16
    for i in range(1600):
        counts[shard_of(order_id_for("s", f"c-{i}"), 16)] += 1
    assert min(counts) > 50  # a hash bucket: none empty, none holding most


def test_a_sweep_enqueues_one_task_per_venue_and_shard_and_one_orphan_search_per_venue(env):
    env.clock.now_ms = 60_000 * 1000 + 5
    result = env.svc.sweep()

    tasks = env.scheduler.reconciles
    assert result["tasks"] == len(tasks) == 2 * 16 + 1  # binance and the smart parents; binance's orphans
    assert {(t.kind, t.venue) for t in tasks} == {("shard", "binance"), ("shard", "smart"), ("orphans", "binance")}
    assert sorted(t.shard for t in tasks if t.venue == "smart") == list(range(16))
    assert all(t.run == 1000 for t in tasks) and tasks[0].name == "reconcile-binance-16-0-1000-p0"
    assert env.venue.calls == []  # the sweep call itself asks no venue anything


def test_a_duplicated_sweep_delivery_makes_no_second_set_of_tasks_and_the_next_minute_does(env):
    env.svc.sweep()
    first = len(env.scheduler.reconciles)
    env.clock.advance(1_000)
    assert env.svc.sweep()["tasks"] == first  # enqueued again, refused by name: nothing new
    assert len(env.scheduler.reconciles) == first
    env.clock.advance(60_000)
    env.svc.sweep()
    assert len(env.scheduler.reconciles) == 2 * first


def test_plan_names_are_deterministic():
    assert plan_sweep(["b", "a"], 2, 7) == plan_sweep(["a", "b"], 2, 7)
    assert ReconcileTask("orphans", "a", 7).name == "orphans-a-7"


# ---- shard tasks ----------------------------------------------------------------------------------------
def many_working(env: Env, n: int) -> list[str]:
    ids = []
    for i in range(n):
        env.working(f"c-{i}")
        ids.append(order_id_for("momentum_1", f"c-{i}"))
    return ids


def run_shard_tasks(env: Env) -> list[dict]:
    results, done = [], 0
    while done < len(env.scheduler.reconciles):
        task = env.scheduler.reconciles[done]
        done += 1
        if task.kind == "shard":
            results.append(env.svc.reconcile(task))
    return results


def test_a_shard_task_pages_to_the_end_and_refreshes_only_orders_out_of_step(env, monkeypatch):
    monkeypatch.setattr(orders_module, "RECONCILE_PAGE", 2)
    env.svc.reconcile_shards = 1
    ids = many_working(env, 7)
    env.venue.fill("c-3", "0.25")  # out of step: filled at the venue, not in the record
    env.venue.calls.clear()

    env.svc.sweep()
    [result] = [r for r in run_shard_tasks(env) if r["venue"] == "binance"]

    assert result["open_orders"] == 7 and result["refreshed"] == 1 and result["in_step"] == 6
    assert env.venue.methods().count("open_orders") == 1  # once for the whole task (its 4 pages)
    assert [c.client_order_id for c in env.venue.calls if c.method == "get"] == ["c-3"]
    assert env.store.peek(ids[3]).filled_quantity == D("0.25") and env.store.pages_read == 4 + 1  # and the smart parents' shard


def test_shards_split_the_orders_between_them_and_together_cover_each_once(env):
    env.svc.reconcile_shards = 4
    ids = many_working(env, 12)
    env.svc.sweep()
    results = [r for r in run_shard_tasks(env) if r["venue"] == "binance"]

    assert sum(r["open_orders"] for r in results) == 12
    for r in results:
        assert r["open_orders"] == sum(1 for i in ids if shard_of(i, 4) == r["shard"])


def test_a_document_of_any_id_form_is_covered(env):
    env.svc.reconcile_shards = 8
    env.working()
    legacy = replace(env.stored(), order_id="legacy-without-prefix")
    env.store.put(legacy)
    env.venue.fill(CID, "0.5")

    env.svc.sweep()
    checked = sum(r["open_orders"] for r in run_shard_tasks(env) if r["venue"] == "binance")

    assert checked == 2 and env.store.peek("legacy-without-prefix").filled_quantity == D("0.5")


def test_one_order_failing_never_stops_the_others(env, monkeypatch):
    env.svc.reconcile_shards = 1
    ids = many_working(env, 3)
    for cid in ("c-0", "c-1", "c-2"):
        env.venue.fill(cid, "0.1")
    refresh = env.svc._refresh

    def broken(order, every_leg=False):
        if order.order_id == ids[1]:
            raise RuntimeError("contended")
        return refresh(order, every_leg)

    monkeypatch.setattr(env.svc, "_refresh", broken)
    env.svc.sweep()
    [result] = [r for r in run_shard_tasks(env) if r["venue"] == "binance"]

    assert result["failed"] == 1 and result["refreshed"] == 2
    assert [env.store.peek(i).filled_quantity for i in ids] == [D("0.1"), D(0), D("0.1")]


def test_a_task_out_of_time_hands_the_rest_to_a_follow_up_from_its_cursor(env, monkeypatch):
    monkeypatch.setattr(orders_module, "RECONCILE_PAGE", 2)
    env.svc.reconcile_shards = 1
    ids = sorted(many_working(env, 5))
    for i in range(5):
        env.venue.fill(f"c-{i}", "0.1")
    refresh = env.svc._refresh

    def slow(order, every_leg=False):
        env.clock.advance(orders_module.RECONCILE_BUDGET_MS // 2)  # each venue read takes half the budget
        return refresh(order, every_leg)

    monkeypatch.setattr(env.svc, "_refresh", slow)
    env.svc.sweep()
    results = [r for r in run_shard_tasks(env) if r["venue"] == "binance"]

    assert [r["part"] for r in results] == [0, 1, 2]
    assert [r["open_orders"] for r in results] == [2, 2, 1]
    assert results[0]["continued_from"] == ids[1] and results[-1]["continued_from"] is None
    assert all(env.store.peek(i).filled_quantity == D("0.1") for i in ids)  # every one, once


# ---- orphans --------------------------------------------------------------------------------------------
def test_a_filled_venue_order_with_no_record_is_reported_once_with_its_trades(env):
    env.svc.venue_symbols = lambda venue: ["BTC/USDT", "ETH/USDT"]
    env.working()
    env.venue.fill(CID, "0.5")  # our own trade: not an orphan
    foreign = env.venue.add_foreign_order("by-hand-1")
    env.venue.fill("by-hand-1", "0.4")
    env.venue.fill("by-hand-1")  # filled: it is no longer in the open orders

    report = env.svc.find_orphans("binance")

    assert report["orphan_venue_orders"] == [{"exchange": "binance", "venue_order_id": foreign.venue_order_id,
                                              "client_order_id": "by-hand-1", "symbol": "ETH/USDT",
                                              "status": "filled", "trades": 2}]
    assert ("orphan_venue_orders", 1, {"venue": "binance", "status": "filled"}) in env.metrics.count_labels
    assert report["trades_scanned"] == 3
    again = env.svc.find_orphans("binance")  # past the watermark now
    assert again["orphan_venue_orders"] == [] and again["trades_scanned"] == 0


def test_a_trade_of_a_record_that_does_not_know_its_venue_order_id_yet_is_not_an_orphan(env):
    env.svc.venue_symbols = lambda venue: ["BTC/USDT"]
    env.venue.on_place(fill="all")
    env.create()
    order = env.run_submit()
    assert order.status is S.FILLED
    # the answer was lost: the record holds the leg by client id only
    env.store.put(replace(order, venue_order_id=None, legs=tuple(replace(leg, venue_order_id=None)
                                                                 for leg in order.legs)))

    assert env.svc.find_orphans("binance")["orphan_venue_orders"] == []


def test_an_open_orphan_is_reported_by_the_sweep_result(env):
    env.add_foreign = env.venue.add_foreign_order("manual-9", symbol="BTC/USDT")
    result = env.sweep()
    assert [o["client_order_id"] for o in result["orphan_venue_orders"]] == ["manual-9"]


def test_a_venue_order_still_open_under_a_closed_record_is_not_an_orphan(env):
    order = env.working()
    env.store.put(replace(order, status=S.CANCELED))  # the record closed, the venue still lists it
    assert env.svc.find_orphans("binance")["orphan_venue_orders"] == []  # it belongs to a record (looked up)


def test_an_orphan_search_out_of_time_hands_the_rest_to_a_follow_up_and_misses_none(env, monkeypatch):
    monkeypatch.setattr(orders_module, "ORPHAN_LOOKUP_CHUNK", 2)
    for i in range(3):
        env.working(f"mine-{i}")
    foreign = [env.venue.add_foreign_order(f"by-hand-{i}", symbol="BTC/USDT").client_order_id for i in range(6)]
    lookups = env.store.known_venue_keys
    asked: list[str] = []

    def slow(keys):  # every lookup takes longer than the budget
        asked.extend(keys)
        env.clock.advance(orders_module.RECONCILE_BUDGET_MS)
        return lookups(keys)

    env.store.known_venue_keys = slow
    found, parts = [], 0
    task = ReconcileTask("orphans", "binance", 1)
    while task is not None:
        result = env.svc.reconcile(task)
        parts += 1
        found += [o["client_order_id"] for o in result["orphan_venue_orders"]]
        task = env.scheduler.reconciles[-1] if result["continued_from"] is not None else None
        assert task is None or task.name == f"orphans-binance-1-p{parts}"
    assert sorted(found) == sorted(foreign) and parts == 3  # 6 candidates, 2 a part
    assert len(asked) == 6  # our 3 open records' venue orders are known from one scan, never looked up
    assert "trades_scanned" in result  # the last part also scanned the account's trades


# ---- one sync chain per order ---------------------------------------------------------------------------
def test_an_order_has_one_chain_whoever_asks_for_a_look(env):
    env.working()
    chains = {t.chain for t in env.scheduler.syncs if t.chain is not None}
    env.svc._schedule_sync(env.stored(), 0)  # e.g. a cancel or a modify wanting a look soon
    env.svc._schedule_sync(env.stored(), 1)

    assert chains == {1} and {t.chain for t in env.scheduler.syncs if t.chain is not None} == {1}
    assert [t.chain for t in env.scheduler.syncs[-2:]] == [None, None]  # one-off looks, not chains


def test_a_one_off_sync_never_reschedules_itself(env):
    env.working()
    scheduled = len(env.scheduler.syncs)
    env.venue.fill(CID, "0.1")

    assert env.svc.sync(OID, attempt=0).filled_quantity == D("0.1")
    assert len(env.scheduler.syncs) == scheduled


def test_a_duplicated_chain_task_makes_one_next_task(env):
    env.working()
    task = env.scheduler.syncs[-1]
    env.svc.sync(OID, attempt=task.attempt, chain=task.chain)
    env.svc.sync(OID, attempt=task.attempt, chain=task.chain)  # delivered twice (at least once)

    nexts = [t for t in env.scheduler.syncs if t.attempt == task.attempt + 1]
    assert len(nexts) == 1 and nexts[0].chain == task.chain


def test_a_dead_chain_is_replaced_and_its_late_task_is_a_no_op(env):
    env.working()
    old = env.scheduler.syncs[-1]
    env.clock.advance(orders_module.SYNC_LEASE_MS + orders_module.SYNC_LEASE_GRACE_MS + 1_000)  # its task was lost
    env.sweep()  # the sweep's one-off look starts a new chain

    new = [t for t in env.scheduler.syncs if t.chain not in (None, old.chain)]
    assert [t.chain for t in new] == [2] and env.stored().sync_chain == 2
    env.venue.calls.clear()
    scheduled = len(env.scheduler.syncs)
    env.svc.sync(OID, attempt=old.attempt, chain=old.chain)  # the old chain's task turns up after all
    assert env.venue.calls == [] and len(env.scheduler.syncs) == scheduled


def test_a_live_chain_is_left_alone_by_the_sweep(env):
    env.working()
    env.sweep()
    assert {t.chain for t in env.scheduler.syncs if t.chain is not None} == {1}


def test_a_chain_costs_a_write_about_once_a_lease_not_once_a_poll(env):
    env.working(time_in_force=TimeInForce.GTD, expire_at=env.clock() + 3_600_000)
    writes = env.store.writes
    polls = 0
    while env.clock() < env.stored().created_at + 10 * orders_module.SYNC_LEASE_MS:
        task = env.scheduler.syncs[-1]
        env.clock.advance(int(task.delay_s * 1000))
        env.svc.sync(OID, attempt=task.attempt, chain=task.chain)
        polls += 1
    assert env.stored().status is S.ACCEPTED and env.venue.order(CID).status is VenueStatus.OPEN
    assert polls > 20 and env.store.writes - writes <= 11
