"""The HTTP function: every ``/api/v1`` route, served by one Flask app built once per process.

Routes parse the request, call a use case, and answer JSON. Every error leaves as
``{"error": {"code", "message", "details": [{"field", "issue"}]}}``: 400 unreadable body, 401 missing or wrong
``X-API-Key``, 403 the key's role is below the route's or a new order's strategy is outside its scope, 404 unknown
order (also one of a strategy outside the key's scope: the same answer), 409 not possible in the order's state,
422 invalid fields, 429 over the per-key rate limit, 503 a dependency is down or the order is contended (with
Retry-After; nothing was changed). Every input is validated at the edge by shared/app/fields.py's rules (bodies and
query strings through the pydantic models of shared/app/schemas.py; a path's order id must be one the service
makes, else 404 without a store read). An unexpected exception is logged with its stack trace and answered as a
500 without one (functions/http.py), with the request's id.

Access (README, Access): ``ROUTE_ROLES`` names every route's minimum role in one table (a route missing from it is
refused); the strategy scope is applied where a route meets an order or a strategy (``_in_scope``,
``check_strategy``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict

import flask
import redis
from google.api_core.exceptions import GoogleAPIError
from pydantic import BaseModel, TypeAdapter, ValidationError

from functions import http, runtime
from shared.adapters.protocol import VenueCallError
from shared.app import adapters, fields, health
from shared.app.dms import SwitchStateUnavailable
from shared.app.openapi import api_document
from shared.app.orders import Conflict
from shared.app.ports import Contended, OrderNotFound
from shared.app.tca import market_json, record_json
from shared.app.schemas import (
    ExecuteRequest,
    Heartbeat,
    ModifyRequest,
    OptimizeRequest,
    OrderList,
    OrderListQuery,
    OrderRequest,
    OrderView,
    TcaQuery,
)
from shared.domain import router, tca_aggregate
from shared.domain.access import OPEN, Denied, KeyRecord, OutOfScope, Role, check_role, check_strategy
from shared.domain.orders import InvalidOrder, Status
from shared.infra import clients, errors, log, redis_client
from shared.infra.access_keys import KeyProvider, KeysUnavailable
from shared.infra.config import ConfigError
from shared.infra.codec import jsonable
from shared.infra.metrics import prometheus_text
from shared.infra.rate_limit import RateLimiter

app = http.create_app(__name__)
http.install_framework_errors()
v1 = flask.Blueprint("v1", __name__, url_prefix="/api/v1")
_service = runtime.order_service()
_keys = KeyProvider(runtime.SETTINGS.api_keys_file, runtime.SETTINGS.api_keys_ttl_s, time.monotonic)
try:
    _keys.current()  # fail at start-up, naming the file, rather than on the first request
except KeysUnavailable as exc:
    raise ConfigError(f"API_KEYS_FILE: {exc}") from None

# Every route's minimum role, in one place (tests/unit/test_access_routes.py fails if a route is missing; at run
# time a route missing here is refused). Order routes are also limited to the key's strategies, in the route.
ROUTE_ROLES: dict[str, Role | None] = {
    "v1.create_order": Role.TRADER, "v1.list_orders": Role.TRADER, "v1.get_order": Role.TRADER,
    "v1.modify_order": Role.TRADER, "v1.cancel_order": Role.TRADER, "v1.get_order_tca": Role.TRADER,
    "v1.pause_order": Role.TRADER, "v1.resume_order": Role.TRADER, "v1.execute": Role.TRADER,
    "v1.tca_analytics": Role.TRADER,  # rows of the key's strategies only
    "v1.post_heartbeat": Role.TRADER,  # for a strategy of the key (the global switch: keys of every strategy)
    "v1.get_routes": Role.TRADER, "v1.optimize_route": Role.TRADER,  # market data, no order
    "v1.get_heartbeats": Role.OPERATOR,  # every strategy's dead man's switch state
    "v1.enable_strategy": Role.OPERATOR,  # lifts a halt (and only for a strategy of the key)
    "v1.get_adapters": Role.OPERATOR,  # venue health, the venues' own switches
    "v1.get_metrics": Role.OPERATOR,  # counts of every strategy
    "v1.get_health": OPEN, "v1.get_openapi": OPEN,
}
_limiter = RateLimiter(clients.cache, lambda: runtime.SETTINGS.api_rate_limit, time.time,
                       redis_client.report_unavailable)
ANALYTICS_MAX_ORDERS = 20_000  # rows one GET /analytics/tca reads at most (bench_tca.py: ~1.5 s for 10,000 here)
ANALYTICS_DEFAULT_WINDOW_MS = 24 * 3600 * 1000
_GROUPS = TypeAdapter(list[tca_aggregate.Group])


def _json(model: BaseModel, status: int = 200) -> flask.Response:
    return flask.Response(model.model_dump_json(), status=status, mimetype="application/json")


@v1.before_request
def _authenticate() -> flask.Response | None:
    endpoint = flask.request.endpoint
    if flask.request.routing_exception is not None or (endpoint in ROUTE_ROLES and ROUTE_ROLES[endpoint] is OPEN):
        return None  # no such route (its 404/405 follows), or an open one
    given = flask.request.headers.get("X-API-Key") or ""
    try:
        record = _keys.authenticate(given)
    except KeysUnavailable:
        return http.error_response(503, "unavailable", "API keys cannot be read; every key is refused for now",
                                   [{"field": "X-API-Key", "issue": "the key file is unreadable or invalid"}])
    if record is None:
        return http.error_response(401, "unauthorized", "missing or unknown X-API-Key header",
                                   [{"field": "X-API-Key", "issue": "required: a key from API_KEYS_FILE"}])
    flask.g.key = record
    limited = _rate_limit(given.encode())
    if limited is not None:
        return limited
    if endpoint not in ROUTE_ROLES:  # fail closed: a route nobody classified is nobody's
        return http.error_response(403, "forbidden", "this route has no access rule")
    check_role(record, ROUTE_ROLES[endpoint])
    return None


def _key() -> KeyRecord:
    return flask.g.key


def _in_scope(order):
    """The order if the key covers its strategy; else the answer of an unknown order (never leaking that it
    exists)."""
    if not _key().may_trade(order.strategy_id):
        raise OrderNotFound(order.order_id)
    return order


def _scoped_get(order_id: str):
    return _in_scope(_service.get(order_id))


@app.errorhandler(Denied)
def _denied(exc: Denied) -> flask.Response:
    return http.error_response(403, "forbidden", str(exc), [{"field": "X-API-Key", "issue":
                                                             f"role {exc.required.value} or above required"}])


@app.errorhandler(OutOfScope)
def _out_of_scope(exc: OutOfScope) -> flask.Response:
    return http.error_response(403, "forbidden", str(exc),
                               [{"field": "strategy_id", "issue": "outside this key's strategies"}])


@v1.before_request
def _known_ids() -> flask.Response | None:
    """A path's order id is one the service makes (ord_ + 24 hex digits) or no order at all: 404 without a store
    read (Firestore refuses ids such as __main__ with an error, once a 503). Bound to every log line."""
    order_id = (flask.request.view_args or {}).get("order_id")
    if order_id is None:
        return None
    if not fields.is_order_id(order_id):
        return http.error_response(404, "not_found", "no such order",
                                   [{"field": "order_id", "issue": "unknown (order ids are ord_ and 24 hex digits)"}])
    log.add(order_id=order_id)
    return None


def _query(model: type[BaseModel]) -> BaseModel:
    """The query string validated by `model` (422 naming each bad parameter); a parameter given twice is refused."""
    args = flask.request.args
    repeated = sorted(name for name in args if len(args.getlist(name)) > 1)
    if repeated:
        raise InvalidOrder([(name, "given more than once") for name in repeated])
    return model.model_validate(args.to_dict())


def _rate_limit(key: bytes) -> flask.Response | None:
    """API_RATE_LIMIT requests per second per key (shared/infra/rate_limit.py: shared in Redis; per instance while
    Redis is down, never off)."""
    if _limiter.allow(key):
        return None
    resp = http.error_response(429, "rate_limited",
                               f"more than {runtime.SETTINGS.api_rate_limit} requests per second for this key")
    resp.headers["Retry-After"] = "1"
    return resp


@app.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> flask.Response:
    return http.error_response(422, "invalid_request", "the request has invalid fields", http.validation_details(exc))


@app.errorhandler(InvalidOrder)
def _invalid_order(exc: InvalidOrder) -> flask.Response:
    return http.error_response(422, "invalid_order", str(exc), [{"field": f, "issue": i} for f, i in exc.problems])


@app.errorhandler(OrderNotFound)
def _not_found(exc: OrderNotFound) -> flask.Response:
    return http.error_response(404, "not_found", f"no order {exc.args[0]}", [{"field": "order_id", "issue": "unknown"}])


@app.errorhandler(Conflict)
def _conflict(exc: Conflict) -> flask.Response:
    return http.error_response(409, "conflict", str(exc), [{"field": f, "issue": i} for f, i in exc.problems])


@app.errorhandler(Contended)
def _contended(exc: Contended) -> flask.Response:
    response = http.error_response(503, "contended", f"{exc}; nothing was changed, try again",
                                   [{"field": "order_id", "issue": "busy"}])
    response.headers["Retry-After"] = "1"
    return response


@app.errorhandler(SwitchStateUnavailable)
def _switch_state(exc: SwitchStateUnavailable) -> flask.Response:
    """Fail closed: without the dead man's switch state no order is let through (and no heartbeat recorded)."""
    response = http.error_response(503, "dms_unavailable", str(exc),
                                   [{"field": "strategy_id", "issue": "dead man's switch state unavailable"}])
    response.headers["Retry-After"] = "1"
    return response


