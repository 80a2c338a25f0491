"""The REST API's OpenAPI 3.1 document, generated from the same pydantic models the routes validate with
(served at ``GET /api/v1/openapi.json``)."""

from __future__ import annotations

import functools
from typing import Any

from shared import openapi as oa
from shared.app.schemas import ErrorResponse, ModifyRequest, OrderList, OrderRequest, OrderView

_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): oa.json_content(ErrorResponse, "error") for s in statuses}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, **({"description": description} if description else {})}


@functools.cache
def api_document() -> dict[str, Any]:
    string = {"type": "string"}
    ms = {"type": "integer", "minimum": 0}
    paths = {
        "/orders": {
            "post": {"summary": "Place an order (the same client_order_id again returns the existing order)",
                     "requestBody": oa.json_body(OrderRequest),
                     "responses": {"201": oa.json_content(OrderView, "created"),
                                   "200": oa.json_content(OrderView, "already existed"),
                                   **_errors(400, 401, 403, 422, 429)}},
            "get": {"summary": "List orders, newest first, with cursor pagination",
                    "parameters": [
                        _query("status", string), _query("strategy_id", string), _query("signal_id", string),
                        _query("symbol", string), _query("exchange", string),
                        _query("parent_id", string, "an algorithm parent's order id: its children"),
                        _query("created_after", ms, "epoch ms"), _query("created_before", ms, "epoch ms"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
                        _query("cursor", string, "next_cursor of the previous page")],
                    "responses": {"200": oa.json_content(OrderList, "a page"), **_errors(401, 422, 429)}},
        },
        "/orders/{order_id}": {
            "get": {"summary": "One order with its fills", "parameters": [_ID],
                    "responses": {"200": oa.json_content(OrderView, "the order"), **_errors(401, 404, 429)}},
            "put": {"summary": "Modify price, quantity or stop price of a working order (cancel/replace)",
                    "parameters": [_ID], "requestBody": oa.json_body(ModifyRequest),
                    "responses": {"200": oa.json_content(OrderView, "modified"),
                                  "202": oa.json_content(OrderView, "pending_replace: the venue has not answered "
                                                                    "yet; the replace completes in the background"),
                                  **_errors(400, 401, 404, 409, 422, 429, 503)}},
            "delete": {"summary": "Cancel (idempotent: a closed order is returned as it is)", "parameters": [_ID],
                       "responses": {"200": oa.json_content(OrderView, "the order"), **_errors(401, 404, 429)}},
        },
        "/orders/{order_id}/tca": {
            "get": {"summary": "The order's transaction cost analysis as it stands (a parent's covers its "
                               "children); each figure's formula and sign: README, Execution analytics",
                    "parameters": [_ID],
                    "responses": {"200": {"description": "{order_id, status, side, exchange, symbol, algorithm, "
                                                         "tca}"}, **_errors(401, 404, 429)}},
        },
        "/analytics/tca": {
            "get": {"summary": "TCA in aggregate over the top-level orders that ended in [since, until): per group, "
                               "count, notional, notional-weighted mean/median/p90 of each cost, markout curve, fill "
                               "ratio, reject rate, maker share, latencies, bootstrap 95% CI of the mean arrival cost",
                    "parameters": [_query("group_by", string, "comma-separated: algorithm, venue, symbol, side, "
                                                              "strategy_id"),
                                   _query("since", ms, "epoch ms (default: until - 24 h)"),
                                   _query("until", ms, "epoch ms, exclusive (default: now)"),
                                   _query("seed", ms, "the bootstrap's seed (default 0)")],
                    "responses": {"200": {"description": "{since, until, group_by, seed, orders, max_orders, "
                                                         "groups}"},
                                  **_errors(401, 422, 429)}},
        },
        "/health": {"get": {"summary": "Each dependency's status and latency (no key needed)",
                            "responses": {"200": {"description": "all healthy"},
                                          "503": {"description": "something failed; `failed` names it"}}}},
        "/adapters": {"get": {"summary": "Adapter health and shared call statistics",
                              "responses": {"200": {"description": "the adapters"}}}},
        "/metrics": {"get": {"summary": "Prometheus text (Accept: text/plain or ?format=prometheus), else JSON",
                             "responses": {"200": {"description": "metrics shared by every instance"}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Execution Service API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "schemas": oa.schemas([OrderRequest, ModifyRequest, OrderView, OrderList, ErrorResponse]),
            "securitySchemes": {"apiKey": {
                "type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "A key of the service's key file (README, Access). Its role (trader < operator < "
                               "admin) must reach the route's, else 403; it acts only on its strategies: an order "
                               "of another strategy answers 404 as an unknown one, lists show only its strategies, "
                               "a new order for another strategy answers 403 naming strategy_id."}},
        },
        "security": [{"apiKey": []}],
        "paths": paths,
    }
