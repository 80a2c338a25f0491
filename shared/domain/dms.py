"""The dead man's switch, as rules: heartbeats, deadlines, and who is halted.

A strategy (or the global switch, ``GLOBAL``) sends heartbeats with a timeout; its deadline is the last heartbeat
plus that timeout. When the deadline passes, the switch fires: the strategy is halted (no new orders) and its
working orders are cancelled. It stays halted until it heartbeats again or an operator re-enables it. While any
heartbeat is alive, the venues' own cancel-all-after is kept armed, so venues cancel even if the service is down.
Pure: times are epoch milliseconds passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GLOBAL = "*"
MIN_TIMEOUT_MS = 1_000
MAX_TIMEOUT_MS = 3_600_000


@dataclass(frozen=True)
class Switch:
    strategy_id: str  # GLOBAL for the service-wide switch
    timeout_ms: int
    last_heartbeat_ms: int
    halted_at_ms: int | None = None
    reason: str | None = None

    @property
    def deadline_ms(self) -> int:
        return self.last_heartbeat_ms + self.timeout_ms

    @property
    def halted(self) -> bool:
        return self.halted_at_ms is not None

    def expired(self, now_ms: int) -> bool:
        return not self.halted and now_ms > self.deadline_ms


def heartbeat(previous: Switch | None, strategy_id: str, timeout_ms: int, now_ms: int) -> Switch:
    """A heartbeat re-arms the switch and lifts a halt."""
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        raise ValueError(f"timeout_ms: must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}")
    return Switch(strategy_id=strategy_id, timeout_ms=timeout_ms, last_heartbeat_ms=now_ms)


def fire(switch: Switch, now_ms: int) -> Switch:
    late_ms = now_ms - switch.deadline_ms
    who = "global heartbeat" if switch.strategy_id == GLOBAL else f"heartbeat of strategy {switch.strategy_id}"
    reason = f"dead man's switch: {who} missed ({switch.timeout_ms} ms timeout, {late_ms} ms late)"
    return replace(switch, halted_at_ms=now_ms, reason=reason)


def release(switch: Switch, now_ms: int, by: str) -> Switch:
    """An operator re-enables trading; the switch re-arms from now."""
    return replace(switch, halted_at_ms=None, reason=f"re-enabled by {by}", last_heartbeat_ms=now_ms)


def halt_reason(switches: dict[str, Switch], strategy_id: str) -> str | None:
    """Why a new order of this strategy must be refused, if it must."""
    for key in (GLOBAL, strategy_id):
        s = switches.get(key)
        if s is not None and s.halted:
            return s.reason
    return None


def venue_switch_needed(switches: dict[str, Switch], now_ms: int) -> bool:
    """Keep the venues' cancel-all-after armed while any heartbeat is alive."""
    return any(not s.halted and now_ms <= s.deadline_ms for s in switches.values())
