"""The dead man's switch, as rules: heartbeats, deadlines, latching, and who is halted.

A strategy (or the global switch, ``GLOBAL``) sends heartbeats with a timeout; its deadline is the heartbeat's
*send* time plus that timeout (a heartbeat that spent 3 s in transit buys 3 s less). A heartbeat older than the
maximum age (or dated too far ahead) is ignored, with its reason: it never arms, re-arms or lifts anything.

When the deadline passes the switch fires: the strategy is halted (no new orders) and every order of it that was
working then is to be cancelled. The firing is recorded first (``sweep_before_ms``), the cancels follow, and the
record stays until a sweep found none of those orders left, so a crash between firing and cancelling is finished
by the next check. A fired switch is *latched* (default): only an operator re-enables the strategy. Unlatched, a
heartbeat sent after the firing lifts the halt; one sent before it (delayed, replayed) never does.

Fail closed: a switch whose deadline passed counts as halted for new orders even before a check fired it.
Pure: times are epoch milliseconds passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.domain.freshness import staleness

GLOBAL = "*"
MIN_TIMEOUT_MS = 1_000
MAX_TIMEOUT_MS = 3_600_000
# A sweep clears only once it ran at least this long after the firing and found nothing left: an order whose
# intake passed the halt check just before the firing may be written to the store a moment after it.
SWEEP_GRACE_MS = 5_000


@dataclass(frozen=True)
class Switch:
    strategy_id: str  # GLOBAL for the service-wide switch
    timeout_ms: int
    last_heartbeat_ms: int  # when the last accepted heartbeat was sent
    halted_at_ms: int | None = None
    reason: str | None = None
    # Fired at this time, and its orders working then not yet all seen cancelled (None: nothing left to sweep).
    sweep_before_ms: int | None = None

    @property
    def deadline_ms(self) -> int:
        return self.last_heartbeat_ms + self.timeout_ms

    @property
    def halted(self) -> bool:
        return self.halted_at_ms is not None

    def expired(self, now_ms: int) -> bool:
        return not self.halted and now_ms > self.deadline_ms


@dataclass(frozen=True)
class Beat:
    """What a heartbeat did: `switch` is the switch as it now stands (None: none exists); `ignored` says why the
    heartbeat changed nothing (None: it was taken)."""

    switch: Switch | None
    ignored: str | None = None
    lifted: bool = False  # it lifted a halt (unlatched switches only)
    field: str | None = None  # what made it ignored: "sent_at_ms" (its age) or "strategy_id" (the switch's state)


def check_timeout(timeout_ms: int) -> None:
    if not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        raise ValueError(f"timeout_ms: must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}")


def heartbeat(previous: Switch | None, strategy_id: str, timeout_ms: int, *, sent_at_ms: int | None, now_ms: int,
              max_age_ms: int, latch: bool = True) -> Beat:
    """Judge one heartbeat sent at `sent_at_ms` against the switch as it stands."""
    check_timeout(timeout_ms)
    stale = staleness(sent_at_ms, now_ms, max_age_ms)
    if stale:
        return Beat(previous, f"heartbeat ignored: {stale}", field="sent_at_ms")
    sent = min(sent_at_ms, now_ms)  # never later than now: a clock ahead must not stretch the deadline
    if previous is not None and previous.halted:
        if latch:
            return Beat(previous, f"heartbeat ignored: the switch fired at {previous.halted_at_ms} and is latched "
                                  "until an operator re-enables the strategy", field="strategy_id")
        if sent <= previous.halted_at_ms:
            return Beat(previous, f"heartbeat ignored: sent at {sent}, before the switch fired at "
                                  f"{previous.halted_at_ms}; only a later heartbeat lifts the halt", field="strategy_id")
        return Beat(Switch(strategy_id, timeout_ms, sent, sweep_before_ms=previous.sweep_before_ms), lifted=True)
    if previous is not None and previous.expired(sent):
        return Beat(previous, f"heartbeat ignored: sent {sent - previous.deadline_ms} ms after the deadline it "
                              "was to extend; the switch fires", field="strategy_id")
    last = max(sent, previous.last_heartbeat_ms) if previous is not None else sent  # a reordered one never rewinds
    return Beat(Switch(strategy_id, timeout_ms, last,
                       sweep_before_ms=previous.sweep_before_ms if previous is not None else None))


def fire(switch: Switch, now_ms: int) -> Switch:
    """Halt, and record that every order of the switch working now is to be cancelled."""
    late_ms = now_ms - switch.deadline_ms
    who = "global heartbeat" if switch.strategy_id == GLOBAL else f"heartbeat of strategy {switch.strategy_id}"
    reason = f"dead man's switch: {who} missed ({switch.timeout_ms} ms timeout, {late_ms} ms late)"
    return replace(switch, halted_at_ms=now_ms, reason=reason, sweep_before_ms=now_ms)


def release(switch: Switch, now_ms: int, by: str) -> Switch:
    """An operator re-enables trading; the switch re-arms from now. A sweep not finished yet goes on: the orders
    that were working when it fired are still cancelled."""
    return replace(switch, halted_at_ms=None, reason=f"re-enabled by {by}", last_heartbeat_ms=now_ms)


def swept(switch: Switch, now_ms: int, left: int) -> Switch:
    """After a sweep that left `left` of the switch's orders not yet cancelled: clear the record once none is
    left and the grace after the firing has passed, else keep it for the next check."""
    if switch.sweep_before_ms is None or left or now_ms < switch.sweep_before_ms + SWEEP_GRACE_MS:
        return switch
    return replace(switch, sweep_before_ms=None)


def sweeps(switch: Switch, strategy_id: str, created_at_ms: int) -> bool:
    """Is an open order of `strategy_id` created at `created_at_ms` one this switch's sweep cancels?"""
    if switch.sweep_before_ms is None or created_at_ms > switch.sweep_before_ms:
        return False
    return switch.strategy_id == GLOBAL or switch.strategy_id == strategy_id


def halt_reason(switches: dict[str, Switch], strategy_id: str, now_ms: int) -> str | None:
    """Why a new order of this strategy must be refused, if it must: its own or the global switch fired, or
    its deadline passed and the check has not fired it yet (fail closed: the checker may be down)."""
    for key in (GLOBAL, strategy_id):
        s = switches.get(key)
        if s is None:
            continue
        if s.halted:
            return s.reason
        if s.expired(now_ms):
            who = "global heartbeat" if key == GLOBAL else f"heartbeat of strategy {key}"
            return f"dead man's switch: {who} missed (deadline passed {now_ms - s.deadline_ms} ms ago)"
    return None


def venue_switch_needed(switches: dict[str, Switch], now_ms: int) -> bool:
    """Keep the venues' cancel-all-after armed while any heartbeat is alive."""
    return any(not s.halted and now_ms <= s.deadline_ms for s in switches.values())


def next_deadline(switches: dict[str, Switch], now_ms: int) -> int | None:
    """The earliest deadline still ahead (the check wakes for it rather than up to a tick later)."""
    ahead = [s.deadline_ms for s in switches.values() if not s.halted and s.deadline_ms >= now_ms]
    return min(ahead) if ahead else None
