"""The order-events wire format (shared/app/events.py): the committed JSON Schema is the model's, and every kind
of message the service emits (new, fills, cancel, a signal's rejection, parent and child, the dead man's switch)
validates against it, with quantities, prices and fees as JSON numbers that are exactly the record's Decimals."""

from __future__ import annotations

import json
from dataclasses import fields
from decimal import Decimal

import jsonschema
import pytest

from shared.app import algorithms, events
from shared.app.dms import DeadMansSwitchService
from shared.domain.orders import OrderEvent, S
from shared.infra import exact_json

from .test_order_service import OID, SEED, Env, deliver
from .test_parent_orders import PARENT_ID, Env as ParentEnv

D = Decimal
VALIDATOR = jsonschema.Draft202012Validator(json.loads(events.OUT.read_text()))
NUMBERS = ("filled_quantity", "average_price", "commission", "quantity", "remaining_quantity")


def checked(wire: list[bytes]) -> list[dict]:
    """Each message validated against the committed schema; parsed with its numbers as Decimals."""
    out = []
    for data in wire:
        errors = [e.message for e in VALIDATOR.iter_errors(json.loads(data))]
        assert not errors, (data, errors)
        out.append(json.loads(data, parse_float=Decimal))
    return out


def test_the_committed_schema_is_the_models():
    assert events.OUT.read_text() == events.render(), "run: python -m shared.app.events"
    jsonschema.Draft202012Validator.check_schema(json.loads(events.OUT.read_text()))


def test_the_model_has_every_field_of_as_message_and_no_other():
    env = Env()
    env.create()
    message = env.store.outbox(OID)[0]
    assert set(message) == set(events.OrderEventMessage.model_fields) - {"details", "message_id"}
    assert {f.name for f in fields(OrderEvent)} - {"last_fill", "commissions"} <= set(message)


def test_new_fill_and_filled_events_carry_exact_numbers():
    env = Env()
    env.venue.on_place(fill="0.4")
    env.create()
    env.run_submit()
    env.venue.fill(env.stored().venue_id, "0.6")
    env.run_sync()
    order = env.stored()
    mine = [m for m in checked(env.publisher.wire) if m["order_id"] == OID]
    assert [m["status"] for m in mine] == ["new", "pending_submit", "accepted", "partially_filled", "filled"]
    for m in mine:
        for name in NUMBERS:
            assert m[name] is None or isinstance(m[name], (int, Decimal)), (name, m)
        assert isinstance(m["timestamp"], int) and m["timestamp"] > 1_600_000_000_000
    new, last = mine[0], mine[-1]
    assert (new["filled_quantity"], new["average_price"], new["commission"]) == (0, None, 0)
    assert last["filled_quantity"] == order.filled_quantity == D("1")
    assert last["average_price"] == order.average_price and last["commission"] == order.commission > 0
    assert last["commissions"] == {k: v for k, v in order.commissions.items()}
    fill = last["last_fill"]
    assert isinstance(fill["quantity"], Decimal) and fill["price"] == D("50000") and isinstance(fill["fee"], Decimal)


def test_numbers_keep_every_digit():
    message = {**events.rejection({}, "x", [], "m", 1), "order_id": "ord_1", "sequence": 1,
               "filled_quantity": "12345.123456789012345678", "average_price": "0.000000000001",
               "commission": "1E-18", "commissions": {"BTC": "0.10"}}
    data = events.encode(message)
    assert b'"filled_quantity":12345.123456789012345678' in data and b'"commissions":{"BTC":0.10}' in data
    parsed = json.loads(data, parse_float=Decimal)
    assert parsed["filled_quantity"] == D("12345.123456789012345678") and parsed["commission"] == D("1E-18")
    checked([data])


def test_a_cancelled_order_s_events_validate():
    env = Env()
    env.working()
    env.svc.cancel(OID)
    mine = [m for m in checked(env.publisher.wire) if m["order_id"] == OID]
    assert mine[-1]["status"] == "canceled"
    assert (mine[-1]["filled_quantity"], mine[-1]["remaining_quantity"], mine[-1]["quantity"]) == (0, 0, 1)


