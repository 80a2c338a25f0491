"""Hostile input at the edge (issue 12): the JSON parser's bounds, the one set of field rules REST and signals share
(shared/app/fields.py through shared/app/schemas.py), the HTTP error shapes (functions/http.py) and a signal whose
intake crashes (shared/app/signals.deliver): answered with a `rejected` event, its ids on every log line."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import flask
import pytest
from google.api_core import exceptions as gexc
from pydantic import ValidationError

from functions import http
from shared.app import fields
from shared.app.schemas import Heartbeat, OrderListQuery, OrderRequest, Signal
from shared.app.signals import deliver
from shared.infra import errors, exact_json, log

from .app.test_order_service import Env

ORDER = {"strategy_id": "momentum_1", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
         "quantity": "0.1", "order_type": "limit", "price": "50000"}


# ---- exact_json: ASCII numbers, bounded depth and size -----------------------------------------------------
def test_fifty_thousand_nested_brackets_are_too_deep_not_a_recursion_error():
    with pytest.raises(exact_json.TooDeep):
        exact_json.loads(b"[" * 50_000)
    with pytest.raises(exact_json.TooDeep):
        exact_json.loads(b'{"a":' * 40_000 + b"1" + b"}" * 40_000)


def test_nesting_is_bounded_exactly_at_max_depth():
    deepest = b"[" * exact_json.MAX_DEPTH + b"]" * exact_json.MAX_DEPTH
    assert exact_json.depth(exact_json.loads(deepest)) == exact_json.MAX_DEPTH
    with pytest.raises(exact_json.TooDeep):
        exact_json.loads(b"[" + deepest + b"]")


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert exact_json.loads(json.dumps({"a": "[" * 100 + "{" * 100}).encode()) == {"a": "[" * 100 + "{" * 100}


def test_a_document_over_the_size_bound_is_refused_before_parsing():
    with pytest.raises(exact_json.TooLarge):
        exact_json.loads(b" " * 11 + b"{}", max_bytes=12)
    assert exact_json.loads(b" " * 10 + b"{}", max_bytes=12) == {}


@pytest.mark.parametrize("raw", ["[\u0661]", "[1_0]", "[0.0_1]", "[\uff11]", "[+1]", "[.5]", "[01]"])
def test_only_ascii_json_number_literals_parse(raw):
    with pytest.raises(ValueError):
        exact_json.loads(raw.encode())


@pytest.mark.parametrize("text", ["\u0661", "1_0", "0.0_1", "\uff11", "1.5e\u0663"])
def test_the_number_hooks_refuse_what_only_a_unicode_aware_scanner_would_hand_them(text):
    # CPython's C scanner matches ASCII digits only; its pure-Python fallback matches \d, any Unicode digit.
    with pytest.raises(ValueError):
        exact_json._int(text)
    with pytest.raises(ValueError):
        exact_json._decimal(text)


# ---- the number rule -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value,expected", [
    ("0.1", "0.1"), ("-2", "-2"), ("1e-5", "0.00001"), (".5", "0.5"), ("5.", "5"), (7, "7"),
    (Decimal("12345.123456789012345678"), "12345.123456789012345678"), ("0", "0"),
])
def test_ascii_decimal_literals_are_numbers(value, expected):
    assert fields.decimal_of(value) == Decimal(expected)


@pytest.mark.parametrize("value", [
    "0.0_1", "1_000", "\u0664\u0660", "\uff11", "\u00b2", " 1", "1 ", "1 000", "NaN", "Infinity", "-inf", "",
    "0x10", "1e99999", "1" * 41, "0." + "0" * 70 + "1", True, None, [1], {"a": 1}, Decimal("NaN"),
    Decimal("Infinity"), Decimal("1E+30"), 10**30, "1" * 65,
])
def test_anything_else_is_not_a_number(value):
    with pytest.raises(ValueError):
        fields.decimal_of(value)


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1_0", "-1", "+1", " 1", "1.0", "", True, 2**70, "9" * 20])
def test_integers_are_ascii_digits_within_their_range(value):
    with pytest.raises(ValueError):
        fields.int_of(value, 0, fields.INT64_MAX)


def test_an_integer_as_digits_or_json_integer():
    assert fields.int_of("42", 1, 500) == 42 and fields.int_of(42, 1, 500) == 42
    with pytest.raises(ValueError):
        fields.int_of("501", 1, 500)


# ---- one set of field rules for REST orders and signals --------------------------------------------------
BAD_FIELDS = [
    ("tags", {"tags": {"": "x"}}),
    ("tags", {"tags": {"__x__": "x"}}),
    ("tags", {"tags": {"a.b": "x"}}),
    ("tags", {"tags": {"a": "x\u202ey"}}),
    ("tags", {"tags": {"a": "x\x00"}}),
    ("tags", {"tags": {f"k{i}": "v" for i in range(33)}}),
    ("algorithm_params", {"algorithm": "twap", "algorithm_params": {"": 1}}),
    ("algorithm_params", {"algorithm": "twap", "algorithm_params": {"duration_s": 2**70}}),
    ("algorithm_params", {"algorithm": "twap", "algorithm_params": {"duration_s": "6_0"}}),
    ("algorithm_params", {"algorithm": "twap", "algorithm_params": {"duration_s": {"a": {"b": 1}}}}),
    ("algorithm", {"algorithm": "tw\x00ap"}),
    ("expire_at", {"time_in_force": "GTD", "expire_at": 2**70}),
    ("expire_at", {"time_in_force": "GTD", "expire_at": -1}),
    ("expire_at", {"time_in_force": "GTD", "expire_at": "\u0661\u0662"}),
    ("quantity", {"quantity": "0.0_1"}),
    ("quantity", {"quantity": "\u0660.\u0661"}),
    ("quantity", {"quantity": True}),
    ("price", {"price": "1e99999"}),
    ("max_slippage_bps", {"max_slippage_bps": "5_0"}),
    ("strategy_id", {"strategy_id": "s\x00"}),
    ("strategy_id", {"strategy_id": "s\u202e1"}),
    ("strategy_id", {"strategy_id": "__main__"}),
    ("strategy_id", {"strategy_id": "x" * 65}),
    ("exchange", {"exchange": "bin\nance"}),
    ("symbol", {"symbol": "BTC/\x00USDT"}),
]


@pytest.mark.parametrize("model,extra", [(OrderRequest, {}), (Signal, {"signal_id": "sig_1"})], ids=["rest", "signal"])
@pytest.mark.parametrize("field,change", BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_FIELDS)])
def test_rest_orders_and_signals_refuse_the_same_bad_field_by_name(model, extra, field, change):
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**ORDER, **extra, **change})
    assert {str(e["loc"][0]) for e in caught.value.errors()} == {field}


@pytest.mark.parametrize("signal_id", ["", "__x__", "sig\x00", "s" * 129, "sig\u202e", 7])
def test_a_signal_id_is_a_safe_id(signal_id):
    with pytest.raises(ValidationError):
        Signal.model_validate({**ORDER, "signal_id": signal_id})


def test_a_good_order_keeps_its_digits_and_its_tags():
    request = OrderRequest.model_validate({**ORDER, "quantity": Decimal("0.1000000000000000055511151231257827"),
                                           "tags": {"desk": "a", "note": "caf\u00e9"}, "expire_at": None})
    assert str(request.quantity) == "0.1000000000000000055511151231257827" and request.tags["note"] == "caf\u00e9"


def test_heartbeats_and_list_queries_use_the_same_id_and_integer_rules():
    with pytest.raises(ValidationError):
        Heartbeat.model_validate({"strategy_id": "s\u202e"})
    with pytest.raises(ValidationError):
        Heartbeat.model_validate({"timeout_ms": "\u0663\u0660\u0660\u0660"})
    for bad in ({"limit": "\u00b2"}, {"parent_id": "__main__"}, {"strategy_id": "a\x00"}, {"color": "red"},
                {"created_after": str(2**70)}):
        with pytest.raises(ValidationError):
            OrderListQuery.model_validate(bad)
    assert OrderListQuery.model_validate({"limit": "7"}).limit == 7


@pytest.mark.parametrize("value", ["s1\n", "s1\r", "ord_" + "0" * 24 + "\n"])
def test_a_trailing_newline_is_no_part_of_an_id(value):
    # Python's $ also matches before a final newline: the rules match the whole value.
    assert not fields.is_strategy_id(value) and not fields.is_signal_id(value) and not fields.is_order_id(value)
    with pytest.raises(ValueError):
        fields.int_of("42\n")
    with pytest.raises(ValueError):
        fields.decimal_of("1\n")


def test_order_ids_are_only_those_the_service_makes():
    assert fields.is_order_id("ord_" + "0" * 24)
    for bad in ("__main__", "__x__", "ord_doesnotexist", "ord_" + "0" * 23, "ORD_" + "0" * 24, "ord_" + "g" * 24):
        assert not fields.is_order_id(bad)


# ---- HTTP: every error JSON, 405 with Allow, 500 with a request id and no trace ------------------------------
@pytest.fixture
def client():
    app = http.create_app("edge-test")

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    @app.post("/body")
    def body():
        return flask.jsonify(http.json_body())

    def call(method: str, path: str, **kw):
        with app.test_request_context(path, method=method, **kw) as ctx:
            return http.dispatch(app, ctx.request, "p")

    return call


def test_a_405_is_json_and_names_the_allowed_methods(client):
    resp = client("DELETE", "/boom")
    assert resp.status_code == 405 and resp.json["error"]["code"] == "method_not_allowed"
    assert set(resp.headers["Allow"].split(", ")) >= {"GET"}


def test_a_404_is_json(client):
    resp = client("GET", "/nowhere\x01")
    assert resp.status_code == 404 and resp.is_json and resp.json["error"]["code"] == "not_found"


def test_an_unexpected_exception_is_a_500_with_a_request_id_and_no_trace(client, caplog):
    with caplog.at_level(logging.ERROR, logger="http"):
        resp = client("GET", "/boom")
    assert resp.status_code == 500 and resp.is_json
    error = resp.json["error"]
    assert error["code"] == "internal" and error["request_id"] == resp.headers["X-Request-Id"]
    assert "secret detail" not in resp.get_data(as_text=True) and "Traceback" not in resp.get_data(as_text=True)
    assert caplog.records and caplog.records[0].exc_info  # the trace is in the log


def test_a_too_large_body_is_413_and_a_too_deep_one_400_naming_the_body(client):
    big = client("POST", "/body", data=b" " * (exact_json.EDGE_MAX_BYTES + 1), content_type="application/json")
    assert big.status_code == 413 and big.json["error"]["details"][0]["field"] == "body"
    deep = client("POST", "/body", data=b"[" * 50_000, content_type="application/json")
    assert deep.status_code == 400 and deep.json["error"]["details"][0]["field"] == "body"
    plain = client("POST", "/body", data=b"{}", content_type="text/plain")
    assert plain.status_code == 400 and plain.json["error"]["details"][0]["field"] == "Content-Type"


# ---- Pub/Sub: a crash is answered, the ids on every line ------------------------------------------------------
def _log_lines() -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log.CloudLoggingFormatter())
    return handler, out


def test_a_signal_whose_intake_crashes_is_rejected_with_its_ids_on_every_log_line():
    env = Env()

    def explode(order):
        logging.getLogger("orders").warning("about to fail")
        raise ValueError("Value out of range")  # what Firestore raised for an integer beyond 64 bits

    env.svc.create = explode
    handler, out = _log_lines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with log.bind(message_id="m-42"):
            outcome = deliver(json.dumps({**ORDER, "signal_id": "sig_crash"}).encode(), "m-42", service=env.svc,
                              events=env.publisher, now_ms=env.clock, transient=errors.transient)
    finally:
        root.removeHandler(handler)
    assert outcome.status == "rejected" and outcome.signal_id == "sig_crash"
    [event] = env.publisher.rejections
    assert event["status"] == "rejected" and event["signal_id"] == "sig_crash" and event["message_id"] == "m-42"
    assert "ValueError" in event["reason"] and "Value out of range" not in event["reason"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) >= 3  # the service's own line, the crash with its trace, the rejection
    assert all(line["message_id"] == "m-42" and line["signal_id"] == "sig_crash" for line in lines)
    assert all(line["order_id"].startswith("ord_") for line in lines)
    assert any("stack_trace" in line for line in lines)


def test_a_dependency_that_is_down_is_raised_so_pubsub_delivers_again():
    env = Env()

    def unavailable(order):
        raise gexc.ServiceUnavailable("firestore is down")

    env.svc.create = unavailable
    with pytest.raises(gexc.ServiceUnavailable):
        deliver(json.dumps({**ORDER, "signal_id": "sig_later"}).encode(), "m-1", service=env.svc,
                events=env.publisher, now_ms=env.clock, transient=errors.transient)
    assert env.publisher.rejections == []


@pytest.mark.parametrize("exc,transient", [
    (gexc.ServiceUnavailable("x"), True), (gexc.DeadlineExceeded("x"), True), (gexc.TooManyRequests("x"), True),
    (gexc.InvalidArgument("reserved id"), False), (ValueError("x"), False), (RecursionError(), False),
    (KeyError("x"), False),
])
def test_which_failures_are_transient(exc, transient):
    assert errors.transient(exc) is transient


def test_ids_added_outside_a_bound_block_go_nowhere():
    log.add(order_id="ord_leak")
    assert "order_id" not in log.current()
    with log.bind(message_id="m"):
        log.add(order_id="ord_1")
        assert log.current() == {"message_id": "m", "order_id": "ord_1"}
    assert log.current() == {}


def test_metric_strategies_are_strategy_ids_since_they_become_label_values():
    from shared.infra.config import Settings

    assert Settings(metric_strategies="a,b").metric_strategies == ["a", "b"]
    for bad in ("a,b\u202e", "a\x00", "__x__"):
        with pytest.raises(ValidationError):
            Settings(metric_strategies=bad)
