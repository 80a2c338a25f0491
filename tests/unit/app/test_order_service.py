"""OrderService (shared/app/orders.py) and signal intake (shared/app/signals.py) against in-memory fakes.

Pure unit tests: no network, no Redis, no emulators, no sleeping; time is a FakeClock. Several tests began as
proofs of defects (a crash when flagging, fills lost when a cancel raced the placement, an event gap after a
timeout, a hot loop past expiry, a lost cancel, modify races, sweep miscounting, signals escaping validation);
they now guard the fixes.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.protocol import ErrorCode, TimeInForce as VenueTif, VenueStatus
from shared.app.orders import NOT_FOUND_LIMIT, STUCK_NEW_MS, UNKNOWN_OUTCOME_HORIZON_MS, Conflict, OrderService
from shared.app.ports import Contended, OrderNotFound
from shared.app.signals import intake
from shared.domain.orders import (
    S,
    IllegalTransition,
    InvalidOrder,
    Order,
    OrderType,
    Side,
    TimeInForce,
    client_order_id_for_signal,
    day_end_ms,
    order_id_for,
    replacement_client_order_id,
)
from shared.domain.tca import Quote

from .fakes import Fakes, SubmitTask, SyncTask

D = Decimal
CID = "c-1"
OID = order_id_for("momentum_1", CID)


# ---- building orders and running the service's tasks ------------------------------------------------------
def make_order(created_at: int, client_order_id: str = CID, **kw) -> Order:
    fields = dict(order_id=order_id_for("momentum_1", client_order_id), client_order_id=client_order_id,
                  strategy_id="momentum_1",
                  exchange="binance", symbol="BTC/USDT", side=Side.BUY, quantity=D("1"), order_type=OrderType.LIMIT,
                  price=D("50000"), time_in_force=TimeInForce.GTC, created_at=created_at, updated_at=created_at)
    fields.update(kw)
    return Order(**fields)


class Env(Fakes):
    """The fakes plus an OrderService over them, and shortcuts that run the tasks the service schedules."""

    def __init__(self, **service_kw) -> None:
        super().__init__()
        self.svc = OrderService(store=self.store, cache=self.cache, events=self.publisher, scheduler=self.scheduler,
                                venues={"binance": self.venue}, metrics=self.metrics, clock=self.clock, **service_kw)

    def order(self, client_order_id: str = CID, **kw) -> Order:
        return make_order(self.clock(), client_order_id, **kw)

    def create(self, client_order_id: str = CID, **kw) -> Order:
        order, created = self.svc.create(self.order(client_order_id, **kw))
        assert created
        return order

    def run_submit(self, task: SubmitTask | None = None) -> Order:
        task = task or self.scheduler.submits[-1]
        return self.svc.submit(task.order_id, attempt=task.attempt)

    def run_submits_until_done(self, limit: int = 50) -> Order:
        """Run each newly scheduled submission task (advancing the clock by its delay) until none is left."""
        done = 0
        order = self.run_submit()
        while len(self.scheduler.submits) > done + 1 and limit:
            done += 1
            task = self.scheduler.submits[done]
            self.clock.advance(int(task.delay_s * 1000))
            order = self.run_submit(task)
            limit -= 1
        return order

    def run_sync(self) -> Order:
        task = self.scheduler.syncs[-1]
        return self.svc.sync(task.order_id, attempt=task.attempt, chain=task.chain)

    def sweep(self) -> dict:
        """A sweep and every reconcile task it fans out (follow-ups too), run at once; their counts summed."""
        done = len(self.scheduler.reconciles)
        result = dict(self.svc.sweep())
        orphans: list[dict] = []
        totals = {"resubmitted": 0, "refreshed": 0, "in_step": 0, "open_orders": 0, "failed": result["failed"]}
        while done < len(self.scheduler.reconciles):
            out = self.svc.reconcile(self.scheduler.reconciles[done])
            done += 1
            for key in totals:
                totals[key] += out.get(key, 0)
            orphans += out.get("orphan_venue_orders", [])
        return {**result, **totals, "orphan_venue_orders": orphans}

    def working(self, client_order_id: str = CID, **kw) -> Order:
        """Created and resting at the venue (accepted)."""
        self.create(client_order_id, **kw)
        order = self.run_submit()
        assert order.status is S.ACCEPTED
        return order

    def stored(self, order_id: str = OID) -> Order:
        return self.store.peek(order_id)

    def statuses(self, order_id: str = OID) -> list[str]:
        """Every status published, duplicates included."""
        return self.publisher.statuses(order_id)

    def story(self, order_id: str = OID) -> list[str]:
        """The statuses a consumer that drops duplicates (by sequence) sees."""
        seen: dict[int, str] = {}
        for event in self.publisher.published:
            if event["order_id"] == order_id:
                seen.setdefault(event["sequence"], event["status"])
        return list(seen.values())


@pytest.fixture
def env() -> Env:
    return Env()


def first_seen(seqs: list[int]) -> list[int]:
    return list(dict.fromkeys(seqs))


# ============================================ create ========================================================
def test_create_stores_once_and_schedules_submission_which_publishes_new(env):
    order, created = env.svc.create(env.order())

    assert created and order.status is S.NEW
    assert env.stored() == order and env.store.writes == 1
    assert env.scheduler.submits == [SubmitTask(OID, attempt=0, delay_s=0)]
    assert env.venue.calls == []  # submission is the task's job
    # The `new` event waits in the outbox (committed with the order): the answer does not wait for a publish.
    assert env.publisher.published == [] and [e["sequence"] for e in env.store.outbox(OID)] == [1]
    env.run_submit()
    assert env.publisher.sequences(OID)[0] == 1 and env.statuses()[0] == "new"


@pytest.mark.parametrize(("changes", "field"), [
    (dict(quantity=D("-1")), "quantity"),
    (dict(quantity=D("0")), "quantity"),
    (dict(quantity=D("NaN")), "quantity"),
    (dict(symbol="btcusdt"), "symbol"),
    (dict(price=None), "price"),  # a limit order needs a price
    (dict(order_type=OrderType.MARKET), "price"),  # a market order must not have one
    (dict(time_in_force=TimeInForce.GTD), "expire_at"),
    (dict(client_order_id="has spaces"), "client_order_id"),
    (dict(exchange="kraken"), "exchange"),
], ids=["negative-qty", "zero-qty", "nan-qty", "symbol", "limit-no-price", "market-with-price", "gtd-no-expiry",
        "client-id", "unknown-exchange"])
def test_create_refuses_an_invalid_order_and_records_nothing(env, changes, field):
    with pytest.raises(InvalidOrder) as info:
        env.svc.create(env.order(**changes))

    assert field in [f for f, _ in info.value.problems]
    assert env.store.docs == {} and env.publisher.published == [] and env.scheduler.submits == []


def test_create_names_the_known_venues_for_an_unknown_exchange(env):
    with pytest.raises(InvalidOrder, match=r"unknown venue 'kraken'; known: binance"):
        env.svc.create(env.order(exchange="kraken"))


def test_create_refuses_a_gtd_expiry_that_is_not_in_the_future(env):
    with pytest.raises(InvalidOrder, match="expire_at: must be in the future"):
        env.svc.create(env.order(time_in_force=TimeInForce.GTD, expire_at=env.clock()))


def only_the_first_submission_task(env: Env) -> bool:
    """Every submission task scheduled is attempt 0 of the one order: production's Cloud Tasks names it
    submit-{order_id}-0 and drops the repeats."""
    return {(t.order_id, t.attempt, t.delay_s) for t in env.scheduler.submits} == {(OID, 0, 0)}


def test_creating_the_same_order_again_returns_the_existing_one(env):
    first = env.create()
    env.clock.advance(5_000)

    again, created = env.svc.create(env.order())  # same client order id, later

    assert not created and again == first
    assert len(env.store.docs) == 1 and env.store.writes == 1
    assert env.statuses() == []  # the `new` event goes out with the submission
    assert only_the_first_submission_task(env)  # re-scheduled while NEW (a crash may have lost it), nothing new


def test_a_repeat_with_other_terms_is_a_conflict_naming_the_fields(env):
    env.create()

    with pytest.raises(Conflict) as err:
        env.svc.create(env.order(quantity=D("2"), price=D("49000")))

    assert {name for name, _ in err.value.problems} == {"quantity", "price"}
    assert len(env.store.docs) == 1 and env.stored().quantity == D("1")  # the first order is untouched


def test_another_strategy_may_reuse_a_client_order_id(env):
    first = env.create()

    other, created = env.svc.create(env.order(order_id=order_id_for("other", CID), strategy_id="other"))

    assert created and other.order_id != first.order_id and len(env.store.docs) == 2


def test_a_duplicate_of_a_submitted_order_schedules_nothing(env):
    env.working()
    scheduled = (list(env.scheduler.submits), list(env.scheduler.syncs))

    again, created = env.svc.create(env.order())

    assert not created and again.status is S.ACCEPTED
    assert (env.scheduler.submits, env.scheduler.syncs) == scheduled
    assert env.venue.created == [CID]


def test_with_the_cache_down_create_is_still_idempotent_through_the_store(env):
    env.cache.down = True
    first = env.create()

    again, created = env.svc.create(env.order())

    assert not created and again == first
    assert env.store.writes == 1 and env.store.reads == 1  # the duplicate is read back from the store
    assert only_the_first_submission_task(env)


def test_events_a_failed_submission_publish_left_go_out_with_the_next_change(env):
    env.create()
    env.publisher.fail_from(1)
    env.run_submit()  # resting: new, pending_submit, accepted all stay in the outbox
    assert [e["sequence"] for e in env.store.outbox(OID)] == [1, 2, 3]
    env.publisher.heal()

    env.svc.cancel(OID)

    assert first_seen(env.publisher.sequences(OID)) == [1, 2, 3, 4, 5]
    assert env.store.outbox(OID) == []


def test_get_reads_through_the_cache(env):
    env.cache.down = True
    order = env.create()
    env.cache.down = False

    assert env.svc.get(OID) == order and env.cache.orders[OID] == order
    with pytest.raises(OrderNotFound):
        env.svc.get("ord_missing")


# ============================================ submit ========================================================
def test_a_marketable_order_fills_in_one_update_with_its_events_in_sequence(env, caplog):
    caplog.set_level("INFO", logger="shared.app.orders")
    env.venue.on_place(fill="all")
    env.create()
    updates_before = env.store.updates

    order = env.run_submit()

    assert order.status is S.FILLED and env.stored() == order
    assert env.store.updates - updates_before == 2  # the placement intent, then the venue's answer
    assert env.statuses() == ["new", "pending_submit", "accepted", "filled"]
    assert env.publisher.sequences(OID) == [1, 2, 3, 4]
    assert env.store.outbox(OID) == []  # all marked published
    assert order.filled_quantity == D("1") and order.average_price == D("50000") and order.commission == D("50")
    assert order.venue_order_id == "v1" and order.terminal_at == env.clock()
    assert env.scheduler.syncs == []  # nothing left to watch
    assert [m for m, *_ in env.metrics.observations] == ["submit_latency", "venue_ack_latency"]
    (line,) = [r for r in caplog.records if r.getMessage() == "venue acknowledged"]
    order = env.stored()
    assert line.fields == {"venue": "binance", "ack_latency_ms": order.acknowledged_at - order.submitted_at}
    assert [s for s, _, _ in env.metrics.events] == ["new", "pending_submit", "accepted", "filled"]


def test_a_simple_filled_order_costs_four_store_writes(env):
    env.venue.on_place(fill="all")
    env.create()
    env.run_submit()

    # create, the placement intent (recorded before the venue is called), the venue's answer, the publish mark
    assert env.store.writes == 4
    assert env.store.reads == 4  # the submit task's fresh read, two transactions' reads, the publish mark's


def test_a_resting_order_ends_accepted_and_is_synced(env):
    env.create(time_in_force=TimeInForce.GTD, expire_at=env.clock() + 3_600_000)

    order = env.run_submit()

    assert order.status is S.ACCEPTED and order.venue_order_id == "v1"
    assert order.acknowledged_at == env.clock() and order.submitted_at == env.clock()
    assert env.statuses() == ["new", "pending_submit", "accepted"]
    assert env.scheduler.syncs == [SyncTask(OID, attempt=0, delay_s=0.5, chain=1)]  # its one sync chain
    sent = env.venue.placed()[0]
    assert (sent.client_order_id, sent.quantity, sent.price) == (CID, D("1"), D("50000"))
    assert sent.time_in_force is VenueTif.GTC  # GTD goes out as GTC: the service expires it


def test_a_duplicate_submit_task_for_a_submitted_order_does_nothing(env):
    env.working()
    calls, writes = len(env.venue.calls), env.store.writes

    order = env.svc.submit(OID, attempt=0)

    assert order.status is S.ACCEPTED
    assert len(env.venue.calls) == calls and env.store.writes == writes


def test_submit_of_an_unknown_order_raises_not_found(env):
    with pytest.raises(OrderNotFound):
        env.svc.submit("ord_missing")


def test_a_final_venue_error_rejects_the_order_with_the_venues_reason(env, caplog):
    caplog.set_level("INFO", logger="shared.app.orders")
    env.create()
    env.venue.fail("place", ErrorCode.INSUFFICIENT_FUNDS, message="balance 12.5 USDT")

    order = env.run_submit()

    assert order.status is S.REJECTED
    assert order.reason == "venue refused: insufficient_funds: balance 12.5 USDT"
    assert env.statuses() == ["new", "pending_submit", "rejected"]
    assert len(env.scheduler.submits) == 1 and env.scheduler.syncs == []
    # counted once, by the venue's code (a bounded label), not the free text
    assert [c for c in env.metrics.count_labels if c[0] == "rejects"] == [
        ("rejects", 1, {"venue": "binance", "reason": "insufficient_funds"})]
    # and the log line Cloud Monitoring counts (terraform/monitoring.tf; tests/terraform/tfcheck.py TCA_LOG_MESSAGES)
    (line,) = [r for r in caplog.records if r.getMessage() == "order rejected"]
    assert line.fields == {"venue": "binance", "reject_reason": "insufficient_funds"}


def test_a_retryable_error_schedules_the_next_attempt_with_backoff(env):
    env.create()
    env.venue.fail("place", ErrorCode.RATE_LIMITED)

    order = env.run_submit()

    assert order.status is S.PENDING_SUBMIT and order.intent is None  # certainly not at the venue
    assert order.live_legs == ()
    assert env.scheduler.submits[-1] == SubmitTask(OID, attempt=1, delay_s=0.5)
    assert env.metrics.counts["submit_retries"] == 1

    order = env.run_submit()  # the retry goes through
    assert order.status is S.ACCEPTED and env.venue.created == [CID]


def test_retryable_errors_reject_the_order_once_the_retries_are_used_up(env):
    env.create()
    env.venue.fail("place", ErrorCode.VENUE_UNAVAILABLE, times=100, message="maintenance")

    order = env.run_submits_until_done()

    retries = env.svc.max_retries
    assert order.status is S.REJECTED
    assert order.reason == f"venue unreachable after {retries + 1} attempts: venue_unavailable: maintenance"
    assert [c[2]["reason"] for c in env.metrics.count_labels if c[0] == "rejects"] == ["unreachable"]
    assert env.venue.methods().count("place") == retries + 1  # the first attempt and max_retries retries
    assert [t.attempt for t in env.scheduler.submits] == list(range(retries + 1))
    delays = [t.delay_s for t in env.scheduler.submits[1:]]
    assert delays == [0.5, 1, 2, 4, 8] and delays == sorted(delays)
    assert env.venue.created == []


@pytest.mark.parametrize("reached_the_venue", [True, False], ids=["timeout-after-arrival", "timeout-before"])
def test_after_an_unknown_outcome_the_order_is_looked_up_before_it_is_placed_again(env, reached_the_venue):
    env.create()
    env.venue.fail("place", ErrorCode.TIMEOUT, took_effect=reached_the_venue)

    order = env.run_submit()

    assert order.status is S.PENDING_SUBMIT  # it may be at the venue
    assert env.scheduler.submits[-1].attempt == 1
    calls_before_retry = len(env.venue.calls)

    order = env.run_submit()
    if not reached_the_venue:
        # Not found yet is not an answer: the placement could still arrive. Only once it no longer can
        # (UNKNOWN_OUTCOME_HORIZON_MS) is the same venue client id sent again.
        assert order.status is S.PENDING_SUBMIT and env.venue.methods()[calls_before_retry:] == ["get"]
        assert env.scheduler.submits[-1].delay_s * 1000 >= UNKNOWN_OUTCOME_HORIZON_MS - 1
        env.clock.advance(UNKNOWN_OUTCOME_HORIZON_MS)
        order = env.run_submit()

    retry_calls = env.venue.methods()[calls_before_retry:]
    assert retry_calls[0] == "get"  # looked up first
    assert retry_calls == (["get", "fills"] if reached_the_venue else ["get", "get", "place"])
    assert env.venue.created == [CID]  # exactly one venue order for the client order id
    assert order.status is S.ACCEPTED
    assert env.statuses() == ["new", "pending_submit", "accepted"]


def test_an_unknown_outcome_that_persists_flags_the_order_and_never_rejects_it(env):
    env.create()
    env.venue.fail("place", ErrorCode.TIMEOUT, message="no answer in 10s")
    env.venue.fail("get", ErrorCode.TIMEOUT, times=100, message="no answer in 10s")  # lookups get no answer

    order = env.run_submits_until_done(limit=env.svc.max_retries + 2)

    assert order.status is S.PENDING_SUBMIT and order.status is not S.REJECTED
    assert order.attention and "placement outcome unknown" in order.attention
    assert env.venue.methods().count("place") == 1  # never sent again while its outcome is unknown
    assert set(env.venue.methods()[1:]) == {"get"}


def test_placements_that_definitely_never_arrived_are_rejected_after_the_attempts(env):
    env.create()
    env.venue.fail("place", ErrorCode.TIMEOUT, times=100, message="no answer in 10s")

    order = env.run_submits_until_done(limit=200)

    assert order.status is S.REJECTED and "never reached the venue" in order.reason
    assert env.venue.created == []
    # each attempt was sent only after the previous one could no longer arrive, and looked up first
    assert env.venue.methods().count("place") == env.svc.max_retries + 1


def test_a_crash_after_placing_does_not_place_twice_when_the_task_is_retried(env):
    env.create()
    env.store.fail_next_update(RuntimeError("firestore unavailable"))

    with pytest.raises(RuntimeError):
        env.run_submit()
    order = env.run_submit()  # the queue retries the same task

    assert order.status is S.ACCEPTED and env.venue.created == [CID]


def test_an_order_cancelled_while_it_is_being_placed_is_cancelled_at_the_venue(env):
    env.create()
    env.venue.during("place", lambda: env.svc.cancel(OID))

    order = env.run_submit()

    assert order.status is S.CANCELED
    assert env.venue.order(CID).status is VenueStatus.CANCELED
    # pending_cancel while the placement was in flight; cancelled once the venue had it
    assert env.story() == ["new", "pending_submit", "pending_cancel", "canceled"]


def test_an_order_cancelled_while_placed_but_filled_by_the_venue_keeps_its_fill(env):
    env.create()
    env.venue.on_place(fill="all")  # marketable: filled before any cancel could reach the venue
    env.venue.during("place", lambda: env.svc.cancel(OID))

    order = env.run_submit()

    assert order.filled_quantity == D("1")  # the money moved
    assert order.status is S.FILLED  # CANCELED -> FILLED is in the table for exactly this


def test_an_unpublished_pending_submit_event_is_not_dropped_by_the_retry(env):
    env.create()
    env.venue.fail("place", ErrorCode.TIMEOUT)
    env.publisher.fail_from(1)  # the pending_submit event does not go out
    env.run_submit()
    env.publisher.heal()

    order = env.run_submit()
    env.svc.sweep()

    assert first_seen(env.publisher.sequences(OID)) == list(range(1, order.sequence + 1))


# ============================================ sync ==========================================================
def test_sync_applies_each_new_fill_once(env):
    env.working()
    env.venue.fill(CID, "0.4")

    order = env.run_sync()
    assert order.status is S.PARTIALLY_FILLED and order.filled_quantity == D("0.4")
    writes, events = env.store.writes, len(env.publisher.published)

    for _ in range(3):  # the same report again and again
        order = env.run_sync()
    assert order.filled_quantity == D("0.4") and len(order.fills) == 1
    assert env.store.writes == writes and len(env.publisher.published) == events

    env.venue.fill(CID)  # the rest
    order = env.run_sync()
    assert order.status is S.FILLED and order.filled_quantity == D("1") and len(order.fills) == 2
    assert env.statuses() == ["new", "pending_submit", "accepted", "partially_filled", "filled"]
    assert env.publisher.published[-1]["last_fill"]["quantity"] == "0.6"


def test_a_cancel_answered_ahead_of_the_trades_list_settles_once_the_trades_arrive(env):
    """The venue cancels at 0.7 filled while its trades list shows 0.4: the order waits in pending_cancel, and
    the next sync reads the lagging fills and closes it with all 0.7 (it must not wait for a live leg to cancel:
    there is none left)."""
    venue_order_id = env.working().venue_order_id
    env.venue.fill(CID, "0.4")
    env.run_sync()
    env.venue.fill(CID, "0.3")
    late = env.venue.trades[venue_order_id].pop()  # not in the trades list yet
    assert env.svc.cancel(OID).status is S.PENDING_CANCEL

    env.venue.trades[venue_order_id].append(late)  # the trades list caught up
    order = env.run_sync()
    assert order.status is S.CANCELED and order.filled_quantity == D("0.7"), (order.status, order.filled_quantity)
    assert len(order.fills) == 2


def test_sync_reschedules_with_growing_delays_until_the_order_is_terminal(env):
    env.working()
    for _ in range(8):
        env.clock.advance(int(env.scheduler.syncs[-1].delay_s * 1000))
        env.run_sync()

    assert [t.attempt for t in env.scheduler.syncs] == list(range(9))
    assert [t.delay_s for t in env.scheduler.syncs] == [0.5, 1, 2, 4, 8, 15, 30, 30, 30]

    env.venue.set_status(CID, VenueStatus.CANCELED)
    scheduled = len(env.scheduler.syncs)
    assert env.run_sync().status is S.CANCELED
    # terminal: only the bounded late-fill re-checks follow, then nothing
    assert [(t.attempt, t.delay_s) for t in env.scheduler.syncs[scheduled:]] == [(-1, 2)]
    for _ in range(5):
        env.run_sync()
    assert [t.attempt for t in env.scheduler.syncs[scheduled:]] == [-1, -2, -3]
    assert env.svc.sync(OID, attempt=3, chain=1).status is S.CANCELED and len(env.scheduler.syncs) == scheduled + 3


def test_sync_leaves_a_new_order_to_its_submission(env):
    env.create()
    assert env.svc.sync(OID).status is S.NEW
    assert env.venue.calls == [] and env.scheduler.syncs == []


def test_a_gtd_order_is_synced_no_later_than_its_expiry_and_expired_then(env):
    expire_at = env.clock() + 60_000
    env.working(time_in_force=TimeInForce.GTD, expire_at=expire_at)

    env.clock.now_ms = expire_at - 300
    env.svc.sync(OID, attempt=4, chain=1)  # backoff would be 8 s
    assert env.scheduler.syncs[-1] == SyncTask(OID, attempt=5, delay_s=0.3, chain=1)

    env.clock.now_ms = expire_at
    order = env.svc.sync(OID, attempt=5, chain=1)

    assert order.status is S.EXPIRED and order.reason == "expired (time in force)"
    assert env.venue.order(CID).status is VenueStatus.CANCELED
    assert env.statuses()[-2:] == ["pending_cancel", "expired"]
    assert env.scheduler.syncs[-1] == SyncTask(OID, attempt=-1, delay_s=2, chain=1)  # only the late-fill re-checks


def test_a_day_order_expires_at_the_end_of_its_utc_day(env):
    env.clock.now_ms = day_end_ms(env.clock()) - 60_000
    env.working(time_in_force=TimeInForce.DAY)

    env.clock.advance(59_999)
    assert env.run_sync().status is S.ACCEPTED
    env.clock.advance(1)
    assert env.run_sync().status is S.EXPIRED


def test_an_order_working_past_the_execution_timeout_is_cancelled(env):
    env.working()
    env.clock.advance(env.svc.execution_timeout_ms - 1)
    assert env.run_sync().status is S.ACCEPTED

    env.clock.advance(1)
    order = env.run_sync()

    assert order.status is S.CANCELED and "EXECUTION_TIMEOUT" in order.reason
    assert env.venue.order(CID).status is VenueStatus.CANCELED
    assert env.statuses()[-2:] == ["pending_cancel", "canceled"]


def test_an_order_the_venue_cannot_find_is_left_alone_for_the_first_lookups(env):
    env.working()
    order = env.stored()
    env.venue.forget(CID)
    writes = env.store.writes

    for _ in range(NOT_FOUND_LIMIT - 1):
        assert env.run_sync() == order

    assert env.store.writes == writes and env.cache.misses[OID] == NOT_FOUND_LIMIT - 1
    assert env.scheduler.syncs[-1].attempt == NOT_FOUND_LIMIT - 1


def test_an_acknowledged_order_the_venue_cannot_find_is_flagged_after_three_lookups(env):
    env.working()
    env.venue.forget(CID)

    for _ in range(NOT_FOUND_LIMIT - 1):
        order = env.run_sync()
        assert order.attention is None
    events = len(env.publisher.published)
    order = env.run_sync()

    assert order.attention == "attention: the venue cannot find this order"
    assert order.status is S.ACCEPTED  # not rejected, not failed: it may be working
    assert len(env.publisher.published) == events + 1
    assert env.publisher.published[-1]["reason"] == order.attention

    env.run_sync()  # flagged once only
    assert len(env.publisher.published) == events + 1 and env.stored().status is S.ACCEPTED
    assert env.metrics.counts["venue_not_found"] == NOT_FOUND_LIMIT + 1
    assert env.scheduler.syncs[-1].attempt == NOT_FOUND_LIMIT + 1  # still watched (one sync per lookup)


def test_a_sync_that_cannot_reach_the_venue_keeps_the_order_and_tries_again(env):
    env.working()
    env.venue.fail("get", ErrorCode.NETWORK)
    writes = env.store.writes

    order = env.run_sync()

    assert order.status is S.ACCEPTED and env.store.writes == writes
    assert env.scheduler.syncs[-1] == SyncTask(OID, attempt=1, delay_s=1, chain=1)


def test_an_overdue_order_whose_cancel_keeps_failing_is_retried_with_backoff(env):
    expire_at = env.clock() + 60_000
    env.working(time_in_force=TimeInForce.GTD, expire_at=expire_at)
    env.clock.now_ms = expire_at + 1
    env.venue.fail("cancel", ErrorCode.VENUE_UNAVAILABLE, times=3)

    for attempt in range(3):
        scheduled = len(env.scheduler.syncs)
        assert env.svc.sync(OID, attempt=attempt).status is S.PENDING_CANCEL
        assert all(t.delay_s > 0 for t in env.scheduler.syncs[scheduled:])


# ============================================ cancel ========================================================
def test_a_cancel_whose_publish_mark_is_contended_answers_the_committed_order(env, monkeypatch):
    """The cancel is committed; only marking its events published loses to other writers: the caller gets the
    cancelled order (not an error), and the events wait in the outbox for the sweep."""
    env.working()

    def contended(order_id, events):
        raise Contended(order_id)

    monkeypatch.setattr(env.store, "mark_published", contended)
    cancelled = env.svc.cancel(OID)
    assert cancelled.status is S.CANCELED and env.stored().status is S.CANCELED
    assert "canceled" in [e["status"] for e in env.store.outbox(OID)]


def test_a_contended_transaction_reaches_the_caller_as_contended(env):
    env.working()
    env.store.fail_next_update(Contended(OID))
    with pytest.raises(Contended):
        env.svc.cancel(OID)
    assert env.stored().status is S.ACCEPTED  # nothing written


def test_cancelling_a_terminal_order_returns_it_unchanged(env):
    env.venue.on_place(fill="all")
    env.create()
    filled = env.run_submit()
    calls, writes = len(env.venue.calls), env.store.writes

    assert env.svc.cancel(OID) == filled
    assert env.svc.cancel(OID) == filled
    assert len(env.venue.calls) == calls and env.store.writes == writes


def test_a_new_order_is_cancelled_without_a_venue_call_and_never_submitted(env):
    env.create()

    order = env.svc.cancel(OID, reason="strategy stopped")

    assert order.status is S.CANCELED and order.reason == "strategy stopped"
    assert env.story() == ["new", "canceled"]  # "new" may go out twice: create leaves it unmarked
    assert env.run_submit().status is S.CANCELED  # the pending submission task finds it cancelled
    assert env.venue.calls == []


def test_a_working_order_goes_pending_cancel_then_canceled(env):
    env.working()

    order = env.svc.cancel(OID)

    assert order.status is S.CANCELED and order.reason == "canceled by request"
    assert env.statuses()[-2:] == ["pending_cancel", "canceled"]
    assert env.venue.order(CID).status is VenueStatus.CANCELED
    assert env.venue.methods()[-2:] == ["cancel", "fills"]


def test_a_cancel_that_loses_the_race_to_a_fill_ends_filled(env):
    env.working()
    env.venue.fill(CID)  # filled at the venue before the cancel arrives; not yet synced

    order = env.svc.cancel(OID)

    assert order.status is S.FILLED and order.filled_quantity == D("1")
    assert env.statuses()[-2:] == ["pending_cancel", "filled"]


def test_a_partially_filled_order_that_is_cancelled_keeps_its_fills(env):
    env.working()
    env.venue.fill(CID, "0.3")
    assert env.run_sync().status is S.PARTIALLY_FILLED
    env.venue.fill(CID, "0.2")  # and one more that the record has not seen yet

    order = env.svc.cancel(OID)

    assert order.status is S.CANCELED
    assert order.filled_quantity == D("0.5") and len(order.fills) == 2
    assert order.remaining_quantity == 0
    assert env.publisher.published[-1]["filled_quantity"] == "0.5"


def test_a_venue_error_on_cancel_leaves_it_pending_cancel_and_the_sync_finishes_it(env):
    env.working()
    env.venue.fail("cancel", ErrorCode.NETWORK)

    order = env.svc.cancel(OID)

    assert order.status is S.PENDING_CANCEL
    assert env.scheduler.syncs[-1] == SyncTask(OID, attempt=1, delay_s=1)
    assert env.venue.order(CID).status is VenueStatus.OPEN

    order = env.run_sync()
    assert order.status is S.CANCELED and order.reason == "canceled by request"


def test_a_cancel_the_venue_refuses_returns_the_order_to_work(env):
    env.working()
    env.venue.refuse_cancels = True

    order = env.svc.cancel(OID)

    assert order.status is S.ACCEPTED
    assert order.reason == "cancel refused by the venue: canceled by request"


@pytest.mark.parametrize("arrived", [False, True], ids=["never-arrived", "arrived-late"])
def test_a_cancel_of_an_unknown_outcome_waits_for_the_venues_definitive_answer(env, arrived):
    env.create()
    env.venue.fail("place", ErrorCode.TIMEOUT, took_effect=arrived)
    assert env.run_submit().status is S.PENDING_SUBMIT

    order = env.svc.cancel(OID)

    assert order.status is S.PENDING_CANCEL  # never assumed cancelled: it may be working at the venue
    if not arrived:
        assert env.run_submit().status is S.PENDING_CANCEL  # not found yet: it could still arrive
        env.clock.advance(UNKNOWN_OUTCOME_HORIZON_MS)
    order = env.run_submit()
    assert order.status is S.CANCELED and order.is_terminal
    if arrived:
        assert env.venue.order(CID).status is VenueStatus.CANCELED  # found, then cancelled at the venue
    else:
        assert env.venue.created == []  # and nothing was sent after the cancel


def test_a_cancel_racing_the_submission_is_not_lost(env):
    env.create()
    env.store.concurrently(env.run_submit)  # the submit task commits between cancel's read and its commit

    order = env.svc.cancel(OID)

    assert order.status in (S.PENDING_CANCEL, S.CANCELED)
    assert env.venue.order(CID).status is VenueStatus.CANCELED


# ============================================ modify ========================================================
@pytest.mark.parametrize("state", ["new", "filled", "pending_cancel", "canceled"])
def test_only_a_working_order_can_be_modified(env, state):
    env.create()
    if state == "filled":
        env.venue.on_place(fill="all")
        env.run_submit()
    elif state == "pending_cancel":
        env.run_submit()
        env.venue.fail("cancel", ErrorCode.NETWORK)
        env.svc.cancel(OID)
    elif state == "canceled":
        env.svc.cancel(OID)
    assert env.stored().status.value == state
    calls = len(env.venue.calls)

    with pytest.raises(Conflict, match="only a working order can be modified"):
        env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)
    assert len(env.venue.calls) == calls


@pytest.mark.parametrize("quantity", ["0.4", "0.3"])
def test_the_new_quantity_must_exceed_what_has_filled(env, quantity):
    env.working()
    env.venue.fill(CID, "0.4")
    env.run_sync()

    with pytest.raises(Conflict, match="not above the filled 0.4"):
        env.svc.modify(OID, price=None, quantity=D(quantity), stop_price=None)
    assert env.stored().status is S.PARTIALLY_FILLED


def test_modify_replaces_the_venue_order_under_a_deterministic_new_id(env):
    env.working()

    order = env.svc.modify(OID, price=D("49000"), quantity=D("2"), stop_price=None)

    new_id = replacement_client_order_id(CID, 1)
    assert order.status is S.ACCEPTED and order.reason == "modified"
    assert (order.price, order.quantity, order.replace_count) == (D("49000"), D("2"), 1)
    assert order.venue_client_order_id == new_id and order.venue_id == new_id
    assert order.client_order_id == CID and order.venue_order_id == "v2"
    assert env.venue.order(CID).status is VenueStatus.CANCELED
    sent = env.venue.placed()[-1]
    assert (sent.client_order_id, sent.price, sent.quantity) == (new_id, D("49000"), D("2"))
    assert env.statuses()[-2:] == ["pending_replace", "accepted"]
    assert env.scheduler.syncs[-1] == SyncTask(OID, attempt=0, delay_s=0.5)

    env.venue.fill(new_id)  # the sync follows the replacement
    assert env.run_sync().status is S.FILLED


def test_modifying_a_partly_filled_order_places_only_the_remainder_and_counts_every_id(env):
    env.working()
    env.venue.fill(CID, "0.4")
    env.run_sync()

    first = env.svc.modify(OID, price=D("49500"), quantity=None, stop_price=None)
    second = env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)

    assert first.status is S.PARTIALLY_FILLED and first.filled_quantity == D("0.4")
    assert [p.quantity for p in env.venue.placed()] == [D("1"), D("0.6"), D("0.6")]
    assert [p.client_order_id for p in env.venue.placed()] == [
        CID, replacement_client_order_id(CID, 1), replacement_client_order_id(CID, 2)]
    assert second.replace_count == 2 and second.price == D("49000")
    assert env.venue.order(replacement_client_order_id(CID, 1)).status is VenueStatus.CANCELED


def test_an_order_that_filled_before_the_replace_raises_conflict_and_ends_filled(env):
    env.working()
    env.venue.fill(CID)  # filled at the venue; the record does not know yet

    with pytest.raises(Conflict, match="filled before it could be modified"):
        env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)

    order = env.stored()
    assert order.status is S.FILLED and order.filled_quantity == D("1")
    assert len(env.venue.placed()) == 1  # no replacement


def test_modify_with_the_same_terms_changes_nothing(env):
    env.working()
    calls, writes = len(env.venue.calls), env.store.writes

    order = env.svc.modify(OID, price=D("50000"), quantity=D("1"), stop_price=None)

    assert order.status is S.ACCEPTED and len(env.venue.calls) == calls and env.store.writes == writes


def test_modify_validates_the_new_terms(env):
    env.working()
    with pytest.raises(InvalidOrder):
        env.svc.modify(OID, price=D("-1"), quantity=None, stop_price=None)
    assert env.stored().status is S.ACCEPTED


def test_a_modify_whose_cancel_got_no_answer_is_finished_by_the_sync(env):
    env.working()
    env.venue.fail("cancel", ErrorCode.NETWORK, message="reset by peer")

    answer = env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)

    # Whether the venue cancelled the original is unknown: the modify is accepted, not refused (the API answers
    # 202), the replace stays in flight, and the sync finishes it (a cancel is safe to send again).
    order = env.stored()
    assert answer == order and "reset by peer" in (order.reason or "")
    assert order.status is S.PENDING_REPLACE and order.intent is not None
    order = env.run_sync()
    assert order.status is S.ACCEPTED and order.price == D("49000") and order.replace_count == 1
    assert env.venue.order(CID).status is VenueStatus.CANCELED
    assert env.venue.created == [CID, replacement_client_order_id(CID, 1)]


def test_a_cancel_asked_for_during_a_modify_the_venue_refused_is_not_forgotten(env):
    env.working()
    env.venue.refuse_cancels = True  # the venue keeps the original: the modify is refused

    def user_deletes() -> None:  # while the modify's cancel is in flight, the user's DELETE is accepted
        env.svc.cancel(OID)
        env.venue.refuse_cancels = False  # the venue would take a cancel now

    env.venue.during("cancel", user_deletes)
    with pytest.raises(Conflict, match="refused to cancel"):
        env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)

    # the DELETE still stands: its cancel is sent (before, the order went back to accepted and it was forgotten)
    assert env.stored().status is S.CANCELED
    assert env.venue.order(CID).status is VenueStatus.CANCELED


def test_modify_does_not_place_a_replacement_while_the_original_still_works(env):
    env.working()
    env.venue.refuse_cancels = True

    try:
        env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)
    except Conflict:
        pass

    assert env.venue.created == [CID]
    assert env.stored().status is S.ACCEPTED


def test_a_replacement_with_an_unknown_outcome_is_looked_up_and_tracked(env):
    env.working()
    env.venue.fail("place", ErrorCode.TIMEOUT, took_effect=True)  # the replacement did arrive

    order = env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)
    assert order.status is S.PENDING_REPLACE  # the replacement is tracked (a leg) while its outcome is unknown
    assert order.leg(replacement_client_order_id(CID, 1)) is not None

    order = env.run_sync()  # looks it up, never places it twice

    replacement = env.venue.order(replacement_client_order_id(CID, 1))
    assert replacement.status is VenueStatus.OPEN
    assert order.status is S.ACCEPTED and order.price == D("49000")
    assert order.venue_id == replacement_client_order_id(CID, 1)
    assert env.venue.created.count(replacement_client_order_id(CID, 1)) == 1


def test_modify_racing_a_cancel_places_nothing(env):
    env.working()
    env.store.concurrently(lambda: env.svc.cancel(OID))  # a cancel completes just before modify's commit

    try:
        env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)
    except Conflict:
        pass

    assert env.stored().status is S.CANCELED
    assert env.venue.created == [CID]  # no replacement order at the venue


# ============================================ publishing ====================================================
def test_events_not_published_stay_in_the_outbox_and_the_sweep_publishes_them_in_order(env):
    env.venue.on_place(fill="all")
    env.create()
    env.publisher.fail_from(3)  # new and pending_submit go out, accepted and filled do not

    order = env.run_submit()

    assert order.status is S.FILLED
    assert env.publisher.sequences(OID) == [1, 2]
    assert [e["status"] for e in env.store.outbox(OID)] == ["accepted", "filled"]

    env.publisher.heal()
    env.svc.sweep()

    assert env.publisher.sequences(OID) == [1, 2, 3, 4]
    assert env.store.outbox(OID) == []
    assert env.svc.sweep()["republished_events"] == 0


def test_sweep_counts_the_events_it_republished(env):
    env.venue.on_place(fill="all")
    env.create()
    env.publisher.fail_from(3)
    env.run_submit()
    env.publisher.heal()

    assert env.svc.sweep()["republished_events"] == 2  # accepted and filled


def test_a_venue_rejecting_a_working_order_is_recorded(env):
    env.working()
    env.venue.set_status(CID, VenueStatus.REJECTED)  # e.g. a stop-limit rejected at its trigger

    order = env.run_sync()

    assert order.status is S.REJECTED and env.statuses()[-1] == "rejected"


def test_an_illegal_transition_is_surfaced_and_writes_nothing(env):
    env.venue.on_place(fill="all")
    env.create()
    order = env.run_submit()
    writes = env.store.writes

    with pytest.raises(IllegalTransition):
        env.svc.commit(OID, lambda o: o.transition(S.ACCEPTED, env.clock()))

    assert env.stored() == order and env.store.writes == writes
    assert env.metrics.counts["illegal_transitions"] == 1


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(["0.5", "1", "2.5"])),
    st.tuples(st.just("sync"), st.none()),
    st.tuples(st.just("break"), st.integers(1, 3)),
    st.tuples(st.just("heal"), st.none()),
    st.tuples(st.just("sweep"), st.none()),
), max_size=25))
def test_whatever_fails_in_publishing_consumers_see_every_event_in_order(steps):
    env = Env()
    env.working(quantity=D("5"))
    for action, arg in steps:
        venue_order = env.venue.order(CID)
        if action == "fill" and venue_order.status is VenueStatus.OPEN:
            env.venue.fill(CID, min(D(arg), venue_order.remaining_quantity))
        elif action == "sync":
            env.svc.sync(OID)
        elif action == "break":
            env.publisher.fail_from(arg)
        elif action == "heal":
            env.publisher.heal()
        elif action == "sweep":
            env.svc.sweep()
    env.publisher.heal()
    env.svc.sync(OID)
    env.svc.sweep()

    order = env.stored()
    assert order.filled_quantity == env.venue.order(CID).filled_quantity
    assert env.store.outbox(OID) == []
    assert first_seen(env.publisher.sequences(OID)) == list(range(1, order.sequence + 1))  # no gap, in order
    by_sequence = {e["sequence"]: D(e["filled_quantity"]) for e in env.publisher.published}
    filled = [by_sequence[s] for s in sorted(by_sequence)]
    assert filled == sorted(filled)


# ============================================ sweep =========================================================
def test_sweep_resubmits_new_orders_older_than_ten_seconds(env):
    env.create("c-old")
    env.clock.advance(1)
    env.create("c-young")
    env.clock.advance(STUCK_NEW_MS - 1)

    scheduled = len(env.scheduler.submits)

    result = env.sweep()

    assert result["resubmitted"] == 1
    assert env.scheduler.submits[scheduled:] == [
        SubmitTask(order_id_for("momentum_1", "c-old"), attempt=1, delay_s=0)]
    assert env.venue.created == []  # the reconcile task schedules; the submit task submits


def test_sweep_syncs_working_orders(env):
    env.working()
    env.venue.fill(CID, "0.25")

    result = env.sweep()

    assert result["refreshed"] == 1
    assert env.stored().status is S.PARTIALLY_FILLED and env.stored().filled_quantity == D("0.25")


def test_sweep_reports_venue_orders_the_record_does_not_know(env):
    env.working()
    foreign = env.venue.add_foreign_order("manual-7")

    result = env.sweep()

    assert result["orphan_venue_orders"] == [{"exchange": "binance", "client_order_id": "manual-7",
                                              "venue_order_id": foreign.venue_order_id, "symbol": "ETH/USDT",
                                              "status": "open", "trades": 0}]
    assert env.metrics.counts["orphan_venue_orders"] == 1


def test_sweep_knows_a_modified_order_by_its_replacement_id(env):
    env.working()
    env.svc.modify(OID, price=D("49000"), quantity=None, stop_price=None)

    assert env.sweep()["orphan_venue_orders"] == []


def test_sweep_carries_on_when_a_venue_cannot_list_its_open_orders(env):
    env.working()
    env.venue.fail("open_orders", ErrorCode.VENUE_UNAVAILABLE)

    result = env.sweep()

    assert result["orphan_venue_orders"] == [] and result["refreshed"] == 1


# ============================================ signal intake =================================================
SEED = {"signal_id": "sig_123", "strategy_id": "momentum_1", "exchange": "binance", "symbol": "BTC/USDT",
        "side": "buy", "quantity": 0.1, "order_type": "limit", "price": 50000, "time_in_force": "GTC"}


def deliver(env: Env, message: dict | bytes, message_id: str = "m-1"):
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    return intake(data, message_id, service=env.svc, events=env.publisher, now_ms=env.clock)


def test_the_seed_signal_becomes_one_order_with_exact_decimals(env):
    outcome = deliver(env, SEED)

    cid = client_order_id_for_signal("momentum_1", "sig_123")
    assert outcome.status == "accepted" and outcome.signal_id == "sig_123"
    assert outcome.order_id == order_id_for("momentum_1", cid)
    order = env.store.peek(outcome.order_id)
    assert order.quantity == D("0.1") and str(order.quantity) == "0.1"  # not 0.1000000000000000055511151231257827
    assert order.price == D("50000")
    assert (order.client_order_id, order.signal_id, order.side, order.order_type) == (
        cid, "sig_123", Side.BUY, OrderType.LIMIT)
    assert env.publisher.rejections == []
    env.run_submit()
    assert D(str(env.publisher.published[0]["quantity"])) == D("0.1")


def test_three_deliveries_of_a_signal_make_one_order(env):
    outcomes = [deliver(env, SEED, f"m-{i}") for i in range(3)]
    env.clock.advance(1000)
    env.cache.down = True
    outcomes.append(deliver(env, SEED, "m-late"))  # even without the cache

    assert [o.status for o in outcomes] == ["accepted", "duplicate", "duplicate", "duplicate"]
    assert len({o.order_id for o in outcomes}) == 1
    assert len(env.store.docs) == 1 and env.store.writes == 1
    assert {(t.order_id, t.attempt) for t in env.scheduler.submits} == {(outcomes[0].order_id, 0)}
    assert env.publisher.statuses(outcomes[0].order_id) == []  # published by the one submission


@pytest.mark.parametrize(("message", "named"), [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"sig_123"', "must be a JSON object"),
    ({k: v for k, v in SEED.items() if k != "symbol"}, "symbol"),
    ({k: v for k, v in SEED.items() if k != "signal_id"}, "signal_id"),
    ({**SEED, "leverage": 10}, "leverage"),
    ({**SEED, "quantity": -0.1}, "quantity"),
    ({**SEED, "quantity": "lots"}, "quantity"),
    ({**SEED, "exchange": "kraken"}, "exchange"),
    ({k: v for k, v in SEED.items() if k != "price"}, "price"),
    ({**SEED, "side": "hold"}, "side"),
], ids=["not-json", "not-utf8", "array", "string", "no-symbol", "no-signal-id", "unknown-field", "negative-qty",
        "qty-not-number", "unknown-exchange", "limit-without-price", "bad-side"])
def test_an_unusable_signal_is_rejected_with_a_reason_and_never_raises(env, message, named):
    outcome = deliver(env, message, "m-9")

    assert outcome.status == "rejected" and named in outcome.reason and outcome.order_id is None
    assert env.store.docs == {} and env.scheduler.submits == [] and env.publisher.published == []
    [rejection] = env.publisher.rejections
    assert rejection["status"] == "rejected" and rejection["message_id"] == "m-9"
    assert rejection["reason"] == outcome.reason and rejection["timestamp"] == env.clock()
    if isinstance(message, dict):
        assert named in [d["field"] for d in rejection["details"]]
        assert rejection["signal_id"] == message.get("signal_id")


def test_a_rejection_never_carries_a_non_string_signal_id(env):
    outcome = deliver(env, {**SEED, "signal_id": 42})

    assert outcome.status == "rejected" and outcome.signal_id is None
    assert env.publisher.rejections[0]["signal_id"] is None


@pytest.mark.parametrize("extra", [
    {"time_in_force": "GTD", "expire_at": 0},
    {"tags": {f"k{i}": "v" for i in range(33)}},
    {"tags": {"k" * 65: "v"}},
], ids=["expire-at-zero", "33-tags", "long-tag-key"])
def test_a_signal_that_only_order_request_refuses_is_rejected_not_raised(env, extra):
    outcome = deliver(env, {**SEED, **extra})

    assert outcome.status == "rejected"
    assert len(env.publisher.rejections) == 1


@settings(max_examples=80, deadline=None, database=None)
@given(st.decimals(min_value=D("0.00000001"), max_value=D("999999.99999999"), places=8))
def test_a_json_number_quantity_reaches_the_order_exactly(quantity):
    env = Env()
    text = json.dumps(SEED).replace('"quantity": 0.1', f'"quantity": {quantity:f}')

    outcome = deliver(env, text.encode())

    assert outcome.status == "accepted"
    assert env.store.peek(outcome.order_id).quantity == quantity


# ---- the facts transaction cost analysis needs ----------------------------------------------------------------
class Touches:
    """A quote_ahead port: the touch (bid, ask) of each read in turn; None for a read that gets no answer in time."""

    def __init__(self, *touches):
        self.touches = list(touches)
        self.asked: list[tuple[str, str, float]] = []

    def __call__(self, venue, symbol, wait_s):
        self.asked.append((venue, symbol, wait_s))
        touch = self.touches.pop(0) if self.touches else None
        return lambda: Quote(*touch) if touch is not None else None


def test_the_decision_mid_and_the_arrival_touch_are_recorded_in_commits_that_happen_anyway():
    touches = Touches((D("49990"), D("50010")), (D("50000"), D("50020")))
    env = Env(quote_ahead=touches)
    created = env.create()
    assert created.decision_mid == D("50000")  # the mid as the order was received
    writes = env.store.writes
    order = env.run_submit()
    assert (order.arrival_bid, order.arrival_ask, order.arrival_mid) == (D("50000"), D("50020"), D("50010"))
    plain = Env()
    plain.create()
    plain_writes = plain.store.writes
    plain.run_submit()
    assert env.store.writes - writes == plain.store.writes - plain_writes  # no write of its own
    assert [wait for _, _, wait in touches.asked] == [0.1, 1.0]  # intake waits far less than a task


def test_an_order_without_a_touch_in_time_goes_on_without_one():
    env = Env(quote_ahead=Touches(None, None))
    assert env.create().decision_mid is None
    order = env.run_submit()
    assert order.status is S.ACCEPTED and order.arrival_bid is None and order.arrival_mid is None
