"""The dead man's switch, run: heartbeats arm it, a periodic check fires it, its orders are cancelled in parallel
until none is left, and the venues' own switches are kept armed while heartbeats flow (the rules:
shared/domain/dms.py).

Durable and fail closed. The switches live in the durable store (Firestore, ``SwitchStore``); Redis is only a
cache in front of it (``SwitchCache``, a short TTL, written through on every change), so a Redis flush loses
nothing and a Redis outage only costs a Firestore read. When the switch state cannot be read at all (store and
cache both unavailable), ``SwitchStateUnavailable`` is raised: new orders are refused (HTTP 503 naming the
reason), never let through; heartbeats and the check answer 503 too, never 500.

Firing is recorded first (the switch's ``sweep_before_ms``), then its working orders are cancelled by a bounded
pool of threads in this process (32; calls that mostly wait): first at the venue, each live venue order by its
client id (an idempotent command that changes nothing on record: what must be fast is that the venue stops
trading them), then each through the order service, whose cancel records the venue's answer and fills, so the
record still follows the venue. Measured on the local stack (scripts/bench_dms.py): 100 venue cancels take about
0.5 s, their records' cancels (three transactions each) several seconds, hence the order. A Cloud Task per order was not
chosen: it adds an enqueue and a dispatch per order (and the queue's rate limit) on the path that must finish
within two seconds, and its retry is what the sweep already gives: every check sweeps each fired switch again
until a sweep finds none of its orders left, so a crash between firing and cancelling is finished by the next
check, on any instance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from shared.adapters.protocol import DeadMansSwitch, VenueCallError
from shared.app.orders import OrderService
from shared.app.ports import EventPublisher
from shared.domain import dms
from shared.domain.dms import GLOBAL, Beat, Switch
from shared.domain.orders import Order

logger = logging.getLogger(__name__)

SwitchChange = Callable[[Switch | None], Switch | None]


class SwitchStateUnavailable(RuntimeError):
    """The dead man's switch state could not be read or written (the durable store failed, and the cache could
    not answer for it): whatever depends on it is refused (fail closed)."""


class SwitchStore(Protocol):
    """The durable switches, one per strategy and the global one. Raises SwitchStateUnavailable when it fails."""

    def all(self) -> dict[str, Switch]: ...

    def many(self, strategy_ids: list[str]) -> dict[str, Switch]:
        """The switches of these strategies that exist."""

    def update(self, strategy_id: str, change: SwitchChange) -> Switch | None:
        """Apply `change` to the switch as stored (None: none yet) in one transaction; a result equal to what is
        stored, or None, writes nothing. Returns the switch as it now stands."""


class SwitchCache(Protocol):
    """A best-effort cache of the switches: never raises (a failure is a miss, or a write left undone)."""

    def get_many(self, strategy_ids: list[str]) -> dict[str, Switch | None]:
        """The cached entries among these ids (value None: cached as having no switch); absent: not cached."""

    def put_many(self, entries: Mapping[str, Switch | None]) -> None: ...


class VenueSwitch(Protocol):
    def cancel_all_after(self, timeout_ms: int) -> DeadMansSwitch: ...


@dataclass
class DeadMansSwitchService:
    switches: SwitchStore
    cache: SwitchCache
    orders: OrderService
    venues: Mapping[str, VenueSwitch]
    events: EventPublisher
    clock: Callable[[], int]
    venue_timeout_ms: int = 60_000
    heartbeat_max_age_ms: int = 10_000
    latch: bool = True
    cancel_workers: int = 32
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _pool: ThreadPoolExecutor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._refreshed_at_ms = 0  # venues are refreshed every venue_timeout_ms / 4 (NautilusTrader does the same)
        self._pool = ThreadPoolExecutor(self.cancel_workers, thread_name_prefix="dms-cancel")

    # ---- heartbeats and operators ----------------------------------------------------------------------
    def heartbeat(self, strategy_id: str | None, timeout_ms: int, sent_at_ms: int | None) -> Beat:
        """Judge a heartbeat by when it was sent; an ignored one (stale, latched, after its deadline) changes
        nothing and says why."""
        key = strategy_id or GLOBAL
        dms.check_timeout(timeout_ms)
        now = self.clock()
        judged: list[Beat] = []

        def change(current: Switch | None) -> Switch | None:
            judged.append(dms.heartbeat(current, key, timeout_ms, sent_at_ms=sent_at_ms, now_ms=now,
                                        max_age_ms=self.heartbeat_max_age_ms, latch=self.latch))
            return judged[-1].switch

        stored = self.switches.update(key, change)
        beat = judged[-1]
        self.cache.put_many({key: stored})
        if beat.ignored:
            logger.warning(beat.ignored, extra={"fields": {"strategy_id": key, "sent_at_ms": sent_at_ms}})
        if beat.lifted:
            self._announce(beat.switch, "resumed", "heartbeat received after the firing: trading resumes")
        return beat

    def enable(self, strategy_id: str, by: str = "operator") -> Switch:
        key = strategy_id or GLOBAL
        now = self.clock()
        stored = self.switches.update(key, lambda current: dms.release(current, now, by) if current else None)
        if stored is None:
            raise LookupError(f"no dead man's switch for {key}")
        self.cache.put_many({key: stored})
        self._announce(stored, "resumed", stored.reason or "re-enabled")
        return stored

    # ---- the order path ---------------------------------------------------------------------------------
    def halt_reason(self, strategy_id: str) -> str | None:
        """Why an order of this strategy must be refused now (None: it may trade). Raises
        SwitchStateUnavailable when the state cannot be read: the caller refuses the order."""
        wanted = [GLOBAL, strategy_id]
        known = self.cache.get_many(wanted)  # on every new order: one round trip for both switches
        missing = [k for k in wanted if k not in known]
        if missing:
            found = self.switches.many(missing)
            fetched = {k: found.get(k) for k in missing}
            self.cache.put_many(fetched)
            known.update(fetched)
        return dms.halt_reason({k: v for k, v in known.items() if v is not None}, strategy_id, self.clock())

    # ---- the check --------------------------------------------------------------------------------------
    def check(self, for_s: float = 0.0, every_s: float = 1.0) -> dict[str, Any]:
        """Fire what expired, sweep what fired, refresh the venues' switches while heartbeats flow. With `for_s`,
        keep checking every `every_s` for that long (one scheduler invocation covers a minute), waking at a
        deadline that falls between two ticks. `unavailable` names why the last round could not read the
        switches (the caller answers 503)."""
        fired: list[dict[str, Any]] = []
        canceled = 0
        refreshed = False
        unavailable: str | None = None
        end = self.monotonic() + for_s
        while True:
            wake_ms: int | None = None
            try:
                now = self.clock()
                switches = self.switches.all()
                for switch in list(switches.values()):
                    if switch.expired(now):
                        halted = self._fire(switch.strategy_id, now)
                        if halted is not None:
                            switches[halted.strategy_id] = halted
                            fired.append(asdict(halted))
                try:
                    canceled += self._sweep([s for s in switches.values() if s.sweep_before_ms is not None])
                except SwitchStateUnavailable:
                    raise
                except Exception:  # noqa: BLE001 (the orders store failed: the firing stands, the next round sweeps)
                    logger.exception("dead man's switch sweep failed; the next check sweeps again")
                if dms.venue_switch_needed(switches, now) and \
                        now - self._refreshed_at_ms >= self.venue_timeout_ms // 4 and self._refresh_venues():
                    self._refreshed_at_ms, refreshed = now, True
                wake_ms = dms.next_deadline(switches, now)
                unavailable = None
            except SwitchStateUnavailable as exc:
                unavailable = str(exc)
                logger.error("dead man's switch check could not read the switches: %s", exc)
            left = end - self.monotonic()
            if left <= 0:
                break
            pause = min(every_s, left)
            if wake_ms is not None:  # one millisecond past a deadline is when it has passed
                pause = min(pause, max(0.0, (wake_ms + 1 - self.clock()) / 1000))
            self.sleep(pause)
        return {"fired": fired, "canceled_orders": canceled, "venue_switch_refreshed": refreshed,
                "unavailable": unavailable}

    def status(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [{**asdict(s), "deadline_ms": s.deadline_ms, "expired": s.expired(now)}
                for s in sorted(self.switches.all().values(), key=lambda s: s.strategy_id)]

    def _fire(self, strategy_id: str, now: int) -> Switch | None:
        """Record the firing (in a transaction: a heartbeat that got in first wins); then announce it. The
        cancels follow in the sweep, which this record makes resumable."""
        did: list[Switch] = []

        def change(current: Switch | None) -> Switch | None:
            did.clear()
            if current is None or not current.expired(now):
                return current
            did.append(dms.fire(current, now))
            return did[0]

        stored = self.switches.update(strategy_id, change)
        if not did:
            return None
        self.cache.put_many({strategy_id: stored})
        scope = "global" if strategy_id == GLOBAL else "strategy"
        logger.warning(stored.reason, extra={"fields": {"dms_fired": scope, "strategy_id": strategy_id}})
        self.orders.metrics.count("dms_fired", scope=scope)
        self._announce(stored, "halted", stored.reason or "halted")
        return stored

    def _sweep(self, pending: list[Switch]) -> int:
        """Cancel, in parallel, every open order these fired switches cover; clear a switch's sweep once none of
        its orders is left. Returns how many orders this round saw cancelled."""
        if not pending:
            return 0
        open_orders = list(self.orders.store.open_orders())  # every open order, paged to the end
        targets = {o.order_id: o for o in open_orders if any(dms.sweeps(s, o.strategy_id, o.created_at)
                                                              for s in pending)}
        reasons = {oid: next(s.reason for s in pending if dms.sweeps(s, o.strategy_id, o.created_at))
                   for oid, o in targets.items()}
        list(self._pool.map(self._kill, targets.values()))  # the venue first: every live leg, at once
        results = dict(zip(targets, self._pool.map(lambda oid: self._cancel(oid, reasons[oid]), targets),
                           strict=True))
        canceled = sum(1 for o in results.values() if o is not None and o.is_terminal)
        now = self.clock()
        for switch in pending:
            left = sum(1 for oid, o in targets.items()
                       if dms.sweeps(switch, o.strategy_id, o.created_at)
                       and (results[oid] is None or not results[oid].is_terminal))
            cleared = dms.swept(switch, now, left)
            if cleared != switch:
                self.switches.update(switch.strategy_id, lambda current, s=switch: dms.swept(current, now, left)
                                     if current is not None and current.sweep_before_ms == s.sweep_before_ms
                                     else current)
        return canceled

    def _kill(self, order: Order) -> None:
        """Cancel the order's live venue orders by client id, before its record's own cancel: an idempotent
        venue command that changes nothing on record. The record's cancel (next) takes its intent, sends the
        cancel again (the venue answers it as it ended) and records the venue's answer and fills, so the record
        still follows the venue. A placement still in flight is not found here and is cancelled by the record's
        cancel once it lands (pending_cancel)."""
        venue = self.orders.venues.get(order.exchange)
        for leg in order.live_legs if venue is not None else ():
            try:
                venue.cancel(order.symbol, client_order_id=leg.venue_client_id)
            except VenueCallError as err:
                logger.info("dead man's switch: venue cancel of %s ahead of its record: %s", leg.venue_client_id,
                            err.code.value, extra={"fields": {"order_id": order.order_id}})
            except Exception:  # noqa: BLE001 (the record's cancel follows and reports)
                logger.exception("dead man's switch: venue cancel of %s failed", leg.venue_client_id)

    def _cancel(self, order_id: str, reason: str | None) -> Order | None:
        try:
            return self.orders.cancel(order_id, reason=reason or "dead man's switch")
        except Exception:  # noqa: BLE001 (the next check's sweep tries again)
            logger.exception("dead man's switch could not cancel %s; the next check tries again", order_id)
            return None

    def _refresh_venues(self) -> bool:
        ok = False
        for name, venue in self.venues.items():
            try:
                venue.cancel_all_after(self.venue_timeout_ms)
                ok = True
            except VenueCallError as err:
                logger.warning("could not refresh the venue switch at %s: %s", name, err)
        return ok

    def _announce(self, switch: Switch, status: str, reason: str) -> None:
        try:
            self.events.publish_notice({
                "type": "dead_mans_switch", "order_id": None, "strategy_id": switch.strategy_id, "status": status,
                "reason": reason, "timestamp": self.clock(),
            })
        except Exception:
            logger.exception("dead man's switch event not published")
