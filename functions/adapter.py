"""The venue adapter function: the adapter protocol over HTTP for one ccxt venue (one deployment per venue).

Configured by VENUE_NAME, VENUE_EXCHANGE_ID, VENUE_API_KEY / VENUE_API_SECRET / VENUE_API_PASSWORD (deployed:
Secret Manager secrets mounted as these variables), VENUE_SANDBOX, VENUE_API_URL (a local or proxied base URL)
and REDIS_URL. The ccxt exchange and its markets are built once per process.

Routes (symbols travel in the query string, since they contain a slash):
  GET  /health                      GET  /info
  POST /orders                      201 placed, 200 when the client_order_id already existed
  GET  /order?symbol=&client_order_id=|venue_order_id=
  DELETE /order?symbol=&client_order_id=|venue_order_id=      idempotent cancel
  GET  /open-orders[?symbol=]       GET  /fills?symbol=[&since=cursor][&limit=][&venue_order_id=]
  GET  /book?symbol=[&depth=]       POST /cancel-all {"symbol"?}
  GET  /trades?symbol=&since_ms=[&until_ms=][&limit=]   the public tape (market volume for POV and VWAP)
  GET  /candles?symbol=&since_ms=[&timeframe=1m][&limit=]
  POST /cancel-all-after {"timeout_ms"}   GET /cancel-all-after   POST /watchdog (Cloud Scheduler tick)
Errors: ``{"error": {"kind", "code", "message", "details"}}`` (see shared/adapters/protocol.py).
"""

from __future__ import annotations

import logging
import threading
import time

import flask
import redis
from pydantic import BaseModel, ValidationError

from functions import http
from shared.adapters.ccxt_venue import AdapterError, CcxtVenue, build_exchange
from shared.adapters.protocol import (
    ERROR_STATUS,
    CancelAll,
    CancelAllAfter,
    ErrorCode,
    ErrorKind,
    OpenOrders,
    PlaceOrder,
    VenueOrder,
    VenueStatus,
)
from shared.infra import log, redis_client
from shared.infra.cache import RedisMarketsCache, RedisPlacedIds, RedisRequestBudget, RedisSwitchStore
from shared.infra.config import AdapterSettings, ConfigError, load_settings

logger = logging.getLogger("adapter")

SETTINGS = load_settings(AdapterSettings)
log.configure(SETTINGS.log_level)


def _secret(value) -> str | None:
    return value.get_secret_value() if value else None


try:
    _exchange = build_exchange(
        SETTINGS.venue_exchange_id,
        api_key=_secret(SETTINGS.venue_api_key),
        secret=_secret(SETTINGS.venue_api_secret),
        password=_secret(SETTINGS.venue_api_password),
        sandbox=SETTINGS.venue_sandbox,
        api_url=SETTINGS.venue_api_url,
        timeout_ms=SETTINGS.venue_timeout_ms,
        rate_limit_ms=SETTINGS.venue_rate_limit_ms,
    )
except ValueError as exc:
    raise ConfigError(f"invalid configuration:\n  VENUE_EXCHANGE_ID: {exc}") from None

_redis = redis_client.connect(SETTINGS.redis_url, SETTINGS.redis_ca_file, socket_timeout=0.5,
                              socket_connect_timeout=0.5, decode_responses=True)
_switch = RedisSwitchStore(_redis, SETTINGS.venue_name)
_budget_per_s = SETTINGS.request_budget_per_s(_exchange.rateLimit)
venue = CcxtVenue(
    SETTINGS.venue_name,
    _exchange,
    placed=RedisPlacedIds(_redis, SETTINGS.venue_name),
    markets_cache=RedisMarketsCache(_redis, SETTINGS.venue_name),
    budget=RedisRequestBudget(_redis, SETTINGS.venue_name, _budget_per_s) if _budget_per_s else None,
)

app = http.create_app(__name__)


@app.errorhandler(AdapterError)
def _adapter_error(err: AdapterError) -> flask.Response:
    return http.error_response(ERROR_STATUS[err.code], err.code.value, str(err), kind=err.kind.value)


@app.errorhandler(http.UnreadableBody)
def _unreadable(exc: http.UnreadableBody) -> flask.Response:
    return http.error_response(400, ErrorCode.BAD_REQUEST.value, "the body is not readable JSON",
                               [{"field": "body", "issue": str(exc)}], kind=ErrorKind.FINAL.value)


@app.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> flask.Response:
    return http.error_response(400, ErrorCode.BAD_REQUEST.value, "invalid request",
                               http.validation_details(exc), kind=ErrorKind.FINAL.value)


def _ok(model: BaseModel, status: int = 200) -> flask.Response:
    return flask.Response(model.model_dump_json(), status=status, mimetype="application/json")


def _symbol(required: bool = True) -> str | None:
    symbol = flask.request.args.get("symbol")
    if required and not symbol:
        raise AdapterError(ErrorCode.BAD_REQUEST, "symbol: required query parameter (BASE/QUOTE)")
    return symbol


def _ids() -> dict[str, str | None]:
    return {"client_order_id": flask.request.args.get("client_order_id"),
            "venue_order_id": flask.request.args.get("venue_order_id")}


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = flask.request.args.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise AdapterError(ErrorCode.BAD_REQUEST, f"{name}: expected an integer from {low} to {high}")
    return int(raw)


