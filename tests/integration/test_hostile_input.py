"""Hostile input on the stack (issue 12): hand-made bad inputs over REST (bodies, query strings, paths, headers)
each answered with a 4xx JSON error naming the field, never a 5xx or a stack trace; poison signals published with
the real Pub/Sub client each answered with one `rejected` event naming the problem (caught by a rule, not by the
crash net) and acknowledged; and a schemathesis run over the served openapi.json with 0 5xx and 0 stack traces.

Each list is data: (name, why it is bad, the request or payload, the field the answer must name)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from shared.domain.access import Role
from tests.integration.conftest import key_file_env, wait_for

ORDER = {"strategy_id": "hostile-it", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
         "quantity": "0.01", "order_type": "limit", "price": "40000"}  # far below the market: it rests
NO_SUCH = "ord_" + "0" * 24
DEEP = b"[" * 50_000
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/')


def order(**change) -> dict:
    return {**ORDER, "client_order_id": f"h-{uuid.uuid4().hex[:20]}", **change}


def without(field: str) -> dict:
    return {k: v for k, v in order().items() if k != field}


def raw_order(fragment: str, field: str = "price", **change) -> bytes:
    """An order body with `fragment` (raw JSON text: what json.dumps cannot write) as the value of `field`."""
    return json.dumps(order(**{field: "RAW"}, **change)).replace('"RAW"', fragment).encode()


# (name, why it is bad, method, path, request kwargs: json/data/params/headers, the field the answer names)
POST = "POST", "/orders"
REST_CASES = [
    # ---- bodies: the three that were 500s, and their kin
    ("tags empty key", "Firestore refuses an empty map key (was a 500)", *POST, {"json": order(tags={"": "x"})},
     "tags"),
    ("tags reserved key", "Firestore reserves field names __x__", *POST, {"json": order(tags={"__x__": "1"})}, "tags"),
    ("tags dotted key", "a dot is a Firestore field path", *POST, {"json": order(tags={"a.b": "1"})}, "tags"),
    ("tags key too long", "keys are at most 64 characters", *POST, {"json": order(tags={"k" * 65: "1"})}, "tags"),
    ("tags value NUL", "NUL in text reaches logs and labels", *POST, {"json": order(tags={"a": "x\x00"})}, "tags"),
    ("tags value RLO", "U+202E reverses what a log reader sees", *POST, {"json": order(tags={"a": "\u202ex"})},
     "tags"),
    ("tags value too long", "values are at most 256 characters", *POST, {"json": order(tags={"a": "v" * 257})},
     "tags"),
    ("tags value not text", "tag values are strings", *POST, {"json": order(tags={"a": 1})}, "tags"),
    ("tags too many", "at most 32 tags", *POST, {"json": order(tags={f"k{i}": "v" for i in range(33)})}, "tags"),
    ("tags not an object", "tags is a map", *POST, {"json": order(tags=["a"])}, "tags"),
    ("params empty key", "Firestore refuses an empty map key (was a 500)", *POST,
     {"json": order(algorithm="twap", algorithm_params={"": 1})}, "algorithm_params"),
    ("params empty key, no algorithm", "stored as given without an algorithm (was a 500)", *POST,
     {"json": order(algorithm_params={"": 1})}, "algorithm_params"),
    ("params int beyond 64 bits", "Firestore: value out of range", *POST,
     {"json": order(algorithm="twap", algorithm_params={"duration_s": 2**70})}, "algorithm_params"),
    ("params underscore number", "0.0_1 is no ASCII decimal literal", *POST,
     {"json": order(algorithm="twap", algorithm_params={"duration_s": "6_0"})}, "algorithm_params"),
    ("params unicode digits", "Arabic-Indic digits are not ASCII", *POST,
     {"json": order(algorithm="twap", algorithm_params={"duration_s": "\u0666\u0660"})}, "algorithm_params"),
    ("params nested object", "parameters are scalars or lists of numbers", *POST,
     {"json": order(algorithm="twap", algorithm_params={"duration_s": {"a": {"b": 1}}})}, "algorithm_params"),
    ("params not an object", "algorithm_params is a map", *POST,
     {"json": order(algorithm="twap", algorithm_params=[1])}, "algorithm_params"),
    ("params unknown name", "twap has no leverage", *POST,
     {"json": order(algorithm="twap", algorithm_params={"duration_s": 60, "leverage": 5})}, "algorithm_params"),
    ("params too many", "at most 32 parameters", *POST,
     {"json": order(algorithm="twap", algorithm_params={f"p{i}": 1 for i in range(33)})}, "algorithm_params"),
    ("algorithm unknown", "no such algorithm", *POST, {"json": order(algorithm="martingale")}, "algorithm"),
    ("algorithm NUL", "NUL in an id", *POST, {"json": order(algorithm="tw\x00ap")}, "algorithm"),
    ("expire_at 2**70", "beyond Firestore's 64 bits (was a 500)", *POST,
     {"json": order(time_in_force="GTD", expire_at=2**70)}, "expire_at"),
    ("expire_at year 10000", "beyond the epoch-ms range", *POST,
     {"json": order(time_in_force="GTD", expire_at=253_402_300_800_000)}, "expire_at"),
    ("expire_at negative", "epoch ms are not negative", *POST, {"json": order(time_in_force="GTD", expire_at=-1)},
     "expire_at"),
    ("expire_at fraction", "epoch ms are integers", *POST,
     {"data": raw_order("1.5", "expire_at", time_in_force="GTD")}, "expire_at"),
    ("expire_at unicode digits", "not ASCII digits", *POST,
     {"json": order(time_in_force="GTD", expire_at="\u0661\u0662\u0663")}, "expire_at"),
    ("expire_at boolean", "true is not a time", *POST, {"json": order(time_in_force="GTD", expire_at=True)},
     "expire_at"),
    ("50,000 nested [", "exhausted the parser's recursion (was a 500)", *POST, {"data": DEEP}, "body"),
    ("33 nested objects", "beyond the nesting bound", *POST,
     {"data": b'{"tags":' * 33 + b"1" + b"}" * 33}, "body"),
    ("body over 64 KiB", "beyond the edge's size bound", *POST,
     {"json": order(tags={"a": "x" * 70_000})}, "body"),
    ("not JSON", "unreadable", *POST, {"data": b"{not json"}, "body"),
    ("truncated JSON", "unreadable", *POST, {"data": b'{"strategy_id": "s'}, "body"),
    ("invalid UTF-8", "JSON is UTF-8", *POST, {"data": b'{"strategy_id": "\xff"}'}, "body"),
    ("JSON null", "no document", *POST, {"data": b"null"}, "body"),
    ("JSON array", "an order is an object", *POST, {"data": b"[1, 2]"}, "body"),
    ("JSON string", "an order is an object", *POST, {"data": b'"order"'}, "body"),
    ("empty body", "no document", *POST, {"data": b""}, "body"),
    ("text/plain body", "the API reads application/json", *POST,
     {"data": json.dumps(order()).encode(), "headers": {"Content-Type": "text/plain"}}, "Content-Type"),
    ("form body", "the API reads application/json", *POST,
     {"data": b"strategy_id=s", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, "Content-Type"),
    ("huge integer literal", "longer than Python converts", *POST, {"data": raw_order("1" * 5000)}, "body"),
    ("NaN literal price", "not a finite number", *POST, {"data": raw_order("NaN")}, "price"),
    ("Infinity literal price", "not a finite number", *POST, {"data": raw_order("Infinity")}, "price"),
    ("-Infinity literal price", "not a finite number", *POST, {"data": raw_order("-Infinity")}, "price"),
    ("price 1e99999", "a magnitude no decimal computation should meet", *POST, {"data": raw_order("1e99999")},
     "price"),
    ("price 1e-99999", "an exponent no venue has", *POST, {"data": raw_order("1e-99999")}, "price"),
    ("price 41 digits", "more significant digits than the bound", *POST, {"json": order(price="1" * 41)}, "price"),
    ("price 0.0_1", "Python's Decimal reads _; the API does not", *POST, {"json": order(price="0.0_1")}, "price"),
    ("price Arabic-Indic digits", "Unicode digits are not ASCII", *POST, {"json": order(price="\u0664\u0660")},
     "price"),
    ("price fullwidth digits", "Unicode digits are not ASCII", *POST, {"json": order(price="\uff14\uff10")},
     "price"),
    ("price superscript", "² is a digit to str.isdigit", *POST, {"json": order(price="\u00b2")}, "price"),
    ("price inner space", "not a literal", *POST, {"json": order(price="40 000")}, "price"),
    ("price hex", "not a decimal literal", *POST, {"json": order(price="0x10")}, "price"),
    ("price boolean", "true is not a price", *POST, {"json": order(price=True)}, "price"),
    ("price object", "not a number", *POST, {"json": order(price={"v": 1})}, "price"),
    ("price negative", "prices are positive", *POST, {"json": order(price="-1")}, "price"),
    ("quantity zero", "quantities are positive", *POST, {"json": order(quantity="0")}, "quantity"),
    ("quantity NaN string", "not finite", *POST, {"json": order(quantity="NaN")}, "quantity"),
    ("quantity list", "not a number", *POST, {"json": order(quantity=[1])}, "quantity"),
    ("quantity empty string", "not a number", *POST, {"json": order(quantity="")}, "quantity"),
    ("max_slippage_bps underscore", "not ASCII decimal", *POST, {"json": order(max_slippage_bps="5_0")},
     "max_slippage_bps"),
    ("max_slippage_bps above 10000", "beyond the bound", *POST, {"json": order(max_slippage_bps="10001")},
     "max_slippage_bps"),
    ("strategy_id NUL", "NUL reached Prometheus labels and logs", *POST, {"json": order(strategy_id="a\x00b")},
     "strategy_id"),
    ("strategy_id RLO", "U+202E reached labels and logs", *POST, {"json": order(strategy_id="a\u202eb")},
     "strategy_id"),
    ("strategy_id reserved", "__x__ is reserved by Firestore", *POST, {"json": order(strategy_id="__x__")},
     "strategy_id"),
    ("strategy_id too long", "at most 64 characters", *POST, {"json": order(strategy_id="s" * 65)}, "strategy_id"),
    ("strategy_id empty", "required", *POST, {"json": order(strategy_id="")}, "strategy_id"),
    ("strategy_id space", "not in the safe set", *POST, {"json": order(strategy_id="a b")}, "strategy_id"),
    ("strategy_id number", "an id is text", *POST, {"json": order(strategy_id=7)}, "strategy_id"),
    ("strategy_id missing", "required", *POST, {"json": without("strategy_id")}, "strategy_id"),
    ("signal_id NUL", "NUL in an id", *POST, {"json": order(signal_id="s\x00")}, "signal_id"),
    ("signal_id reserved", "__x__ is reserved", *POST, {"json": order(signal_id="__main__")}, "signal_id"),
    ("client_order_id RLO", "not in the safe set", *POST, {"json": order(client_order_id="a\u202e")},
     "client_order_id"),
    ("client_order_id too long", "at most 36 characters", *POST, {"json": order(client_order_id="c" * 37)},
     "client_order_id"),
    ("exchange newline", "not a venue name", *POST, {"json": order(exchange="bin\nance")}, "exchange"),
    ("exchange unknown", "no such venue", *POST, {"json": order(exchange="nasdaq")}, "exchange"),
    ("symbol NUL", "control character", *POST, {"json": order(symbol="BTC/\x00USDT")}, "symbol"),
    ("symbol lowercase", "BASE/QUOTE in capitals", *POST, {"json": order(symbol="btc/usdt")}, "symbol"),
    ("side unknown", "buy or sell", *POST, {"json": order(side="hold")}, "side"),
    ("order_type unknown", "not an order type", *POST, {"json": order(order_type="iceberg")}, "order_type"),
    ("time_in_force unknown", "not a time in force", *POST, {"json": order(time_in_force="GTX")}, "time_in_force"),
    ("post_only text", "a boolean", *POST, {"json": order(post_only="maybe")}, "post_only"),
    ("unknown field", "extra fields are refused", *POST, {"json": order(leverage=3)}, "leverage"),
    # ---- other bodies
    ("modify price underscore", "not ASCII decimal", "PUT", "/orders/{live}", {"json": {"price": "4_0"}}, "price"),
    ("modify quantity unicode", "not ASCII digits", "PUT", "/orders/{live}", {"json": {"quantity": "\u0661"}},
     "quantity"),
    ("modify unknown field", "only price, quantity, stop_price", "PUT", "/orders/{live}", {"json": {"side": "sell"}},
     "side"),
    ("modify nothing", "nothing to modify", "PUT", "/orders/{live}", {"json": {}}, "body"),
    ("modify deep body", "beyond the nesting bound", "PUT", "/orders/{live}", {"data": DEEP}, "body"),
    ("execute wait_s 31", "at most 30 s", "POST", "/execute", {"json": {"order": order(), "wait_s": 31}}, "wait_s"),
    ("execute wait_s unicode", "not ASCII", "POST", "/execute", {"json": {"order": order(), "wait_s": "\u0665"}},
     "wait_s"),
    ("execute bad nested order", "the nested order obeys the same rules", "POST", "/execute",
     {"json": {"order": order(tags={"": "x"})}}, "order"),
    ("heartbeat strategy RLO", "a strategy id is a safe id", "POST", "/heartbeat",
     {"json": {"strategy_id": "a\u202e"}}, "strategy_id"),
    ("heartbeat timeout unicode", "not ASCII digits", "POST", "/heartbeat",
     {"json": {"strategy_id": "a", "timeout_ms": "\u0663\u0660\u0660\u0660"}}, "timeout_ms"),
    ("heartbeat timeout 2**70", "out of range", "POST", "/heartbeat", {"json": {"timeout_ms": 2**70}}, "timeout_ms"),
    ("optimize quantity underscore", "not ASCII decimal", "POST", "/routes/optimize",
     {"json": {"side": "buy", "symbol": "BTC/USDT", "quantity": "1_0"}}, "quantity"),
    ("optimize depth 2**70", "out of range", "POST", "/routes/optimize",
     {"json": {"side": "buy", "symbol": "BTC/USDT", "quantity": "1", "depth": 2**70}}, "depth"),
    # ---- query strings
    ("limit superscript two", "str.isdigit('²') is True, int('²') fails (was a 500)", "GET", "/orders",
     {"params": {"limit": "\u00b2"}}, "limit"),
    ("limit Arabic-Indic", "not ASCII digits", "GET", "/orders", {"params": {"limit": "\u0665"}}, "limit"),
    ("limit underscore", "not ASCII digits", "GET", "/orders", {"params": {"limit": "1_0"}}, "limit"),
    ("limit negative", "1 to 500", "GET", "/orders", {"params": {"limit": "-1"}}, "limit"),
    ("limit 2**70", "out of range", "GET", "/orders", {"params": {"limit": str(2**70)}}, "limit"),
    ("limit twice", "one value per parameter", "GET", "/orders?limit=1&limit=2", {}, "limit"),
    ("created_after 2**70", "beyond Firestore's 64 bits", "GET", "/orders",
     {"params": {"created_after": str(2**70)}}, "created_after"),
    ("created_before fraction", "epoch ms are integers", "GET", "/orders", {"params": {"created_before": "1.5"}},
     "created_before"),
    ("status unknown", "not a status", "GET", "/orders", {"params": {"status": "sleeping"}}, "status"),
    ("strategy_id NUL in query", "NUL in an id", "GET", "/orders?strategy_id=a%00b", {}, "strategy_id"),
    ("parent_id reserved", "Firestore reserves __x__", "GET", "/orders", {"params": {"parent_id": "__main__"}},
     "parent_id"),
    ("symbol in query RLO", "not a symbol", "GET", "/orders", {"params": {"symbol": "BTC/\u202eUSDT"}}, "symbol"),
    ("cursor garbage", "not a cursor this service wrote", "GET", "/orders", {"params": {"cursor": "garbage!"}},
     "cursor"),
    ("cursor control character", "control character", "GET", "/orders?cursor=%01", {}, "cursor"),
    ("unknown parameter", "refused, not ignored", "GET", "/orders", {"params": {"color": "red"}}, "color"),
    ("tca seed superscript", "not ASCII digits", "GET", "/analytics/tca", {"params": {"seed": "\u00b2"}}, "seed"),
    ("tca since after until", "an empty window", "GET", "/analytics/tca", {"params": {"since": "10", "until": "5"}},
     "since"),
    ("tca group_by unknown", "not a group key", "GET", "/analytics/tca", {"params": {"group_by": "color"}},
     "group_by"),
    ("tca unknown parameter", "refused", "GET", "/analytics/tca", {"params": {"x": "1"}}, "x"),
    # ---- paths
    ("order id __main__", "Firestore reserves it: was a 503 'dependency unavailable'", "GET", "/orders/__main__", {},
     "order_id"),
    ("order id __x__", "reserved: was a 503", "GET", "/orders/__x__", {}, "order_id"),
    ("order id __x__ cancel", "reserved: was a 503", "DELETE", "/orders/__x__", {}, "order_id"),
    ("order id __x__ modify", "reserved: was a 503", "PUT", "/orders/__x__", {"json": {"price": "1"}}, "order_id"),
    ("order id __x__ tca", "reserved: was a 503", "GET", "/orders/__x__/tca", {}, "order_id"),
    ("order id __x__ pause", "reserved", "POST", "/orders/__x__/pause", {}, "order_id"),
    ("order id NUL", "control character", "GET", "/orders/%00", {}, "order_id"),
    ("order id RLO", "format character", "GET", "/orders/%E2%80%AE", {}, "order_id"),
    ("order id too long", "no order has it", "GET", "/orders/" + "o" * 1500, {}, "order_id"),
    ("order id well formed, unknown", "no such order", "GET", f"/orders/{NO_SUCH}", {}, "order_id"),
    ("newline in the path", "the framework's router cannot match it (was an HTML 404)", "GET", "/orders/x%0Ay", {},
     "path"),
    ("newline in the prefix", "an HTML 404 from the framework", "GET", "/orders%0A", {}, "path"),
    ("unknown route", "no such route", "GET", "/nowhere", {}, "path"),
    ("control character route", "no such route", "GET", "/%01", {}, "path"),
    ("PATCH orders", "not an allowed method (was a 405 without Allow)", "PATCH", "/orders", {"json": {}}, "method"),
    ("DELETE the list", "not an allowed method", "DELETE", "/orders", {}, "method"),
    ("GET execute", "not an allowed method", "GET", "/execute", {}, "method"),
    ("strategy enable RLO", "a strategy id is a safe id", "POST", "/strategies/a%E2%80%AE/enable", {},
     "strategy_id"),
    ("strategy enable reserved", "__x__ is no strategy id", "POST", "/strategies/__x__/enable", {}, "strategy_id"),
    # ---- headers
    ("no API key", "every route but health and openapi needs one", "GET", "/orders", {"key": None}, "X-API-Key"),
    ("wrong API key", "not a configured key", "GET", "/orders", {"key": "wrong"}, "X-API-Key"),
    ("empty API key", "not a key", "GET", "/orders", {"key": ""}, "X-API-Key"),
    ("latin-1 API key", "not a configured key", "GET", "/orders", {"key": "cl\u00e9"}, "X-API-Key"),
    ("4,000-character API key", "not a key; within gunicorn's header bound", "GET", "/orders", {"key": "k" * 4000},
     "X-API-Key"),
    ("no Content-Type", "the API reads application/json", *POST,
     {"data": json.dumps(order()).encode(), "headers": {"Content-Type": None}}, "Content-Type"),
    ("Content-Length over the bound", "the body is refused before it is read", *POST,
     {"data": b"{" + b" " * 70_000 + b"}"}, "body"),
]


@pytest.fixture(scope="module")
def live_order(api) -> str:
    created = api("POST", "/orders", order()).json()
    wait_for(api, created["order_id"], lambda o: o["status"] == "accepted")
    yield created["order_id"]
    api("DELETE", f"/orders/{created['order_id']}")


def test_the_list_is_long_enough_and_every_entry_says_why():
    assert len(REST_CASES) + len(SIGNAL_CASES) >= 100 and len(REST_CASES) >= 100
    assert all(case[1] for case in REST_CASES) and all(case[1] for case in SIGNAL_CASES)


@pytest.mark.parametrize(("name", "why", "method", "path", "kw", "field"), REST_CASES, ids=[c[0] for c in REST_CASES])
def test_a_bad_rest_input_is_a_4xx_json_error_naming_the_field(api, live_order, name, why, method, path, kw, field):
    kw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in kw.items()}
    key = kw.pop("key", "default")
    body = kw.pop("json", None) if "json" in kw else kw.pop("data", None)  # bytes: sent as they are
    for _ in range(10):  # the key's rate limit is shared with the rest of the suite: a 429 is not the answer
        resp = api(method, path.replace("{live}", live_order), body, key=key, **kw)
        if resp.status_code != 429:
            break
        time.sleep(float(resp.headers.get("Retry-After", "1")))
    text = resp.text
    assert 400 <= resp.status_code < 500, f"{name}: {resp.status_code} {text[:300]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), f"{name}: {text[:300]}"
    assert not any(m in text for m in TRACE_MARKERS)
    error = resp.json()["error"]
    assert error["code"] and error["message"]
    named = [d["field"] for d in error["details"]]
    assert any(field in f for f in named), f"{name}: {field} not in {named} ({error['message']})"
    if resp.status_code == 405:
        assert resp.headers.get("Allow"), "a 405 names the allowed methods"


# ---- Pub/Sub: poison signals ----------------------------------------------------------------------------------
SIGNAL = {"signal_id": "SIGNAL_ID", "strategy_id": "hostile-it", "exchange": "binance", "symbol": "BTC/USDT",
          "side": "buy", "quantity": "0.01", "order_type": "limit", "price": "40000"}


def signal(**change) -> bytes:
    return json.dumps({**SIGNAL, **change}).encode()


def raw_signal(fragment: str) -> bytes:
    return signal(price="PRICE").replace(b'"PRICE"', fragment.encode())


# (name, why it is bad, the message data, a text the rejection's reason or a detail's field must contain)
SIGNAL_CASES = [
    ("tags empty key", "crashed the function 5 times into the dead-letter topic", signal(tags={"": "x"}), "tags"),
    ("expire_at 2**70", "crashed 5 times (Firestore: value out of range)",
     signal(time_in_force="GTD", expire_at=2**70), "expire_at"),
    ("50,000 nested [", "crashed 5 times (RecursionError)", b"[" * 50_000, "data"),
    ("nested object 40 deep", "beyond the nesting bound", b'{"tags":' * 40 + b"1" + b"}" * 40, "data"),
    ("over 64 KiB", "beyond the size bound", signal(tags={"a": "x" * 70_000}), "data"),
    ("params empty key", "a Firestore field path", signal(algorithm_params={"": 1}), "algorithm_params"),
    ("params beyond 64 bits", "value out of range", signal(algorithm="twap", algorithm_params={"duration_s": 2**70}),
     "algorithm_params"),
    ("params underscore", "not an ASCII literal", signal(algorithm="twap", algorithm_params={"duration_s": "6_0"}),
     "algorithm_params"),
    ("tags reserved key", "__x__ is reserved", signal(tags={"__x__": "1"}), "tags"),
    ("tags RLO value", "format character", signal(tags={"a": "\u202e"}), "tags"),
    ("strategy_id NUL", "NUL into labels and logs", signal(strategy_id="a\x00b"), "strategy_id"),
    ("strategy_id RLO", "U+202E into labels and logs", signal(strategy_id="a\u202eb"), "strategy_id"),
    ("strategy_id reserved", "__x__ reserved", signal(strategy_id="__main__"), "strategy_id"),
    ("strategy_id too long", "at most 64", signal(strategy_id="s" * 65), "strategy_id"),
    ("signal_id NUL", "an id with NUL", signal(signal_id="s\x00"), "signal_id"),
    ("signal_id reserved", "__x__ reserved", signal(signal_id="__x__"), "signal_id"),
    ("signal_id number", "an id is text", signal(signal_id=12), "signal_id"),
    ("signal_id too long", "at most 128", signal(signal_id="s" * 129), "signal_id"),
    ("quantity 0.0_1", "Python's Decimal reads _", signal(quantity="0.0_1"), "quantity"),
    ("quantity Arabic-Indic", "Unicode digits", signal(quantity="\u0660.\u0661"), "quantity"),
    ("quantity superscript", "not a digit", signal(quantity="\u00b2"), "quantity"),
    ("quantity boolean", "not a number", signal(quantity=True), "quantity"),
    ("quantity negative", "positive", signal(quantity="-1"), "quantity"),
    ("price 1e99999", "magnitude", raw_signal("1e99999"), "price"),
    ("price NaN", "not finite", raw_signal("NaN"), "price"),
    ("price Infinity", "not finite", raw_signal("Infinity"), "price"),
    ("price 41 digits", "precision bound", signal(price="1" * 41), "price"),
    ("price fullwidth", "Unicode digits", signal(price="\uff14\uff10"), "price"),
    ("expire_at negative", "epoch ms", signal(time_in_force="GTD", expire_at=-5), "expire_at"),
    ("expire_at unicode", "not ASCII", signal(time_in_force="GTD", expire_at="\u0661\u0662"), "expire_at"),
    ("max_slippage_bps underscore", "not ASCII", signal(max_slippage_bps="1_0"), "max_slippage_bps"),
    ("exchange newline", "not a venue name", signal(exchange="bin\nance"), "exchange"),
    ("symbol NUL", "control character", signal(symbol="BTC/\x00USDT"), "symbol"),
    ("side unknown", "buy or sell", signal(side="hold"), "side"),
    ("unknown field", "refused", signal(leverage=100), "leverage"),
    ("not JSON", "unreadable", b"not json", "not JSON"),
    ("invalid UTF-8", "unreadable", b"\xff\xfe\x00", "not JSON"),
    ("huge integer", "longer than Python converts", raw_signal("1" * 5000), "not JSON"),
    ("JSON array", "a signal is an object", b"[1, 2]", "JSON object"),
    ("JSON null", "a signal is an object", b"null", "JSON object"),
    ("JSON string", "a signal is an object", b'"buy"', "JSON object"),
    ("blank message", "nothing to read (Pub/Sub refuses empty data)", b" ", "not JSON"),
    ("empty object", "every field missing", b"{}", "signal_id"),
    ("algorithm NUL", "NUL in an id", signal(algorithm="tw\x00ap"), "algorithm"),
    ("tags not an object", "tags is a map", signal(tags=[1]), "tags"),
]


def _fresh(data: bytes) -> bytes:
    """A placeholder signal id made unique (so nothing of an earlier run is found as a duplicate)."""
    return data.replace(b'"SIGNAL_ID"', f'"sig_{uuid.uuid4().hex[:16]}"'.encode())


def _names_it(event: dict, want: str) -> bool:
    return want in (event.get("reason") or "") or any(want in d.get("field", "") for d in event.get("details") or [])


@pytest.mark.timeout(300)  # 45 messages through the emulator's push rounds on a loaded machine
def test_every_poison_signal_is_rejected_by_a_rule_once_and_acknowledged(stack, publisher, tap):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    topic = f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}"
    sent = {publisher.publish(topic, _fresh(data)).result(timeout=30): (name, want)
            for name, _, data, want in SIGNAL_CASES}

    def rejected(messages: list[dict]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for m in messages:
            if m["data"].get("status") == "rejected" and m["data"].get("message_id") in sent:
                out.setdefault(m["data"]["message_id"], []).append(m["data"])
        return out

    got = events.collect(lambda ms: set(rejected(ms)) == set(sent), timeout=120)
    got += events.collect(lambda ms: False, timeout=4)  # a crashed or unacknowledged one would come again by now
    answers = rejected(got)
    missing = sorted(name for mid, (name, _) in sent.items() if mid not in answers)
    assert not missing, f"no rejected event for: {missing}"
    for mid, (name, want) in sent.items():
        [event] = answers[mid]  # exactly one: acknowledged, never redelivered
        assert "internal error" not in event["reason"], f"{name}: caught by the crash net, not a rule"
        assert _names_it(event, want), f"{name}: {want!r} not named in {event['reason']!r} / {event['details']}"
        assert event["order_id"] is None


# ---- schemathesis over the served document ------------------------------------------------------------------
SCHEMATHESIS_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_stack_trace(stack, spawn_function, tmp_path: Path):
    """`st run --checks all` (examples, coverage, fuzzing and stateful phases) against the served openapi.json
    of an API process of its own (its own key, a rate limit it cannot reach: the fuzzing would otherwise spend
    itself on 429s). Asserted: every recorded answer (the HAR report) is below 500 and carries no stack trace,
    and the run made requests. schemathesis' other checks are printed, not asserted: the document is still being
    completed (issue 12, "Contracts exact"), and `positive_data_acceptance` cannot hold for rules no schema
    states (a limit order needs a price)."""
    key = f"schemathesis-{uuid.uuid4().hex}"
    # An operator key of one strategy nobody else uses: every route is reachable, but what it arms or lifts stays
    # its own (the global switch needs a key of every strategy: with an admin key the fuzzer armed it, it expired,
    # and every later test's orders were refused as halted).
    base = spawn_function("api", API_RATE_LIMIT="100000",
                          **key_file_env(tmp_path, key, Role.OPERATOR, [f"fuzz-{uuid.uuid4().hex[:8]}"]))
    report = tmp_path / "report"
    cmd = [str(Path(sys.executable).parent / "st"), "run", f"{base}/api/v1/openapi.json",
           "-H", f"X-API-Key: {key}", "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
           "--max-examples", str(SCHEMATHESIS_EXAMPLES), "--seed", "12", "--workers", "2",
           "--request-timeout", "40", "--max-time", "170", "--suppress-health-check", "all",
           "--report", "har", "--report-dir", str(report)]
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=420, check=False, cwd=tmp_path,
                         env={**os.environ, "NO_COLOR": "1"})
    print(run.stdout[-6000:], run.stderr[-2000:], f"schemathesis took {time.monotonic() - started:.0f} s", sep="\n")
    hars = glob.glob(str(report / "*.json"))
    assert hars, f"schemathesis wrote no report (exit {run.returncode})"
    entries = json.loads(Path(hars[0]).read_text())["log"]["entries"]
    assert len(entries) >= 200, f"only {len(entries)} requests: the run did not get going"
    server_errors = [(e["request"]["method"], e["request"]["url"], e["response"]["status"]) for e in entries
                     if e["response"]["status"] >= 500]
    traces = [(e["request"]["method"], e["request"]["url"]) for e in entries
              if any(m in (e["response"].get("content", {}).get("text") or "") for m in TRACE_MARKERS)]
    assert not server_errors, server_errors[:10]
    assert not traces, traces[:10]
    assert "Server error" not in run.stdout, run.stdout[-3000:]


@pytest.mark.parametrize("target", ["SUBMIT_FUNCTION_URL", "SYNC_FUNCTION_URL", "SLICES_FUNCTION_URL"])
def test_a_task_for_an_order_id_firestore_reserves_is_dropped_not_retried_forever(stack, http, target):
    """Cloud Tasks retries any non-2xx: a reserved id once raised InvalidArgument, a 500, on every attempt."""
    resp = http.post(stack.env[target], json={"order_id": "__main__"}, timeout=30)
    assert resp.status_code == 200 and resp.json() == {"dropped": "malformed task"}, resp.text