@app.errorhandler(redis.RedisError)
@app.errorhandler(GoogleAPIError)
def _dependency(exc: Exception) -> flask.Response:
    if not errors.transient(exc):  # e.g. Firestore's InvalidArgument: our defect, not a dependency that is down
        return http.unexpected(exc)
    return http.error_response(503, "unavailable", f"a dependency is unavailable: {type(exc).__name__}")


@app.errorhandler(VenueCallError)
def _venue(exc: VenueCallError) -> flask.Response:
    return http.error_response(503, "venue_unavailable", str(exc), [{"field": "exchange", "issue": exc.code.value}],
                               venue=exc.venue)


def _unavailable(failed: dict[str, str]) -> list[dict[str, str]]:
    return [{"venue": name, "error": error} for name, error in sorted(failed.items())]


# ---- orders ---------------------------------------------------------------------------------------------
@v1.post("/orders")
def create_order() -> flask.Response:
    request = OrderRequest.model_validate(http.json_body())
    check_strategy(_key(), request.strategy_id)
    order = request.to_order(runtime.now_ms(), generated_id=f"api-{uuid.uuid4().hex}")
    log.add(order_id=order.order_id, signal_id=order.signal_id)
    order, created = _service.create(order)
    return _json(OrderView.of(order), 201 if created else 200)


