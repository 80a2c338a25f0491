"""The REST API's OpenAPI 3.1 document, generated from the same pydantic models the routes validate with
(served at ``GET /api/v1/openapi.json``).

Every route of ``functions/api.py`` is here (a unit test walks the Flask url_map), with every status it can
answer. Request bodies are described as they are read: a quantity or price may be a JSON number or a decimal
string; answers write quantities and prices as decimal strings (exact). Enumerations are enums. Each algorithm's
``algorithm_params`` has its own schema, the model that validates them (``shared.domain.algorithms.PARAMS``),
chosen by ``algorithm`` (JSON Schema ``if``/``then``).
"""

from __future__ import annotations

import functools
from typing import Any

from shared import openapi as oa
from shared.app.schemas import (
    ErrorResponse,
    ExecuteRequest,
    Heartbeat,
    ModifyRequest,
    OptimizeRequest,
    OrderList,
    OrderRequest,
    OrderView,
)
from shared.domain.algorithms import PARAMS, Algorithm
from shared.domain.orders import SMART, Status

_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
       "description": "the order's id (ord_...)"}
_STRATEGY = {"name": "strategy_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
_STRING = {"type": "string"}
_MS = {"type": "integer", "minimum": 0}

# What each status means on this API (README "API"); each operation lists the ones it can answer.
_MEANING = {
    400: "the body is not readable JSON",
    401: "missing or unknown X-API-Key",
    403: "the key's role or strategies do not allow this",
    404: "no such order (or none the key may see)",
    409: "not possible in the order's state (the message says why)",
    413: "the body is over 64 KiB",
    422: "invalid fields, each named in details",
    429: "over the key's rate limit (Retry-After)",
    503: "a dependency or venue is unavailable, or the order is contended (Retry-After: 1; nothing was changed)",
}
_AUTHENTICATED = (401, 403, 429, 503)  # what every route behind the key can answer


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): oa.json_content(ErrorResponse, _MEANING[s]) for s in sorted(set(statuses) | set(_AUTHENTICATED))}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            **({"description": description} if description else {})}


