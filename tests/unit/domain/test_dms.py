"""Dead man's switch rules (pure): deadlines from the send time, stale heartbeats ignored, latching, fail-closed
halts, and the sweep that finishes a firing."""

import pytest

from shared.domain.dms import (
    GLOBAL,
    SWEEP_GRACE_MS,
    Switch,
    fire,
    halt_reason,
    heartbeat,
    next_deadline,
    release,
    swept,
    sweeps,
    venue_switch_needed,
)
from shared.domain.freshness import oldest, staleness

AGE = 10_000


def beat(previous, sent, now, latch=True, timeout=5000, strategy="a"):
    return heartbeat(previous, strategy, timeout, sent_at_ms=sent, now_ms=now, max_age_ms=AGE, latch=latch)


def test_the_deadline_counts_from_the_send_time_not_the_arrival():
    s = beat(None, sent=1000, now=4000).switch
    assert s.deadline_ms == 6000 and not s.halted
    assert not s.expired(6000) and s.expired(6001)
    halted = fire(s, 7000)
    assert halted.halted and "1000 ms late" in halted.reason and "strategy a" in halted.reason
    assert halted.sweep_before_ms == 7000
    assert not halted.expired(99999)  # fires once


def test_a_heartbeat_older_than_the_maximum_age_changes_nothing():
    live = beat(None, sent=0, now=0, timeout=60_000).switch
    old = beat(live, sent=1000, now=1000 + AGE + 1, timeout=60_000)
    assert old.switch == live and old.field == "sent_at_ms" and f"{AGE + 1} ms ago" in old.ignored
    assert beat(None, sent=1000, now=1000 + AGE + 1).switch is None  # arms nothing either
    future = beat(None, sent=50_000, now=1000)
    assert future.switch is None and "future" in future.ignored
    assert beat(None, sent=1000 + AGE, now=1000).switch is not None  # within the allowance, clamped to now
    assert beat(None, sent=1000 + AGE, now=1000).switch.last_heartbeat_ms == 1000


def test_a_heartbeat_without_a_send_time_is_ignored():
    assert "no send time" in beat(None, sent=None, now=1000).ignored


def test_a_latched_switch_ignores_every_heartbeat_until_an_operator_releases_it():
    halted = fire(Switch("a", 5000, 0), 6000)
    fresh = beat(halted, sent=7000, now=7000)
    assert fresh.switch == halted and fresh.field == "strategy_id" and "latched" in fresh.ignored
    released = release(halted, now_ms=8000, by="ops")
    assert not released.halted and released.deadline_ms == 13_000 and "ops" in released.reason
    assert released.sweep_before_ms == 6000  # the sweep of the firing goes on
    assert beat(released, sent=9000, now=9000).ignored is None


def test_unlatched_only_a_heartbeat_sent_after_the_firing_lifts_the_halt():
    halted = fire(Switch("a", 5000, 0), 6000)
    replayed = beat(halted, sent=5500, now=6500, latch=False)  # delayed in transit across the firing
    assert replayed.switch == halted and "before the switch fired" in replayed.ignored
    later = beat(halted, sent=6001, now=6100, latch=False)
    assert later.lifted and not later.switch.halted and later.switch.sweep_before_ms == 6000


def test_a_heartbeat_sent_after_the_deadline_does_not_rescue_the_switch():
    s = Switch("a", 5000, 0)
    late = beat(s, sent=5001, now=5002)
    assert late.switch == s and "after the deadline" in late.ignored


def test_a_reordered_older_heartbeat_never_moves_the_deadline_back():
    s = beat(None, sent=3000, now=3000).switch
    assert beat(s, sent=2000, now=3100).switch.last_heartbeat_ms == 3000


@pytest.mark.parametrize("timeout", [0, 999, 3_600_001])
def test_timeouts_are_bounded(timeout):
    with pytest.raises(ValueError, match="timeout_ms"):
        beat(None, sent=0, now=0, timeout=timeout)


def test_global_or_own_halt_refuses_orders():
    live = Switch("a", 5000, 0)
    assert halt_reason({"a": live}, "a", now_ms=1000) is None
    assert halt_reason({"a": fire(live, 9000)}, "a", now_ms=9000)
    assert halt_reason({"a": fire(live, 9000)}, "b", now_ms=9000) is None
    assert "global" in halt_reason({GLOBAL: fire(Switch(GLOBAL, 1000, 0), 5000)}, "b", now_ms=5000)


def test_a_missed_deadline_refuses_orders_before_any_check_fired_it():
    live = Switch("a", 5000, 0)
    assert halt_reason({"a": live}, "a", now_ms=5000) is None
    assert "deadline passed 1 ms ago" in halt_reason({"a": live}, "a", now_ms=5001)


def test_a_sweep_clears_only_when_none_is_left_after_the_grace():
    fired = fire(Switch("a", 1000, 0), 2000)
    assert swept(fired, 2000 + SWEEP_GRACE_MS, left=1) == fired
    assert swept(fired, 2000 + SWEEP_GRACE_MS - 1, left=0) == fired
    assert swept(fired, 2000 + SWEEP_GRACE_MS, left=0).sweep_before_ms is None


def test_a_sweep_covers_its_strategy_or_everything_and_only_orders_from_before_the_firing():
    own = fire(Switch("a", 1000, 0), 2000)
    assert sweeps(own, "a", 2000) and not sweeps(own, "a", 2001) and not sweeps(own, "b", 1000)
    everything = fire(Switch(GLOBAL, 1000, 0), 2000)
    assert sweeps(everything, "b", 1500)
    assert not sweeps(Switch("a", 1000, 0), "a", 0)


def test_venue_switch_is_kept_while_any_heartbeat_lives():
    assert venue_switch_needed({"a": Switch("a", 1000, 0), "b": Switch("b", 10_000, 0)}, now_ms=5000)
    assert not venue_switch_needed({"a": Switch("a", 1000, 0)}, now_ms=5000)
    assert not venue_switch_needed({}, now_ms=0)


def test_the_check_wakes_at_the_earliest_deadline_ahead():
    switches = {"a": Switch("a", 1000, 0), "b": Switch("b", 3000, 0), "c": fire(Switch("c", 10, 0), 20)}
    assert next_deadline(switches, now_ms=500) == 1000
    assert next_deadline(switches, now_ms=1001) == 3000
    assert next_deadline(switches, now_ms=3001) is None


def test_staleness_and_the_oldest_send_time():
    assert staleness(1000, 1000 + 5000, 5000) is None
    assert "5001 ms ago" in staleness(1000, 6001, 5000)
    assert oldest(None, 5, 3) == 3 and oldest(None) is None