@v1.get("/orders/<order_id>")
def get_order(order_id: str) -> flask.Response:
    order = _scoped_get(order_id)
    view = OrderView.of(order)
    if order.is_parent:
        view.progress = runtime.parent_orders().progress(order)
    return _json(view)


@v1.get("/orders/<order_id>/tca")
def get_order_tca(order_id: str) -> flask.Response:
    """The order's transaction cost analysis as it stands (README "Execution analytics" defines each figure)."""
    analysis = runtime.tca_service().analysis_of(_scoped_get(order_id))
    order, record = analysis.order, analysis.record
    return flask.jsonify({"order_id": order.order_id, "status": order.status.value, "side": order.side.value,
                          "exchange": order.exchange, "symbol": order.symbol, "algorithm": order.algorithm,
                          "facts": jsonable({"decision_mid": order.decision_mid, "arrival_mid": order.arrival_mid,
                                             "arrival_bid": order.arrival_bid, "arrival_ask": order.arrival_ask,
                                             "cancel_requested_at": order.cancel_requested_at,
                                             "router_best_price": order.router_best_price,
                                             "router_consolidated_price": order.router_consolidated_price,
                                             "schedule_points": order.schedule_points}),
                          "tca": record_json(record), "market": jsonable(market_json(analysis))})


