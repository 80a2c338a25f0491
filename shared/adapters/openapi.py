"""The adapter protocol as an OpenAPI 3.1 document, generated from the protocol's pydantic models.

``python -m shared.adapters.openapi`` rewrites docs/adapter-openapi.json; a unit test fails when the committed
file and the models disagree.
"""

from __future__ import annotations

from pathlib import Path

from shared import openapi as oa
from shared.adapters import protocol as p

OUT = Path(__file__).resolve().parents[2] / "docs" / "adapter-openapi.json"

_SYMBOL = {"name": "symbol", "in": "query", "required": True, "schema": {"type": "string", "example": "BTC/USDT"}}
_IDS = [
    {"name": "client_order_id", "in": "query", "schema": {"type": "string"}},
    {"name": "venue_order_id", "in": "query", "schema": {"type": "string"}},
]


_ref = oa.ref
_json = oa.json_content


def _errors(*statuses: int) -> dict:
    return {str(s): _json(p.ErrorResponse, "protocol error (see ErrorResponse.error.kind)") for s in statuses}


def document() -> dict:
    models = [p.PlaceOrder, p.PlaceResult, p.VenueOrder, p.OpenOrders, p.FillsPage, p.OrderBook, p.PublicTrades,
              p.Candles, p.VenueInfo,
              p.CancelAll, p.CancelAllResult, p.CancelAllAfter, p.DeadMansSwitch, p.AdapterHealth, p.ErrorResponse]
    paths = {
        "/health": {"get": {"summary": "Adapter and venue health", "responses": {
            "200": _json(p.AdapterHealth, "healthy"), "503": _json(p.AdapterHealth, "venue unreachable")}}},
        "/info": {"get": {"summary": "Symbols, tick and lot sizes, minimum notional, fees, rate limits",
                          "responses": {"200": _json(p.VenueInfo, "venue info"), **_errors(502, 503)}}},
        "/orders": {"post": {
            "summary": "Place an order; the same client_order_id again returns the existing order",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(p.PlaceOrder)}}},
            "responses": {"201": _json(p.PlaceResult, "placed"), "200": _json(p.PlaceResult, "already existed"),
                          **_errors(400, 409, 422, 429, 502, 503, 504)}}},
        "/order": {
            "get": {"summary": "One order, by client or venue order id", "parameters": [_SYMBOL, *_IDS],
                    "responses": {"200": _json(p.VenueOrder, "the order"), **_errors(400, 404, 429, 502, 503)}},
            "delete": {"summary": "Cancel (idempotent: a terminal order is returned as it is)",
                       "parameters": [_SYMBOL, *_IDS],
                       "responses": {"200": _json(p.VenueOrder, "the order after the cancel"),
                                     **_errors(400, 404, 429, 502, 503, 504)}},
        },
        "/open-orders": {"get": {"summary": "Open orders", "parameters": [{**_SYMBOL, "required": False}],
                                 "responses": {"200": _json(p.OpenOrders, "open orders"), **_errors(429, 502, 503)}}},
        "/fills": {"get": {"summary": "Own fills after a cursor (venue trade ids), oldest first", "parameters": [
            _SYMBOL, {"name": "since", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            {"name": "venue_order_id", "in": "query", "schema": {"type": "string"},
             "description": "only this order's fills"}],
            "responses": {"200": _json(p.FillsPage, "fills"), **_errors(400, 429, 502, 503)}}},
        "/book": {"get": {"summary": "Order book snapshot", "parameters": [
            _SYMBOL, {"name": "depth", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
            "responses": {"200": _json(p.OrderBook, "book"), **_errors(400, 429, 502, 503)}}},
        "/trades": {"get": {"summary": "The public tape (everyone's trades) in a time range, oldest first",
                            "parameters": [
            _SYMBOL, {"name": "since_ms", "in": "query", "required": True, "schema": {"type": "integer"}},
            {"name": "until_ms", "in": "query", "schema": {"type": "integer"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": _json(p.PublicTrades, "trades"), **_errors(400, 429, 502, 503)}}},
        "/candles": {"get": {"summary": "OHLCV candles from a time, oldest first", "parameters": [
            _SYMBOL, {"name": "since_ms", "in": "query", "required": True, "schema": {"type": "integer"}},
            {"name": "timeframe", "in": "query", "schema": {"type": "string", "default": "1m"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": _json(p.Candles, "candles"), **_errors(400, 429, 502, 503)}}},
        "/cancel-all": {"post": {
            "summary": "Cancel every open order (of one symbol, or all)",
            "requestBody": {"content": {"application/json": {"schema": _ref(p.CancelAll)}}},
            "responses": {"200": _json(p.CancelAllResult, "what was cancelled"), **_errors(429, 502, 503, 504)}}},
        "/cancel-all-after": {
            "post": {"summary": "Arm or refresh the venue-side dead man's switch (timeout_ms 0 disarms)",
                     "requestBody": {"required": True,
                                     "content": {"application/json": {"schema": _ref(p.CancelAllAfter)}}},
                     "responses": {"200": _json(p.DeadMansSwitch, "switch state"), **_errors(400, 429, 502, 503)}},
            "get": {"summary": "The switch's state", "responses": {"200": _json(p.DeadMansSwitch, "switch state")}},
        },
        "/watchdog": {"post": {"summary": "One watchdog tick, for venues without a native switch",
                               "responses": {"200": {"description": "whether the switch fired"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Exchange adapter protocol", "version": "1",
                 "description": (p.__doc__ or "").strip()},
        "paths": paths,
        "components": {"schemas": oa.schemas(models)},
    }


def render() -> str:
    return oa.render(document())


if __name__ == "__main__":
    oa.write(OUT, document())
