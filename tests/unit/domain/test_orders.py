"""The order state machine, fill accounting and validation (pure, exhaustive where it can be)."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.orders import (
    TRANSITIONS,
    Fill,
    IllegalTransition,
    Intent,
    IntentKind,
    Leg,
    LegState,
    InvalidOrder,
    Order,
    OrderType,
    Side,
    Status,
    TimeInForce,
    VenueReport,
    apply_venue_report,
    client_order_id_for_signal,
    day_end_ms,
    differing_terms,
    expiry_ms,
    order_id_for,
    replacement_client_order_id,
    validate,
    venue_client_id_for,
)

D = Decimal


def make(**kw) -> Order:
    base = dict(order_id="ord_1", client_order_id="c-1", strategy_id="s", exchange="binance", symbol="BTC/USDT",
                side=Side.BUY, quantity=D("1"), order_type=OrderType.LIMIT, price=D("50000"),
                time_in_force=TimeInForce.GTC, created_at=1000)
    base.update(kw)
    return Order(**base)


def fill(tid: str, qty: str, price: str = "50000", fee: str = "0.001", ts: int = 2000) -> Fill:
    return Fill(tid, D(qty), D(price), D(fee), "BTC", ts)


def report(status: str, filled: str, *fills: Fill, cid: str = "c-1", vid: str = "v1") -> VenueReport:
    return VenueReport(status=status, venue_order_id=vid, filled_quantity=D(filled),
                       fills=tuple(replace(f, venue_order_id=vid) for f in fills), venue_client_id=cid)


def sent(**kw) -> Order:
    """Placed and acknowledged: one open leg c-1 (venue order v1)."""
    order = make(status=Status.PENDING_SUBMIT, **kw)
    order, _ = apply_venue_report(order, report("open", "0"), 1500)
    assert order.status is Status.ACCEPTED
    return order


@pytest.mark.parametrize("working", [Status.ACCEPTED, Status.TRIGGERED, Status.PENDING_CANCEL,
                                     Status.PENDING_REPLACE, Status.PARTIALLY_FILLED])
def test_a_venue_rejecting_a_working_order_is_recorded_whatever_it_was_doing(working):
    order = replace(sent(), status=working)
    order, events = apply_venue_report(order, report("rejected", "0"), 3000, reason="venue risk")
    assert order.status is Status.REJECTED and order.is_terminal
    assert events[-1].status is Status.REJECTED and events[-1].reason == "venue risk"


def test_an_illegal_transition_raises():
    with pytest.raises(IllegalTransition):
        make(status=Status.FILLED).transition(Status.ACCEPTED, 5000)


def test_every_status_is_in_the_table():
    assert set(TRANSITIONS) == set(Status)


def test_fills_are_counted_once_and_drive_the_status():
    order = make(status=Status.ACCEPTED)
    order, evs = order.with_fill(fill("t1", "0.4", "50000", "0.1"), 3000)
    assert order.status is Status.PARTIALLY_FILLED and evs[-1].last_fill.trade_id == "t1"
    same, none = order.with_fill(fill("t1", "0.4"), 3100)
    assert same is order and none == []
    order, evs = order.with_fill(fill("t2", "0.6", "50100", "0.2"), 3200)
    assert order.status is Status.FILLED and evs[-1].status is Status.FILLED
    assert order.filled_quantity == D("1") and order.remaining_quantity == 0
    assert order.average_price == D("50060") and order.commissions == {"BTC": D("0.3")}
    assert order.first_fill_at == 3000 and order.terminal_at == 3200


def test_fill_that_raced_a_cancel_is_counted_and_completes_the_order():
    order = make(status=Status.CANCELED, fills=(fill("t1", "0.5"),))
    order, _ = order.with_fill(fill("t2", "0.5"), 4000)
    assert order.status is Status.FILLED and order.filled_quantity == 1


def test_late_partial_fill_of_a_canceled_order_keeps_it_canceled():
    order = make(status=Status.CANCELED)
    order, evs = order.with_fill(fill("t1", "0.3"), 4000)
    assert order.status is Status.CANCELED and order.filled_quantity == D("0.3")
    assert evs[0].status is Status.CANCELED and evs[0].last_fill.trade_id == "t1"


def test_a_late_fill_of_a_rejected_order_is_kept():
    order, _ = make(status=Status.REJECTED).with_fill(fill("t1", "0.3"), 4000)
    assert order.status is Status.REJECTED and order.filled_quantity == D("0.3")


def test_fill_during_pending_cancel_keeps_the_cancel_in_flight():
    order, _ = make(status=Status.PENDING_CANCEL).with_fill(fill("t1", "0.3"), 4000)
    assert order.status is Status.PENDING_CANCEL and order.filled_quantity == D("0.3")


def test_an_overfill_is_kept_shown_and_flagged():
    order = make(status=Status.FILLED, fills=(fill("t1", "1"),))
    order, events = order.with_fill(fill("t2", "0.1"), 5000)
    assert order.status is Status.FILLED and order.filled_quantity == D("1.1")
    assert order.overfill == D("0.1") and order.attention.startswith("overfill")
    assert [e.last_fill.trade_id for e in events if e.last_fill] == ["t2"] and events[-1].attention


def test_a_cancel_whose_trades_lag_the_venue_keeps_the_order_open_until_they_arrive():
    order = sent()
    # The cancel answer says 0.7 filled; the trades list shows only 0.4 so far.
    order, _ = apply_venue_report(order, report("canceled", "0.7", fill("t1", "0.4")), 3000)
    assert not order.is_terminal and order.filled_quantity == D("0.4")
    assert order.fill_lag() == {"c-1": D("0.3")} and "fills lag" in order.attention
    # A later read brings the rest: now it closes, with every fill.
    order, events = apply_venue_report(order, report("canceled", "0.7", fill("t1", "0.4"), fill("t2", "0.3")), 4000)
    assert order.status is Status.CANCELED and order.filled_quantity == D("0.7") and order.attention is None
    assert events[-1].status is Status.CANCELED


def test_the_original_closing_during_a_replace_does_not_close_the_order():
    order = replace(sent(), status=Status.PENDING_REPLACE,
                    intent=Intent(IntentKind.REPLACE, "rpl-1", "tok", 2000, replaces="c-1"))
    order = order.with_leg(Leg("rpl-1"))
    order, _ = apply_venue_report(order, report("canceled", "0"), 3000)
    assert order.status is Status.PENDING_REPLACE and not order.is_terminal
    assert order.leg("c-1").state is LegState.CLOSED and order.leg("rpl-1") is not None


def test_an_order_is_not_closed_while_another_of_its_venue_orders_is_open():
    order = sent().with_leg(Leg("rpl-1", LegState.OPEN, venue_order_id="v2"))
    order, _ = apply_venue_report(order, report("canceled", "0"), 3000)
    assert not order.is_terminal


def test_commission_is_kept_per_currency_and_the_single_figure_is_in_the_quote():
    order = make(status=Status.ACCEPTED, quantity=D("2"))
    order, _ = order.with_fill(Fill("t1", D("1"), D("50000"), D("0.0005"), "BTC", 1), 2)
    order, _ = order.with_fill(Fill("t2", D("0.5"), D("50000"), D("25"), "USDT", 3), 4)
    order, _ = order.with_fill(Fill("t3", D("0.5"), D("50000"), D("0.01"), "BNB", 5), 6)
    assert order.commissions == {"BTC": D("0.0005"), "USDT": D("25"), "BNB": D("0.01")}
    assert order.commission == D("0.0005") * 50000 + D("25")  # 50 USDT; the BNB fee is not in it


def test_average_price_has_a_fixed_precision():
    order = make(status=Status.ACCEPTED, quantity=D("3"))
    for i, price in enumerate(("1", "2", "2")):
        order, _ = order.with_fill(Fill(f"t{i}", D("1"), D(price), D(0), "USDT", i), i)
    assert order.average_price == D("1.666666666667") and order.average_price.as_tuple().exponent == -12


fills_strategy = st.lists(
    st.tuples(st.integers(1, 10_000), st.decimals(D("0.001"), D("0.5"), places=3),
              st.decimals(D("40000"), D("60000"), places=2), st.decimals(D("0"), D("1"), places=4),
              st.integers(0, 10**6)),
    min_size=1, max_size=12, unique_by=lambda t: t[0])


@settings(max_examples=200, deadline=None)
@given(fills_strategy, st.randoms(use_true_random=False))
def test_accounting_is_the_same_whatever_the_order_or_repetition_of_reports(raw, rnd):
    fills = [Fill(str(tid), q, p, fee, "USDT", ts) for tid, q, p, fee, ts in raw]
    total = sum(f.quantity for f in fills)
    base = make(status=Status.ACCEPTED, quantity=total + D("1"))
    reports = fills + rnd.sample(fills, k=min(3, len(fills)))  # some repeated
    rnd.shuffle(reports)
    order = base
    for f in reports:
        order, _ = order.with_fill(f, 1)
    assert order.filled_quantity == total
    assert order.commissions == {"USDT": sum(f.fee for f in fills)}
    exact = sum(f.quantity * f.price for f in fills) / total
    assert abs(order.average_price - exact) <= D("0.5e-12")
    assert order.status is Status.PARTIALLY_FILLED
    assert order.remaining_quantity == D("1")
    assert [f.trade_id for f in order.fills] == [f.trade_id for f in sorted(fills, key=lambda f: (f.timestamp_ms,
                                                                                                   f.trade_id))]


# ---- venue reports -----------------------------------------------------------------------------------
def test_marketable_order_report_accepted_then_filled():
    order, _ = make().transition(Status.PENDING_SUBMIT, 1500)
    report = VenueReport("filled", "v1", D("1"), (fill("t1", "0.6"), fill("t2", "0.4", ts=2001)))
    order, events = apply_venue_report(order, report, 2100)
    assert [e.status for e in events] == [Status.ACCEPTED, Status.PARTIALLY_FILLED, Status.FILLED]
    assert [e.sequence for e in events] == [3, 4, 5]
    assert order.venue_order_id == "v1" and order.status is Status.FILLED
    again, none = apply_venue_report(order, report, 2200)
    assert none == [] and again == order


def test_ioc_partial_then_expired():
    order, _ = make(time_in_force=TimeInForce.IOC).transition(Status.PENDING_SUBMIT, 1500)
    order, events = apply_venue_report(order, VenueReport("expired", "v1", D("0.2"), (fill("t1", "0.2"),)), 2000)
    assert [e.status for e in events] == [Status.ACCEPTED, Status.PARTIALLY_FILLED, Status.EXPIRED]
    assert order.filled_quantity == D("0.2") and order.remaining_quantity == 0


def test_rejected_by_the_venue_with_its_reason():
    order, _ = make().transition(Status.PENDING_SUBMIT, 1500)
    order, events = apply_venue_report(order, VenueReport("rejected", None, D(0)), 2000, reason="insufficient funds")
    assert [e.status for e in events] == [Status.REJECTED] and events[0].reason == "insufficient funds"


def test_cancel_refused_because_the_order_filled():
    order = make(status=Status.PENDING_CANCEL, venue_order_id="v1")
    order, events = apply_venue_report(order, VenueReport("filled", "v1", D("1"), (fill("t1", "1"),)), 3000)
    assert order.status is Status.FILLED and [e.status for e in events] == [Status.FILLED]


def test_canceled_after_a_partial_fill():
    order = make(status=Status.PENDING_CANCEL, venue_order_id="v1")
    order, events = apply_venue_report(order, VenueReport("canceled", "v1", D("0.3"), (fill("t1", "0.3"),)),
                                       3000, reason="requested")
    assert [e.status for e in events] == [Status.PENDING_CANCEL, Status.CANCELED]
    assert order.filled_quantity == D("0.3") and order.reason == "requested"


def test_stop_order_triggers():
    order = make(order_type=OrderType.STOP, price=None, stop_price=D("51000"), status=Status.ACCEPTED)
    order, events = apply_venue_report(order, VenueReport("open", "v1", D(0), triggered=True), 3000)
    assert order.status is Status.TRIGGERED


def test_contradicting_report_is_refused():
    order = make(status=Status.REJECTED)
    with pytest.raises(IllegalTransition):
        order.transition(Status.ACCEPTED, 1)


# ---- identity and validation -------------------------------------------------------------------------
def test_ids_are_deterministic_and_venue_safe():
    a = client_order_id_for_signal("momentum_1", "sig_123")
    assert a == client_order_id_for_signal("momentum_1", "sig_123") != client_order_id_for_signal("m2", "sig_123")
    assert len(a) <= 36
    assert replacement_client_order_id(a, 1) != replacement_client_order_id(a, 2)
    assert len(replacement_client_order_id(a, 1)) <= 36


def test_a_client_order_id_is_scoped_by_strategy_in_the_record_and_at_the_venue():
    assert order_id_for("s1", "c-1") != order_id_for("s2", "c-1")
    assert venue_client_id_for("s1", "c-1") != venue_client_id_for("s2", "c-1")
    assert len(venue_client_id_for("s" * 128, "c" * 36)) <= 36


def test_a_repeat_with_other_terms_names_what_differs():
    first = make()
    assert differing_terms(first, replace(first, created_at=9999)) == []
    assert differing_terms(first, replace(first, quantity=D("2"), price=D("1"))) == ["quantity", "price"]


@pytest.mark.parametrize(("changes", "field", "issue"), [
    ({"order_type": OrderType.LIMIT, "price": None}, "price", "required"),
    ({"order_type": OrderType.MARKET, "price": D("1")}, "price", "not allowed"),
    ({"quantity": D("0")}, "quantity", "greater than 0"),
    ({"quantity": D("-1")}, "quantity", "greater than 0"),
    ({"quantity": D("NaN")}, "quantity", "finite"),
    ({"price": D("Infinity")}, "price", "finite"),
    ({"symbol": "BTCUSDT"}, "symbol", "BASE/QUOTE"),
    ({"symbol": "btc/usdt"}, "symbol", "BASE/QUOTE"),
    ({"exchange": "nasdaq"}, "exchange", "unknown venue"),
    ({"order_type": OrderType.STOP, "price": None}, "stop_price", "required"),
    ({"stop_price": D("1")}, "stop_price", "not allowed"),
    ({"post_only": True, "time_in_force": TimeInForce.IOC}, "post_only", "IOC"),
    ({"post_only": True, "order_type": OrderType.MARKET, "price": None}, "post_only", "only for limit"),
    ({"time_in_force": TimeInForce.GTD}, "expire_at", "required"),
    ({"time_in_force": TimeInForce.GTD, "expire_at": 500}, "expire_at", "future"),
    ({"expire_at": 99999}, "expire_at", "only with"),
    ({"max_slippage_bps": D("0")}, "max_slippage_bps", "greater than 0"),
    ({"client_order_id": "has space"}, "client_order_id", "characters"),
    ({"client_order_id": "x" * 37}, "client_order_id", "1-36"),
    ({"strategy_id": ""}, "strategy_id", "required"),
    ({"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.DAY}, "time_in_force", "market"),
])
def test_validation_names_the_field_and_the_problem(changes, field, issue):
    with pytest.raises(InvalidOrder) as err:
        validate(replace(make(), **changes), venues={"binance"}, now_ms=1000)
    assert any(f == field and issue in i for f, i in err.value.problems), err.value.problems


def test_valid_orders_pass_and_problems_are_all_reported():
    validate(make(), venues={"binance"})
    validate(make(order_type=OrderType.STOP_LIMIT, stop_price=D("49000")), venues={"binance"})
    with pytest.raises(InvalidOrder) as err:
        validate(make(quantity=D("0"), symbol="x", exchange="nope"), venues={"binance"})
    assert {f for f, _ in err.value.problems} == {"quantity", "symbol", "exchange"}


def test_expiry_of_day_and_gtd_orders():
    assert day_end_ms(1) == 86_400_000 and day_end_ms(86_400_000) == 2 * 86_400_000
    assert expiry_ms(make(time_in_force=TimeInForce.DAY, created_at=1000)) == 86_400_000
    assert expiry_ms(make(time_in_force=TimeInForce.GTD, expire_at=5000)) == 5000
    assert expiry_ms(make()) is None


def test_event_message_is_the_seed_output_form_plus_context():
    order, _ = make(signal_id="sig_123", status=Status.ACCEPTED).with_fill(fill("t1", "1", "49995.5", "0.0001"), 7)
    msg = order.created_event().as_message()
    for key in ("order_id", "signal_id", "status", "filled_quantity", "average_price", "commission", "timestamp",
                "client_order_id", "exchange", "symbol", "side", "quantity", "remaining_quantity", "last_fill",
                "reason", "sequence"):
        assert key in msg
    assert msg["status"] == "filled" and msg["average_price"] == D("49995.5")
    assert msg["commission"] == D("0.0001") * D("49995.5") and msg["commissions"] == {"BTC": D("0.0001")}