@v1.get("/analytics/tca")
def tca_analytics() -> flask.Response:
    """TCA in aggregate over the top-level orders that ended in [since, until) (shared/domain/tca_aggregate.py).

    Bounded cost per call by paging with a hard bound: the rows of at most ANALYTICS_MAX_ORDERS ended orders are
    read (one indexed range query, paged); a window holding more is refused (422) rather than sampled or cut
    short, so a figure never silently covers part of what it claims. Fleet-scale questions go to BigQuery's
    tca_aggregate view (terraform/bigquery.tf). Pre-aggregation was not chosen: medians, p90 and a bootstrap need
    the rows, and any group_by of five keys would need its own running sums."""
    query = _query(TcaQuery)
    group_by = tuple(k.strip() for k in query.group_by.split(",") if k.strip())
    bad = [k for k in group_by if k not in tca_aggregate.GROUP_KEYS] or \
        [k for i, k in enumerate(group_by) if k in group_by[:i]]
    if bad:
        raise InvalidOrder([("group_by", f"{bad[0]!r}: a comma-separated list of distinct keys among "
                                         f"{', '.join(tca_aggregate.GROUP_KEYS)}")])
    now = runtime.now_ms()
    until = now if query.until is None else query.until
    since = until - ANALYTICS_DEFAULT_WINDOW_MS if query.since is None else query.since
    if since >= until:
        raise InvalidOrder([("since", "must be before until")])
    seed = query.seed
    rows = runtime.tca_store().rows(since, until, ANALYTICS_MAX_ORDERS + 1)
    if len(rows) > ANALYTICS_MAX_ORDERS:
        raise InvalidOrder([("since", f"the window holds more than {ANALYTICS_MAX_ORDERS} ended orders: narrow "
                                      "since/until (or query BigQuery's tca_aggregate view)")])
    rows = [r for r in rows if _key().may_trade(r.get("strategy_id"))]
    groups = tca_aggregate.aggregate(rows, group_by, seed=seed)
    return flask.jsonify({"since": since, "until": until, "group_by": list(group_by), "seed": seed,
                          "orders": len({r["order_id"] for r in rows}), "max_orders": ANALYTICS_MAX_ORDERS,
                          "groups": _GROUPS.dump_python(groups, mode="json")})


@v1.post("/orders/<order_id>/pause")
def pause_order(order_id: str) -> flask.Response:
    return _json(OrderView.of(runtime.parent_orders().pause(_parent(order_id), paused=True)))


@v1.post("/orders/<order_id>/resume")
def resume_order(order_id: str) -> flask.Response:
    return _json(OrderView.of(runtime.parent_orders().pause(_parent(order_id), paused=False)))


def _parent(order_id: str):
    order = _service.store.get(order_id)
    if order is None:
        raise OrderNotFound(order_id)
    _in_scope(order)
    if not order.is_parent:
        raise Conflict("only an algorithm's parent order can be paused or resumed")
    return order