@pytest.mark.parametrize("message", [
    b"not json",
    b"[1, 2]",
    {**SEED, "quantity": "lots"},
    {**SEED, "side": "hold", "signal_id": 42},
    {k: v for k, v in SEED.items() if k != "price"},
], ids=["not-json", "array", "bad-quantity", "bad-side-and-id", "limit-without-price"])
def test_a_signal_s_rejection_carries_every_field_of_the_format(message):
    env = Env()
    assert deliver(env, message, "m-7").status == "rejected"
    [rejected] = checked(env.publisher.wire)
    assert set(rejected) == set(events.OrderEventMessage.model_fields)
    assert rejected["status"] == "rejected" and rejected["order_id"] is None and rejected["sequence"] == 0
    assert (rejected["filled_quantity"], rejected["quantity"], rejected["remaining_quantity"],
            rejected["commission"]) == (0, 0, 0, 0)
    assert rejected["average_price"] is None and rejected["last_fill"] is None
    assert rejected["message_id"] == "m-7" and rejected["reason"]
    if isinstance(message, dict) and isinstance(message.get("signal_id"), str):
        assert (rejected["signal_id"], rejected["strategy_id"], rejected["symbol"]) == \
            (message["signal_id"], "momentum_1", "BTC/USDT")
        assert rejected["client_order_id"].startswith("sig-")
    else:
        assert rejected["signal_id"] is None and rejected["client_order_id"] is None


def test_a_halted_strategy_s_signal_is_rejected_in_the_full_format():
    env = Env()
    env.svc.halt_reason = lambda strategy_id: "dead man's switch"
    assert deliver(env, SEED).status == "rejected"
    [rejected] = checked(env.publisher.wire)
    assert rejected["side"] == "buy" and rejected["exchange"] == "binance" and rejected["details"] == [
        {"field": "strategy_id", "issue": "halted"}]


def test_parent_and_child_events_validate_and_name_each_other(monkeypatch):
    env = ParentEnv()
    monkeypatch.setattr(algorithms, "planner_for", lambda name, params: env.planner)
    env.venue.on_place(fill="all")
    env.slice()
    env.submit_children()
    env.clock.advance(1_000)
    env.slice()
    seen = checked(env.publisher.wire)
    parent = [m for m in seen if m["order_id"] == PARENT_ID]
    children = [m for m in seen if m["parent_id"] == PARENT_ID]
    assert parent and all(m["algorithm"] == "twap" and m["parent_id"] is None for m in parent)
    assert children and all(m["algorithm"] is None for m in children)
    assert any(m["status"] == "filled" for m in children)
    assert parent[-1]["filled_quantity"] == env.parent().filled_quantity == D("1")


def test_a_dead_mans_switch_firing_and_resuming_emits_valid_notices_and_cancel_events():
    from tests.unit.app.test_dms_service import Env as DmsEnv

    env = DmsEnv(latch=False)  # unlatched: a heartbeat sent after the firing resumes the strategy
    env.dms.heartbeat("momentum_1", 1_000, sent_at_ms=env.clock())
    order = env.working("momentum_1", 1)
    env.clock.advance(2_000)
    assert env.dms.check()["fired"]
    env.clock.advance(1)
    env.dms.heartbeat("momentum_1", 1_000, sent_at_ms=env.clock())
    seen = checked(env.publisher.wire)
    notices = [m for m in seen if m.get("type") == "dead_mans_switch"]
    assert [n["status"] for n in notices] == ["halted", "resumed"]
    assert all(n["strategy_id"] == "momentum_1" and n["order_id"] is None for n in notices)
    assert [m["status"] for m in seen if m.get("order_id") == order.order_id][-1] in ("pending_cancel", "canceled")


def test_the_schema_refuses_what_the_format_is_not():
    good = json.loads(events.encode({**events.rejection({}, "x", [], "m", 1)}))
    for bad in ({**good, "filled_quantity": "0"}, {**good, "timestamp": "1"}, {**good, "status": "lost"},
                {**good, "surprise": 1}, {k: v for k, v in good.items() if k != "commission"}):
        assert not VALIDATOR.is_valid(bad), bad


def test_exact_json_dumps_writes_decimals_as_numbers_and_refuses_nan():
    assert exact_json.dumps({"a": [D("1.50"), None, True, "x"], "b": D("-2E+3")}) == '{"a":[1.50,null,true,"x"],"b":-2E+3}'
    assert json.loads(exact_json.dumps(D("0.1")), parse_float=Decimal) == D("0.1")
    for bad in (D("NaN"), D("Infinity"), float("nan")):
        with pytest.raises(ValueError):
            exact_json.dumps({"x": bad})


def test_an_order_event_s_status_is_one_of_the_statuses():
    schema = json.loads(events.OUT.read_text())
    status = schema["$defs"]["OrderEventMessage"]["properties"]["status"]
    resolved = schema["$defs"][status["$ref"].rsplit("/", 1)[1]] if "$ref" in status else status
    assert set(resolved["enum"]) == {s.value for s in S}
