"""A signal for a strategy outside its publisher's (its topic's) allowed set is rejected with a reason event and
makes no order (shared/app/signals.py); SIGNAL_STRATEGIES says which topic may trade which strategy."""

from __future__ import annotations

import json

import pytest

from shared.app import signals
from shared.app.orders import OrderService
from shared.infra.config import ConfigError, load_settings

from .fakes import Fakes

SIGNAL = {"signal_id": "sig-1", "strategy_id": "momentum_1", "exchange": "binance", "symbol": "BTC/USDT",
          "side": "buy", "quantity": "0.1", "order_type": "limit", "price": "50000"}


def intake(allowed, topic="desk-a-signals"):
    f = Fakes()
    svc = OrderService(store=f.store, cache=f.cache, events=f.publisher, scheduler=f.scheduler,
                       venues={"binance": f.venue}, metrics=f.metrics, clock=f.clock)
    outcome = signals.intake(json.dumps(SIGNAL).encode(), "m-1", service=svc, events=f.publisher, now_ms=f.clock,
                             allowed=allowed, topic=topic)
    return outcome, f


def test_a_signal_outside_the_publishers_strategies_is_rejected_with_a_reason_and_no_order():
    outcome, f = intake(frozenset({"mean_rev"}))
    assert outcome.status == "rejected" and outcome.order_id is None
    assert "momentum_1" in outcome.reason and "desk-a-signals" in outcome.reason
    assert [r["signal_id"] for r in f.publisher.rejections] == ["sig-1"]
    assert f.publisher.rejections[0]["details"] == [{"field": "strategy_id",
                                                     "issue": "outside the publisher's strategies"}]
    assert not f.store.docs


def test_a_signal_inside_them_becomes_an_order():
    for allowed in (frozenset({"momentum_1"}), None):
        outcome, f = intake(allowed)
        assert outcome.status == "accepted" and len(f.store.docs) == 1 and not f.publisher.rejections


def test_signal_strategies_map_topics_to_strategies_and_fail_closed_for_unknown_topics():
    default = load_settings(signal_strategies="")
    assert default.signal_scope(default.signals_topic) is None  # today's one topic: its IAM is the boundary
    assert default.signal_scope(default.heartbeats_topic) is None  # and its heartbeats topic
    assert default.signal_scope("another-topic") == frozenset()
    assert default.signal_scope(None) == frozenset()  # the source names no topic: nothing is allowed
    cfg = load_settings(signal_strategies="desk-a-signals=momentum_1|mean_rev,ops-signals=*")
    assert cfg.signal_scope("desk-a-signals") == frozenset({"momentum_1", "mean_rev"})
    assert cfg.signal_scope("ops-signals") is None
    assert cfg.signal_scope(cfg.signals_topic) == frozenset()  # once configured, only what is listed


@pytest.mark.parametrize("value", ["desk-a-signals", "desk-a-signals=", "a=x,a=y", "desk-a-signals=*|x"])
def test_a_bad_signal_strategies_entry_stops_start_up(value):
    with pytest.raises(ConfigError, match="SIGNAL_STRATEGIES"):
        load_settings(signal_strategies=value)