@v1.put("/orders/<order_id>")
def modify_order(order_id: str) -> flask.Response:
    body = ModifyRequest.model_validate(http.json_body())
    if body.price is None and body.quantity is None and body.stop_price is None:
        return http.error_response(422, "invalid_request", "nothing to modify",
                                   [{"field": "body", "issue": "give price, quantity or stop_price"}])
    _scoped_get(order_id)
    order = _service.modify(order_id, price=body.price, quantity=body.quantity, stop_price=body.stop_price)
    # 202: the venue has not answered for the replace yet; it completes in the background (GET shows when)
    return _json(OrderView.of(order), 202 if order.status is Status.PENDING_REPLACE else 200)


@v1.delete("/orders/<order_id>")
def cancel_order(order_id: str) -> flask.Response:
    _scoped_get(order_id)
    return _json(OrderView.of(_service.cancel(order_id)))


@v1.get("/orders")
def list_orders() -> flask.Response:
    query = _query(OrderListQuery)
    filters = query.model_dump(include={"strategy_id", "signal_id", "symbol", "exchange", "parent_id",
                                        "created_after", "created_before"})
    filters["status"] = query.status.value if query.status is not None else None
    scope = _key().scoped_strategies()
    if scope is not None and filters["strategy_id"] is not None and filters["strategy_id"] not in scope:
        return _json(OrderList(orders=[], next_cursor=None))  # as a strategy without orders answers
    if scope is not None and filters["strategy_id"] is None:
        filters["strategy_ids"] = scope  # one `in` query (at most 30 strategies a key)
    try:
        page = _service.list(filters, query.limit, query.cursor)
    except ValueError as exc:
        raise InvalidOrder([("cursor", str(exc))]) from None
    return _json(OrderList(orders=[OrderView.of(o) for o in page.orders], next_cursor=page.cursor))


@v1.post("/execute")
def execute() -> flask.Response:
    """Direct execution: place, then wait up to wait_s for a terminal or working state; the order and its fills."""
    body = ExecuteRequest.model_validate(http.json_body())
    check_strategy(_key(), body.order.strategy_id)
    order, created = _service.create(body.order.to_order(runtime.now_ms(), generated_id=f"api-{uuid.uuid4().hex}"))
    deadline = time.monotonic() + body.wait_s
    settled = {Status.ACCEPTED, Status.TRIGGERED, Status.PARTIALLY_FILLED} if body.until == "working" else set()
    while not (order.is_terminal or order.status in settled) and time.monotonic() < deadline:
        time.sleep(0.02)
        order = _service.get(order.order_id)
    return _json(OrderView.of(order), 201 if created else 200)


# ---- dead man's switch ------------------------------------------------------------------------------------
@v1.post("/heartbeat")
def post_heartbeat() -> flask.Response:
    """Judged by its `sent_at_ms` when it carries one, else by its arrival; an ignored one (too old, latched) is a
    409 naming why, and changed nothing."""
    beat = Heartbeat.model_validate(http.json_body())
    check_strategy(_key(), beat.strategy_id)
    sent = beat.sent_at_ms if beat.sent_at_ms is not None else runtime.now_ms()
    outcome = runtime.dms_service().heartbeat(beat.strategy_id, beat.timeout_ms, sent_at_ms=sent)
    if outcome.ignored:
        return http.error_response(409, "heartbeat_ignored", outcome.ignored,
                                   [{"field": outcome.field or "strategy_id", "issue": outcome.ignored}])
    switch = outcome.switch
    return flask.jsonify({**asdict(switch), "deadline_ms": switch.deadline_ms})


@v1.get("/heartbeat")
def get_heartbeats() -> flask.Response:
    return flask.jsonify({"switches": runtime.dms_service().status()})


@v1.post("/strategies/<strategy_id>/enable")
def enable_strategy(strategy_id: str) -> flask.Response:
    if not fields.is_strategy_id(strategy_id):
        return http.error_response(422, "invalid_request", "the request has invalid fields",
                                   [{"field": "strategy_id", "issue": fields.ID_RULE}])
    check_strategy(_key(), strategy_id)
    try:
        switch = runtime.dms_service().enable(strategy_id, by=f"operator (API key {_key().id})")
    except LookupError as exc:
        return http.error_response(404, "not_found", str(exc), [{"field": "strategy_id", "issue": "unknown"}])
    return flask.jsonify(asdict(switch))