@app.get("/health")
def health() -> flask.Response:
    result = venue.health()
    return _ok(result, 200 if result.status == "ok" else 503)


@app.get("/info")
def info() -> flask.Response:
    return _ok(venue.info())


@app.post("/orders")
def place() -> flask.Response:
    result = venue.place(PlaceOrder.model_validate(http.json_body()))
    return _ok(result, 201 if result.created else 200)


@app.get("/order")
def get_order() -> flask.Response:
    return _ok(_stamped(venue.get(symbol=_symbol(), **_ids())))


@app.delete("/order")
def cancel_order() -> flask.Response:
    return _ok(_stamped(venue.cancel(symbol=_symbol(), **_ids())))


_switch_canceled: set[str] = set()  # what this instance's watchdog cancelled (Redis holds every instance's)


def _stamped(order: VenueOrder) -> VenueOrder:
    """Say so when the venue switch cancelled the order: the watchdog's own cancels (recorded when it fired), or,
    for a native switch, a cancel at or after an armed deadline that was not refreshed in time."""
    if order.status is not VenueStatus.CANCELED:
        return order
    by_switch = order.client_order_id in _switch_canceled
    try:
        if not by_switch and not venue.native_cancel_after:
            by_switch = _switch.canceled_by_switch(order.client_order_id)
        elif not by_switch:
            state = _switch.load()
            by_switch = bool(state and state.armed and state.deadline_ms is not None and order.updated_at_ms
                             and order.updated_at_ms >= state.deadline_ms
                             and int(time.time() * 1000) > state.deadline_ms)
    except redis.RedisError:
        logger.warning("could not tell whether the venue switch cancelled %s", order.client_order_id)
    return order.model_copy(update={"canceled_by": "venue_switch"}) if by_switch else order


@app.get("/open-orders")
def open_orders() -> flask.Response:
    return _ok(OpenOrders(orders=venue.open_orders(_symbol(required=False))))


@app.get("/fills")
def fills() -> flask.Response:
    return _ok(venue.fills(_symbol(), flask.request.args.get("since"), _int_arg("limit", 500, 1, 1000),
                           flask.request.args.get("venue_order_id")))


@app.get("/book")
def book() -> flask.Response:
    return _ok(venue.book(_symbol(), _int_arg("depth", 20, 1, 500)))


@app.get("/trades")
def trades() -> flask.Response:
    until = flask.request.args.get("until_ms")
    return _ok(venue.trades(_symbol(), _int_arg("since_ms", 0, 0, 2**53),
                            None if until is None else _int_arg("until_ms", 0, 0, 2**53),
                            _int_arg("limit", 1000, 1, 1000)))


@app.get("/candles")
def candles() -> flask.Response:
    return _ok(venue.candles(_symbol(), _int_arg("since_ms", 0, 0, 2**53),
                             flask.request.args.get("timeframe", "1m"), _int_arg("limit", 500, 1, 1000)))


@app.post("/cancel-all")
def cancel_all() -> flask.Response:
    body = CancelAll.model_validate(http.json_body_or_empty())
    return _ok(venue.cancel_all(body.symbol))


@app.post("/cancel-all-after")
def cancel_all_after() -> flask.Response:
    body = CancelAllAfter.model_validate(http.json_body())
    state = venue.cancel_all_after(body.timeout_ms)
    _switch.save(state)
    return _ok(state)


@app.get("/cancel-all-after")
def switch_state() -> flask.Response:
    _sync_switch()
    return _ok(venue.switch_state())


@app.post("/watchdog")
def watchdog() -> flask.Response:
    """One watchdog tick (Cloud Scheduler calls this where no instance stays warm)."""
    fired = _watchdog_tick()
    return flask.jsonify({"fired": fired is not None,
                          "canceled": len(fired.canceled) if fired else 0})


def _sync_switch() -> None:
    try:
        state = _switch.load()
    except redis.RedisError as exc:
        redis_client.report_unavailable("adapter_switch", exc)
        return  # this instance's own view stands
    if state is not None:
        venue.restore_switch(state)


def _watchdog_tick():
    _sync_switch()
    fired = venue.watchdog_tick()
    if fired is not None:
        ids = [o.client_order_id for o in fired.canceled if o.status is VenueStatus.CANCELED]
        _switch_canceled.update(ids)
        try:
            _switch.mark_canceled(ids, int(time.time() * 1000))
            _switch.save(venue.switch_state())
        except redis.RedisError:
            logger.warning("could not record the disarmed switch")
    return fired


def _watchdog_loop(interval_s: float = 1.0) -> None:
    while True:
        time.sleep(interval_s)
        try:
            _watchdog_tick()
        except Exception:
            logger.exception("watchdog tick failed")


if not venue.native_cancel_after:
    threading.Thread(target=_watchdog_loop, name="dms-watchdog", daemon=True).start()


def adapter(request: flask.Request) -> flask.Response:
    """Entry point."""
    with log.bind(venue=SETTINGS.venue_name):
        return http.dispatch(app, request, SETTINGS.google_cloud_project)
