"""Dead man's switch rules (pure)."""

import pytest

from shared.domain.dms import GLOBAL, Switch, fire, halt_reason, heartbeat, release, venue_switch_needed


def test_heartbeat_sets_the_deadline_and_lifts_a_halt():
    s = heartbeat(None, "a", 5000, now_ms=1000)
    assert s.deadline_ms == 6000 and not s.halted
    assert not s.expired(6000) and s.expired(6001)
    halted = fire(s, 7000)
    assert halted.halted and "1000 ms late" in halted.reason and "strategy a" in halted.reason
    assert not halted.expired(99999)  # fires once
    assert not heartbeat(halted, "a", 5000, now_ms=8000).halted


@pytest.mark.parametrize("timeout", [0, 999, 3_600_001])
def test_timeouts_are_bounded(timeout):
    with pytest.raises(ValueError, match="timeout_ms"):
        heartbeat(None, "a", timeout, now_ms=0)


def test_global_or_own_halt_refuses_orders():
    live = Switch("a", 5000, 0)
    assert halt_reason({"a": live}, "a") is None
    assert halt_reason({"a": fire(live, 9000)}, "a")
    assert halt_reason({"a": fire(live, 9000)}, "b") is None
    assert "global" in halt_reason({GLOBAL: fire(Switch(GLOBAL, 1000, 0), 5000)}, "b")


def test_release_re_arms_from_now():
    s = release(fire(Switch("a", 1000, 0), 5000), now_ms=6000, by="ops")
    assert not s.halted and s.deadline_ms == 7000 and "ops" in s.reason


def test_venue_switch_is_kept_while_any_heartbeat_lives():
    assert venue_switch_needed({"a": Switch("a", 1000, 0), "b": Switch("b", 10_000, 0)}, now_ms=5000)
    assert not venue_switch_needed({"a": Switch("a", 1000, 0)}, now_ms=5000)
    assert not venue_switch_needed({}, now_ms=0)
