"""DeadMansSwitchService (shared/app/dms.py) against in-memory fakes: durable state behind a cache, fail-closed
order checks, heartbeats judged by their send time, latching, and a firing that a crash cannot leave half done.
No I/O, no sleeping: time is a FakeClock."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pytest

from shared.app.dms import DeadMansSwitchService, SwitchChange, SwitchStateUnavailable
from shared.adapters.protocol import VenueStatus
from shared.app.orders import VENUE_SWITCH_REASON, Halted, OrderService
from shared.app.signals import intake
from shared.domain.dms import GLOBAL, SWEEP_GRACE_MS, Switch
from shared.domain.orders import Order, OrderType, S, Side, TimeInForce, order_id_for

from .fakes import Fakes

D = Decimal


class FakeSwitches:
    """The durable store (FirestoreSwitches): `down` makes every call raise SwitchStateUnavailable."""

    def __init__(self) -> None:
        self.docs: dict[str, Switch] = {}
        self.down = False
        self.writes = 0

    def _check(self) -> None:
        if self.down:
            raise SwitchStateUnavailable("dead man's switch state unreadable (store down)")

    def all(self) -> dict[str, Switch]:
        self._check()
        return dict(self.docs)

    def many(self, strategy_ids: list[str]) -> dict[str, Switch]:
        self._check()
        return {i: self.docs[i] for i in strategy_ids if i in self.docs}

    def update(self, strategy_id: str, change: SwitchChange) -> Switch | None:
        self._check()
        current = self.docs.get(strategy_id)
        updated = change(current)
        if updated is None or updated == current:
            return current
        self.docs[strategy_id] = updated
        self.writes += 1
        return updated


class FakeSwitchCache:
    """RedisSwitchCache: `down` turns reads into misses and writes into nothing; `flush` empties it."""

    def __init__(self) -> None:
        self.entries: dict[str, Switch | None] = {}
        self.down = False

    def get_many(self, strategy_ids: list[str]) -> dict[str, Switch | None]:
        return {} if self.down else {i: self.entries[i] for i in strategy_ids if i in self.entries}

    def put_many(self, entries: Mapping[str, Switch | None]) -> None:
        if not self.down:
            self.entries.update(entries)

    def flush(self) -> None:
        self.entries.clear()


class Env(Fakes):
    def __init__(self, latch: bool = True) -> None:
        super().__init__()
        self.switches, self.switch_cache = FakeSwitches(), FakeSwitchCache()
        self.slept: list[float] = []
        self.svc = OrderService(store=self.store, cache=self.cache, events=self.publisher,
                                scheduler=self.scheduler, venues={"binance": self.venue}, metrics=self.metrics,
                                clock=self.clock, halt_reason=lambda s: self.dms.halt_reason(s))
        self.dms = DeadMansSwitchService(switches=self.switches, cache=self.switch_cache, orders=self.svc,
                                         venues={}, events=self.publisher, clock=self.clock,
                                         heartbeat_max_age_ms=10_000, latch=latch, cancel_workers=1,
                                         sleep=self._sleep, monotonic=lambda: self.clock() / 1000)

    def _sleep(self, s: float) -> None:
        self.slept.append(s)
        self.clock.advance(int(s * 1000))

    def order(self, strategy: str, n: int) -> Order:
        cid = f"{strategy}-{n}"
        now = self.clock()
        return Order(order_id=order_id_for(strategy, cid), client_order_id=cid, strategy_id=strategy,
                     exchange="binance", symbol="BTC/USDT", side=Side.BUY, quantity=D("1"),
                     order_type=OrderType.LIMIT, price=D("40000"), time_in_force=TimeInForce.GTC, created_at=now,
                     updated_at=now)

    def working(self, strategy: str, n: int) -> Order:
        order, _ = self.svc.create(self.order(strategy, n))
        order = self.svc.submit(order.order_id, attempt=0)
        assert order.status is S.ACCEPTED
        return order

    def beat(self, strategy: str, timeout_ms: int = 5000, sent_at_ms: int | None = None):
        return self.dms.heartbeat(strategy, timeout_ms, sent_at_ms=self.clock() if sent_at_ms is None else sent_at_ms)

    def notices(self, status: str) -> list[dict]:
        return [n for n in self.publisher.rejections if n.get("type") == "dead_mans_switch" and n["status"] == status]


def test_a_halt_survives_a_cache_flush_and_a_cache_outage():
    env = Env()
    env.beat("a")
    env.clock.advance(5001)
    assert [f["strategy_id"] for f in env.dms.check()["fired"]] == ["a"]
    env.switch_cache.flush()
    with pytest.raises(Halted):
        env.svc.create(env.order("a", 1))
    env.switch_cache.down = True
    with pytest.raises(Halted):
        env.svc.create(env.order("a", 2))
    assert env.svc.create(env.order("b", 1))[1]  # a strategy without a switch trades on


def test_orders_are_refused_when_neither_store_nor_cache_can_answer():
    env = Env()
    env.beat("a")
    env.switch_cache.down = True
    env.switches.down = True
    with pytest.raises(SwitchStateUnavailable):
        env.svc.create(env.order("a", 1))
    with pytest.raises(SwitchStateUnavailable):  # unknown whether b has a switch, or the global one fired
        env.svc.create(env.order("b", 1))
    assert env.store.get(order_id_for("a", "a-1")) is None and not env.venue.created


def test_a_cached_answer_serves_while_the_store_is_down():
    env = Env()
    env.beat("a", timeout_ms=60_000)
    assert env.svc.create(env.order("a", 1))[1]  # now cached: a's switch, and no global one
    env.switches.down = True
    assert env.svc.create(env.order("a", 2))[1]


def test_a_halt_is_written_to_the_store_before_the_cache():
    env = Env()
    env.beat("a")
    env.switch_cache.down = True
    env.clock.advance(5001)
    env.dms.check()
    env.switch_cache.down = False
    env.switch_cache.flush()
    assert env.switches.docs["a"].halted
    with pytest.raises(Halted):
        env.svc.create(env.order("a", 1))


def test_the_check_answers_unavailable_instead_of_crashing():
    env = Env()
    env.switches.down = True
    result = env.dms.check()
    assert result["unavailable"] and "unreadable" in result["unavailable"] and result["fired"] == []


def test_a_stale_heartbeat_neither_arms_nor_lifts():
    env = Env(latch=False)
    env.beat("a")
    env.clock.advance(6000)
    env.dms.check()
    sent_before = env.clock() - 11_000
    replayed = env.beat("a", sent_at_ms=sent_before)
    assert "older than the 10000 ms allowed" in replayed.ignored and env.switches.docs["a"].halted
    assert env.beat("new", sent_at_ms=env.clock() - 10_001).switch is None
    assert "new" not in env.switches.docs


def test_a_fired_switch_stays_latched_until_an_operator_re_enables():
    env = Env()
    env.beat("a")
    env.clock.advance(5001)
    env.dms.check()
    env.clock.advance(10)
    assert "latched" in env.beat("a").ignored
    with pytest.raises(Halted):
        env.svc.create(env.order("a", 1))
    env.dms.enable("a", by="ops")
    assert env.svc.create(env.order("a", 2))[1]
    assert [n["status"] for n in env.publisher.rejections if n.get("type") == "dead_mans_switch"] == \
        ["halted", "resumed"]


def test_unlatched_a_later_heartbeat_lifts_the_halt():
    env = Env(latch=False)
    env.beat("a")
    env.clock.advance(5001)
    env.dms.check()
    env.clock.advance(10)
    assert env.beat("a").lifted
    assert env.svc.create(env.order("a", 1))[1]
    assert len(env.notices("resumed")) == 1


def test_firing_cancels_every_working_order_of_the_strategy_only():
    env = Env()
    env.beat("a")
    mine = [env.working("a", n) for n in range(5)]
    other = env.working("b", 0)
    env.clock.advance(5001)
    result = env.dms.check()
    assert result["canceled_orders"] == 5
    for order in mine:
        got = env.store.get(order.order_id)
        assert got.status is S.CANCELED and "dead man's switch" in got.reason
    assert env.store.get(other.order_id).status is S.ACCEPTED


def test_a_crash_between_firing_and_cancelling_is_finished_by_the_next_check():
    env = Env()
    env.beat("a")
    orders = [env.working("a", n) for n in range(3)]
    env.clock.advance(5001)
    # The firing is recorded, then the process dies before any cancel (here: every cancel fails).
    real_cancel = env.svc.cancel
    env.svc.cancel = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("instance died"))
    first = env.dms.check()
    assert first["fired"] and first["canceled_orders"] == 0
    # the venue was told first, so it stopped trading them although no record's cancel ran
    assert all(env.venue.orders[o.venue_id].status.value == "canceled" for o in orders)
    assert all(env.store.get(o.order_id).status is S.ACCEPTED for o in orders)
    assert env.switches.docs["a"].sweep_before_ms is not None
    env.svc.cancel = real_cancel
    env.clock.advance(1000)
    second = env.dms.check()
    assert second["fired"] == [] and second["canceled_orders"] == 3
    assert all(env.store.get(o.order_id).status is S.CANCELED for o in orders)
    env.clock.advance(SWEEP_GRACE_MS)
    env.dms.check()
    assert env.switches.docs["a"].sweep_before_ms is None  # none left: the sweep is done


def test_an_order_still_pending_cancel_is_swept_again():
    env = Env()
    env.beat("a")
    order = env.working("a", 0)
    env.venue.refuse_cancels = True  # the venue keeps it open for now
    env.clock.advance(5001)
    env.dms.check()
    assert not env.store.get(order.order_id).is_terminal
    env.clock.advance(SWEEP_GRACE_MS + 1)
    env.dms.check()
    assert env.switches.docs["a"].sweep_before_ms is not None  # still working: the sweep is not done
    env.venue.refuse_cancels = False
    env.clock.advance(SWEEP_GRACE_MS + 1)
    env.dms.check()
    assert env.store.get(order.order_id).status is S.CANCELED
    assert env.switches.docs["a"].sweep_before_ms is None  # this round left none: the sweep is done


def test_a_missed_deadline_refuses_orders_before_the_check_fires():
    env = Env()
    env.beat("a")
    env.clock.advance(5001)
    with pytest.raises(Halted, match="deadline passed"):
        env.svc.create(env.order("a", 1))


def test_the_global_switch_halts_every_strategy():
    env = Env()
    env.dms.heartbeat(None, 5000, sent_at_ms=env.clock())
    order = env.working("x", 0)
    env.clock.advance(5001)
    assert env.dms.check()["fired"][0]["strategy_id"] == GLOBAL
    assert env.store.get(order.order_id).status is S.CANCELED
    with pytest.raises(Halted):
        env.svc.create(env.order("y", 0))


def test_the_check_wakes_at_a_deadline_between_two_ticks():
    env = Env()
    env.beat("a", timeout_ms=1500)
    result = env.dms.check(for_s=3, every_s=1.0)
    assert env.slept[:2] == [1.0, pytest.approx(0.501)]  # to the deadline (+1 ms), not a whole tick after it
    assert [f["strategy_id"] for f in result["fired"]] == ["a"] and "1 ms late" in result["fired"][0]["reason"]


def test_a_stale_signal_is_rejected_with_its_age_and_never_traded():
    env = Env()
    data = (b'{"signal_id": "s1", "strategy_id": "a", "exchange": "binance", "symbol": "BTC/USDT", '
            b'"side": "buy", "quantity": "1", "order_type": "limit", "price": "40000"}')
    out = intake(data, "m1", service=env.svc, events=env.publisher, now_ms=env.clock,
                 published_ms=env.clock() - 5001, max_age_ms=5000)
    assert out.status == "rejected" and "5001 ms ago" in out.reason
    event = env.publisher.rejections[-1]
    assert event["status"] == "rejected" and event["signal_id"] == "s1" and "5001 ms" in event["reason"]
    assert not env.venue.created
    fresh = intake(data, "m2", service=env.svc, events=env.publisher, now_ms=env.clock,
                   published_ms=env.clock() - 100, max_age_ms=5000)
    assert fresh.status == "accepted"


def test_a_signal_whose_halt_state_is_unreadable_is_rejected():
    env = Env()
    env.switches.down = True
    data = (b'{"signal_id": "s1", "strategy_id": "a", "exchange": "binance", "symbol": "BTC/USDT", '
            b'"side": "buy", "quantity": "1", "order_type": "limit", "price": "40000"}')
    out = intake(data, "m1", service=env.svc, events=env.publisher, now_ms=env.clock,
                 published_ms=env.clock(), max_age_ms=5000)
    assert out.status == "rejected" and "unreadable" in out.reason


def test_an_order_the_venue_switch_cancelled_says_so_in_its_record_and_event():
    env = Env()
    order = env.working("a", 0)
    vo = env.venue.orders[order.venue_id]
    env.venue.orders[order.venue_id] = vo.model_copy(update={"status": VenueStatus.CANCELED,
                                                             "canceled_by": "venue_switch"})
    synced = env.svc.sync(order.order_id, attempt=0)
    assert synced.status is S.CANCELED and synced.reason == VENUE_SWITCH_REASON
    event = [e for e in env.publisher.published if e["order_id"] == order.order_id][-1]
    assert event["status"] == "canceled" and event["reason"] == VENUE_SWITCH_REASON


def test_an_order_cancelled_at_the_venue_otherwise_gets_no_switch_reason():
    env = Env()
    order = env.working("a", 0)
    env.venue.set_status(order.venue_id, VenueStatus.CANCELED)
    synced = env.svc.sync(order.order_id, attempt=0)
    assert synced.status is S.CANCELED and synced.reason != VENUE_SWITCH_REASON


def test_a_sweep_that_cannot_read_the_orders_leaves_the_firing_standing_for_the_next_check():
    env = Env()
    env.beat("a")
    order = env.working("a", 0)
    env.clock.advance(5001)
    real = env.store.open_orders
    env.store.open_orders = lambda page=500: (_ for _ in ()).throw(ConnectionError("store down"))
    assert env.dms.check()["fired"]  # no crash: the firing is recorded
    env.store.open_orders = real
    assert env.dms.check()["canceled_orders"] == 1
    assert env.store.get(order.order_id).status is S.CANCELED
