"""The dead man's switch, run: heartbeats arm it, a periodic check fires it, and the venues' own switches are
kept armed while heartbeats flow (see shared/domain/dms.py for the rules).

Firing halts the strategy (or, for the global switch, everything), cancels its working orders (each cancel's
event carries the reason) and publishes a ``dead_mans_switch`` event. The switches live in Redis, so every
instance sees the same; without Redis nothing can be checked and nothing is halted (logged loudly).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from shared.adapters.protocol import DeadMansSwitch, VenueCallError
from shared.app.orders import OrderService
from shared.app.ports import EventPublisher
from shared.domain import dms
from shared.domain.dms import GLOBAL, Switch

logger = logging.getLogger(__name__)


class SwitchStore(Protocol):
    def all(self) -> dict[str, Switch]: ...

    def get(self, strategy_id: str) -> Switch | None: ...

    def many(self, strategy_ids: list[str]) -> dict[str, Switch]: ...

    def save(self, switch: Switch) -> None: ...


class VenueSwitch(Protocol):
    def cancel_all_after(self, timeout_ms: int) -> DeadMansSwitch: ...


@dataclass
class DeadMansSwitchService:
    switches: SwitchStore
    orders: OrderService
    venues: Mapping[str, VenueSwitch]
    events: EventPublisher
    clock: Callable[[], int]
    venue_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        self._refreshed_at_ms = 0  # venues are refreshed every venue_timeout_ms / 4 (NautilusTrader does the same)

    def heartbeat(self, strategy_id: str | None, timeout_ms: int) -> Switch:
        key = strategy_id or GLOBAL
        previous = self.switches.get(key)
        switch = dms.heartbeat(previous, key, timeout_ms, self.clock())
        self.switches.save(switch)
        if previous is not None and previous.halted:
            self._announce(switch, "resumed", "heartbeat received: trading resumes")
        return switch

    def enable(self, strategy_id: str, by: str = "operator") -> Switch:
        key = strategy_id or GLOBAL
        current = self.switches.get(key)
        if current is None:
            raise LookupError(f"no dead man's switch for {key}")
        switch = dms.release(current, self.clock(), by)
        self.switches.save(switch)
        self._announce(switch, "resumed", switch.reason or "re-enabled")
        return switch

    def halt_reason(self, strategy_id: str) -> str | None:
        """Why an order of this strategy must be refused now (None: it may trade)."""
        try:  # on every new order: one round trip for both the global switch and the strategy's
            wanted = self.switches.many([GLOBAL, strategy_id])
        except Exception as exc:  # Redis down: nothing is known to be halted
            logger.error("dead man's switch state unavailable (%s); not halting", exc)
            return None
        return dms.halt_reason(wanted, strategy_id)

    def check(self, for_s: float = 0.0, every_s: float = 1.0) -> dict[str, Any]:
        """Fire what expired; refresh the venues' switches while heartbeats flow. With `for_s`, keep checking
        every `every_s` for that long (one scheduler invocation covers a minute at one-second resolution)."""
        fired: list[dict[str, Any]] = []
        canceled = 0
        refreshed = False
        end = time.monotonic() + for_s
        while True:
            now = self.clock()
            switches = self.switches.all()
            for switch in switches.values():
                if switch.expired(now):
                    halted = dms.fire(switch, now)
                    self.switches.save(halted)
                    switches[halted.strategy_id] = halted
                    scope = "global" if halted.strategy_id == GLOBAL else "strategy"
                    logger.warning(halted.reason, extra={"fields": {"dms_fired": scope}})
                    self.orders.metrics.count("dms_fired", scope=scope)
                    self._announce(halted, "halted", halted.reason or "halted")
                    canceled += self._cancel_working(halted)
                    fired.append(asdict(halted))
            if dms.venue_switch_needed(switches, now) and now - self._refreshed_at_ms >= self.venue_timeout_ms // 4:
                if self._refresh_venues():
                    self._refreshed_at_ms, refreshed = now, True
            if time.monotonic() + every_s > end:
                break
            time.sleep(every_s)
        return {"fired": fired, "canceled_orders": canceled, "venue_switch_refreshed": refreshed}

    def status(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [{**asdict(s), "deadline_ms": s.deadline_ms, "expired": s.expired(now)}
                for s in sorted(self.switches.all().values(), key=lambda s: s.strategy_id)]

    def _cancel_working(self, switch: Switch) -> int:
        count = 0
        for order in list(self.orders.store.open_orders()):  # every open order, paged to the end
            if switch.strategy_id != GLOBAL and order.strategy_id != switch.strategy_id:
                continue
            try:
                self.orders.cancel(order.order_id, reason=switch.reason or "dead man's switch")
                count += 1
            except Exception:
                logger.exception("dead man's switch could not cancel %s; the sync task retries", order.order_id)
        return count

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