# ---- operations -----------------------------------------------------------------------------------------
@v1.get("/health")
def get_health() -> flask.Response:
    report = health.check(health.default_probes())
    return flask.make_response(flask.jsonify(report.as_dict()), 200 if report.ok else 503)


@v1.get("/adapters")
def get_adapters() -> flask.Response:
    return flask.jsonify({"adapters": adapters.registry(clients.venues(), clients.adapter_stats())})


@v1.get("/routes")
def get_routes() -> flask.Response:
    """Venues x symbols: fees, ticks and lots, adapter health and latency, top of book."""
    health = {a["name"]: a for a in adapters.registry(clients.venues(), clients.adapter_stats())}
    failed: dict[str, str] = {}
    rows = runtime.market_data().routes(health, failed)
    # A venue that cannot be reached has no rows: it is named, with its error, rather than failing the table.
    return flask.jsonify({"routes": rows, "unavailable": _unavailable(failed)})


@v1.post("/routes/optimize")
def optimize_route() -> flask.Response:
    """Dry run: the SmartRouter's allocation across venues vs the best single venue and the consolidated optimum."""
    body = OptimizeRequest.model_validate(http.json_body())
    failed: dict[str, str] = {}
    market = runtime.market_data().snapshot(body.symbol, depth=body.depth, failed=failed)
    if not market.books and failed:
        return http.error_response(503, "venue_unavailable",
                                   f"no reachable venue lists {body.symbol}; unreachable: "
                                   f"{', '.join(sorted(failed))}", [{"field": "symbol", "issue": f"{n}: {e}"}
                                                    for n, e in sorted(failed.items())],
                                   venues=sorted(failed))
    if not market.books:
        return http.error_response(422, "invalid_request", f"no venue lists {body.symbol}",
                                   [{"field": "symbol", "issue": "not listed by any configured venue"}])
    args = (body.side, body.quantity, market.books, market.terms)
    smart = router.allocate(*args, limit_price=body.limit_price)
    single = router.best_single_venue(*args, limit_price=body.limit_price)
    optimum = router.consolidated_optimum(*args)
    saving = None
    if smart.total_quantity and smart.total_quantity == single.total_quantity and smart.mid:
        # All-in unit prices, against one reference (the consolidated mid); positive: the router is better.
        edge = (single.total_cost - smart.total_cost) / smart.total_quantity
        saving = (edge if body.side == "buy" else -edge) / smart.mid * 10_000
    return flask.jsonify({"symbol": body.symbol, "side": body.side, "quantity": body.quantity,
                          "venues": sorted(market.books), "allocation": smart, "best_single_venue": single,
                          "consolidated_optimum": optimum, "saving_vs_best_single_venue_bps": saving,
                          "unavailable": _unavailable(failed)})


@v1.get("/metrics")
def get_metrics() -> flask.Response:
    """Prometheus text when asked for it (Accept: text/plain or ?format=prometheus), else a JSON summary."""
    wants_text = flask.request.args.get("format") == "prometheus" or (
        "text/plain" in (flask.request.headers.get("Accept") or "") and "json" not in flask.request.headers.get(
            "Accept", ""))
    if wants_text:
        return flask.Response(prometheus_text(runtime.metrics()), mimetype="text/plain; version=0.0.4")
    return flask.jsonify(runtime.metrics().snapshot())


@v1.get("/openapi.json")
def get_openapi() -> flask.Response:
    return flask.jsonify(api_document())


app.register_blueprint(v1)


def api(request: flask.Request) -> flask.Response:
    """Entry point."""
    return http.dispatch(app, request, runtime.SETTINGS.google_cloud_project)