def _ref(components: dict[str, Any], name: str, form: str) -> dict[str, str]:
    """The component of `name` in `form` (Input / Output) where its two forms differ."""
    key = f"{name}-{form}" if f"{name}-{form}" in components else name
    return {"$ref": f"#/components/schemas/{key}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _object(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties}


def _algorithm_params(order: dict[str, Any]) -> None:
    """Make an order's ``algorithm`` an enum and choose its ``algorithm_params`` schema by it (``smart`` also when
    no algorithm is given and the exchange is smart or left out)."""
    props = order["properties"]
    props["algorithm"] = {"anyOf": [{"type": "string", "enum": [a.value for a in Algorithm]}, {"type": "null"}],
                          "default": None, "description": props["algorithm"].get("description", "")}
    props["algorithm_params"] = {"type": "object", "default": {},
                                 "description": "the algorithm's parameters: the schema named after it "
                                                "(TwapParams, VwapParams, IcebergParams, PovParams, SmartParams; "
                                                "direct takes none)"}
    rules = [{"if": {"required": ["algorithm"], "properties": {"algorithm": {"const": algo.value}}},
              "then": {"properties": {"algorithm_params": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
             for algo, model in PARAMS.items()]
    rules.append({"if": {"not": {"required": ["algorithm"]},
                         "properties": {"exchange": {"const": SMART}}},
                  "then": {"properties": {"algorithm_params": {"$ref": "#/components/schemas/SmartParams"}}}})
    order["allOf"] = rules


@functools.cache
def api_document() -> dict[str, Any]:
    components = oa.schemas([OrderView, OrderList, ErrorResponse],
                            inputs=[OrderRequest, ModifyRequest, ExecuteRequest, Heartbeat, OptimizeRequest,
                                    *PARAMS.values()])
    order_in = _ref(components, "OrderRequest", "Input")
    _algorithm_params(components[order_in["$ref"].rsplit("/", 1)[1]])
    view, page = _ref(components, "OrderView", "Output"), _ref(components, "OrderList", "Output")
    switch = _object("a dead man's switch", strategy_id={"type": "string", "description": "* is the global switch"},
                     timeout_ms=_MS, last_heartbeat_ms=_MS, deadline_ms=_MS,
                     halted_at_ms={"anyOf": [_MS, {"type": "null"}]}, reason={"anyOf": [_STRING, {"type": "null"}]})
    paths = {
        "/orders": {
            "post": {"summary": "Place an order (the same client_order_id again returns the existing order)",
                     "requestBody": _body(order_in),
                     "responses": {"201": _json(view, "created"),
                                   "200": _json(view, "already existed with the same terms"),
                                   **_errors(400, 409, 422)}},
            "get": {"summary": "List orders, newest first, with cursor pagination",
                    "parameters": [
                        _query("status", {"type": "string", "enum": [s.value for s in Status]}),
                        _query("strategy_id", _STRING), _query("signal_id", _STRING),
                        _query("symbol", _STRING), _query("exchange", _STRING),
                        _query("parent_id", _STRING, "an algorithm parent's order id: its children"),
                        _query("created_after", _MS, "epoch ms"), _query("created_before", _MS, "epoch ms"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
                        _query("cursor", _STRING, "next_cursor of the previous page")],
                    "responses": {"200": _json(page, "a page"), **_errors(422)}},
        },
        "/orders/{order_id}": {
            "get": {"summary": "One order with its fills (a parent's with its progress)", "parameters": [_ID],
                    "responses": {"200": _json(view, "the order"), **_errors(404)}},
            "put": {"summary": "Modify price, quantity or stop price of a working order (cancel/replace)",
                    "parameters": [_ID], "requestBody": _body(_ref(components, "ModifyRequest", "Input")),
                    "responses": {"200": _json(view, "modified"),
                                  "202": _json(view, "pending_replace: the venue has not answered yet; the replace "
                                                     "completes in the background"),
                                  **_errors(400, 404, 409, 422)}},
            "delete": {"summary": "Cancel (idempotent: a closed order is returned as it is)", "parameters": [_ID],
                       "responses": {"200": _json(view, "the order"), **_errors(404)}},
        },
        "/orders/{order_id}/tca": {
            "get": {"summary": "The order's transaction cost analysis as it stands (a parent's covers its "
                               "children); each figure's formula and sign: README, Execution analytics",
                    "parameters": [_ID],
                    "responses": {"200": _json(_object("{order_id, status, side, exchange, symbol, algorithm, "
                                                       "facts, tca, market}"), "the analysis"), **_errors(404)}},
        },
        "/orders/{order_id}/pause": {
            "post": {"summary": "Pause an algorithm's parent order (no further slices)", "parameters": [_ID],
                     "responses": {"200": _json(view, "the parent, paused"), **_errors(404, 409)}},
        },
        "/orders/{order_id}/resume": {
            "post": {"summary": "Resume a paused algorithm's parent order", "parameters": [_ID],
                     "responses": {"200": _json(view, "the parent, resumed"), **_errors(404, 409)}},
        },
        "/execute": {
            "post": {"summary": "Place an order, then wait up to wait_s for it to work (until: working) or finish "
                                "(until: terminal); the order with its fills",
                     "requestBody": _body(_ref(components, "ExecuteRequest", "Input")),
                     "responses": {"201": _json(view, "created (as it stands when the wait ended)"),
                                   "200": _json(view, "already existed with the same terms"),
                                   **_errors(400, 409, 422)}},
        },
        "/analytics/tca": {
            "get": {"summary": "TCA in aggregate over the top-level orders that ended in [since, until): per group, "
                               "count, notional, notional-weighted mean/median/p90 of each cost, markout curve, fill "
                               "ratio, reject rate, maker share, latencies, bootstrap 95% CI of the mean arrival cost",
                    "parameters": [_query("group_by", _STRING, "comma-separated: algorithm, venue, symbol, side, "
                                                               "strategy_id"),
                                   _query("since", _MS, "epoch ms (default: until - 24 h)"),
                                   _query("until", _MS, "epoch ms, exclusive (default: now)"),
                                   _query("seed", {**_MS, "maximum": 2**32}, "the bootstrap's seed (default 0)")],
                    "responses": {"200": _json(_object("{since, until, group_by, seed, orders, max_orders, groups}"),
                                               "the groups"), **_errors(422)}},
        },
        "/heartbeat": {
            "post": {"summary": "Re-arm a strategy's dead man's switch (no strategy_id: the global switch)",
                     "requestBody": _body(_ref(components, "Heartbeat", "Input")),
                     "responses": {"200": _json(switch, "the switch"), **_errors(400, 422)}},
            "get": {"summary": "Every dead man's switch",
                    "responses": {"200": _json(_object("the switches", switches={"type": "array", "items": switch}),
                                               "the switches"), **_errors()}},
        },
        "/strategies/{strategy_id}/enable": {
            "post": {"summary": "An operator lifts a strategy's halt (its switch re-armed)", "parameters": [_STRATEGY],
                     "responses": {"200": _json(switch, "the switch"), **_errors(404)}},
        },
        "/routes": {
            "get": {"summary": "Venues x symbols: fees, tick and lot, minimums, adapter health and latency, best "
                               "bid/ask, spread; unreachable venues named",
                    "responses": {"200": _json(_object("{routes, unavailable}"), "the table"), **_errors()}},
        },
        "/routes/optimize": {
            "post": {"summary": "The SmartRouter's dry run: the allocation per venue vs the best single venue and "
                                "the consolidated-book optimum",
                     "requestBody": _body(_ref(components, "OptimizeRequest", "Input")),
                     "responses": {"200": _json(_object("{symbol, side, quantity, venues, allocation, "
                                                        "best_single_venue, consolidated_optimum, "
                                                        "saving_vs_best_single_venue_bps, unavailable}"),
                                                "the allocation"),
                                   **_errors(400, 422)}},
        },
        "/health": {"get": {"summary": "Each dependency's status and latency (no key needed)", "security": [],
                            "responses": {"200": _json(_object("{status: ok, failed: [], dependencies}"),
                                                       "all healthy"),
                                          "503": _json(_object("{status: unavailable, failed, dependencies}"),
                                                       "something failed; `failed` names it")}}},
        "/adapters": {"get": {"summary": "Adapter health and shared call statistics",
                              "responses": {"200": _json(_object("{adapters}"), "the adapters"), **_errors()}}},
        "/metrics": {"get": {"summary": "Prometheus text (Accept: text/plain or ?format=prometheus), else JSON",
                             "parameters": [_query("format", {"type": "string", "enum": ["prometheus"]})],
                             "responses": {"200": {"description": "metrics shared by every instance",
                                                   "content": {"application/json": {"schema": {"type": "object"}},
                                                               "text/plain": {"schema": _STRING}}},
                                           **_errors()}}},
        "/openapi.json": {"get": {"summary": "This document (no key needed)", "security": [],
                                  "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
    }
    for item in paths.values():  # a body over 64 KiB is refused before any route reads it (functions/http.py)
        for op in item.values():
            if "requestBody" in op:
                op["responses"]["413"] = oa.json_content(ErrorResponse, _MEANING[413])
    return {
        "openapi": "3.1.0",
        "info": {"title": "Execution Service API", "version": "1",
                 "description": "Numbers: request bodies take a quantity or price as a JSON number or a decimal "
                                "string (exact: never through a float); answers write them as decimal strings. "
                                "Times are epoch milliseconds. Every error is {error: {code, message, details: "
                                "[{field, issue}]}}."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "schemas": components,
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
