"""Money is Decimal from the first byte: every JSON entry point reads a number with a fraction straight into a
Decimal (shared/infra/exact_json.py). Each test sends digits a float cannot hold (12345.123456789012345678 is
12345.123456789011 as a float; 0.1000000000000000055511151231257827 is 0.1), so each fails if the number passes
through a float anywhere on the way (json.loads, Flask's get_json, pydantic's model_validate_json)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import flask
import pytest

from functions import http
from shared.app.schemas import ModifyRequest, OrderRequest
from shared.app.signals import intake
from shared.infra import exact_json
from shared.infra.venues import VenueClient, session

from .app.test_order_service import Env

PRICE = "12345.123456789012345678"
TINY = "0.1000000000000000055511151231257827"


def test_the_float_would_lose_these_digits():
    assert Decimal(str(float(PRICE))) != Decimal(PRICE) and Decimal(str(float(TINY))) != Decimal(TINY)


def test_loads_reads_fractions_and_exponents_as_decimals_and_keeps_integers_int():
    doc = exact_json.loads(f'{{"p": {PRICE}, "q": {TINY}, "e": 1.5e-30, "n": 12345678901234567890123, '
                           f'"nested": [{{"x": {PRICE}}}], "nan": NaN}}'.encode())
    assert doc["p"] == Decimal(PRICE) and str(doc["p"]) == PRICE
    assert doc["q"] == Decimal(TINY) and doc["e"] == Decimal("1.5e-30")
    assert doc["n"] == 12345678901234567890123 and type(doc["n"]) is int
    assert doc["nested"][0]["x"] == Decimal(PRICE)
    assert isinstance(doc["nan"], Decimal) and doc["nan"].is_nan()


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"not json", b"1" * 5000])
def test_loads_raises_value_error_for_what_is_not_json(raw):
    with pytest.raises(ValueError):
        exact_json.loads(raw)


# ---- the REST API's bodies (functions/http.py) ----------------------------------------------------------
@pytest.fixture
def app() -> flask.Flask:
    return http.create_app("exact-json-test")


def _body(app: flask.Flask, raw: bytes | str, content_type: str = "application/json"):
    with app.test_request_context("/", method="POST", data=raw, content_type=content_type):
        return http.json_body()


def test_a_rest_order_with_its_price_as_a_json_number_keeps_every_digit(app):
    raw = json.dumps({"strategy_id": "s", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
                      "quantity": 1, "price": 0}).replace('"price": 0', f'"price": {PRICE}')
    raw = raw.replace('"quantity": 1', f'"quantity": {TINY}')
    request = OrderRequest.model_validate(_body(app, raw))
    assert str(request.price) == PRICE and str(request.quantity) == TINY
    order = request.to_order(1_700_000_000_000, generated_id="api-x")
    assert order.price == Decimal(PRICE) and str(order.price) == PRICE


def test_a_modify_body_keeps_every_digit(app):
    body = ModifyRequest.model_validate(_body(app, f'{{"price": {PRICE}, "stop_price": {TINY}}}'))
    assert str(body.price) == PRICE and str(body.stop_price) == TINY


@pytest.mark.parametrize("raw,content_type", [("{", "application/json"), ("", "application/json"),
                                              ("null", "application/json"), ('{"a": 1}', "text/plain")])
def test_an_unreadable_body_is_still_a_400(app, raw, content_type):
    with pytest.raises(http.UnreadableBody):
        _body(app, raw, content_type)


@pytest.mark.parametrize("raw,expected", [("", {}), ("{", {}), ("[]", {}), ('{"order_id": "o", "attempt": 2}',
                                                                             {"order_id": "o", "attempt": 2})])
def test_a_task_body_is_its_json_or_empty(app, raw, expected):
    with app.test_request_context("/", method="POST", data=raw, content_type="application/json"):
        assert http.json_body_or_empty(flask.request) == expected


# ---- signals from Pub/Sub (shared/app/signals.py) ----------------------------------------------------------
def test_a_signal_with_its_price_as_a_json_number_keeps_every_digit():
    env = Env()
    data = (f'{{"signal_id": "sig_exact", "strategy_id": "momentum_1", "exchange": "binance", '
            f'"symbol": "BTC/USDT", "side": "buy", "quantity": {TINY}, "order_type": "limit", '
            f'"price": {PRICE}}}').encode()
    outcome = intake(data, "m-exact", service=env.svc, events=env.publisher, now_ms=env.clock)
    assert outcome.status == "accepted", outcome.reason
    stored = env.stored(outcome.order_id)
    assert str(stored.price) == PRICE and str(stored.quantity) == TINY


def test_a_signal_that_is_not_json_is_still_rejected():
    env = Env()
    outcome = intake(b"{", "m-bad", service=env.svc, events=env.publisher, now_ms=env.clock)
    assert outcome.status == "rejected" and "not JSON" in (outcome.reason or "")


# ---- the adapter's answers to the service (shared/infra/venues.py) -----------------------------------------
class NumbersAdapter(BaseHTTPRequestHandler):
    """An adapter that writes prices as JSON numbers (the protocol's models also accept them)."""

    def do_GET(self) -> None:
        body = (f'{{"venue": "num", "symbol": "BTC/USDT", "timestamp_ms": 1, "bids": [{{"price": {PRICE}, '
                f'"quantity": {TINY}}}], "asks": []}}').encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def numbers_adapter() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), NumbersAdapter)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_the_venue_client_reads_an_answers_json_numbers_exactly(numbers_adapter):
    with session() as http_session:
        book = VenueClient("num", numbers_adapter, http_session).book("BTC/USDT")
    assert str(book.bids[0].price) == PRICE and str(book.bids[0].quantity) == TINY
