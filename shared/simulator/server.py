"""A standalone simulated exchange over HTTP, speaking the Binance spot REST dialect that ccxt's ``binance`` uses.

    python -m shared.simulator.server --venue NAME [--host 127.0.0.1] [--port P] [--seed S] [--step-ms MS]
                                      [--paused] [--warmup-steps N] [--access-log]

``--venue`` picks a profile from ``venues`` (binance, coinbase, kraken: fees, added latency, book depth, default
seed). ``--port 0`` binds a free port. Once listening, one line goes to stdout:
``sim-exchange <venue> listening on http://HOST:PORT`` (read it to learn the port). Before that the background
market has taken ``--warmup-steps`` steps (default 10), so the books are full from the first request. A
background thread then steps the market every ``--step-ms`` (default 100) with ``now_ms`` = wall-clock ms, unless
paused (``--paused`` or ``POST /admin/market``). Nothing is logged per request unless ``--access-log``.

Serving: stdlib ``ThreadingHTTPServer`` (a thread per connection), HTTP/1.1 keep-alive, ``TCP_NODELAY``, one lock
around the engine and market. Each exchange request (not ``/admin``) first waits the profile's latency plus any
injected latency spike, outside the lock.

Exchange endpoints (Binance's JSON shapes; errors are ``{"code": ..., "msg": ...}`` with HTTP 400, or 401 for a
missing/refused API key, 404 for an unknown path)
-----------------------------------------------------------------------------------------------------------------
Public: ``GET /api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo`` (``symbol``/``symbols``; status TRADING
or HALT, filters PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL, orderTypes), ``/api/v3/depth`` (``limit``
default 100), ``/api/v3/trades`` (``limit`` default 500, max 1000), ``/api/v3/aggTrades`` (one aggregate per
trade; fromId, startTime, endTime, limit; what ccxt's fetch_trades calls), ``/api/v3/ticker/bookTicker``,
``/api/v3/ticker/24hr``, ``/api/v3/ticker/price`` (one ``symbol``, or all), ``/api/v3/klines`` (``interval``
1m..1d, ``startTime``, ``endTime``, ``limit``; built from the public trades, kept 7 days as 1m candles; minutes
without trades are zero-volume candles at the previous close), ``GET /sapi/v1/system/status``.

Signed: the ``X-MBX-APIKEY`` header names the account; ``timestamp`` (digits) and ``signature`` must be present
but the HMAC is NOT verified and ``recvWindow`` is not enforced. A key is funded on first use with 1,000,000
USDT, 100 BTC and 1,000 ETH. Parameters are read from the query string and, for POST/PUT/DELETE, from a
url-encoded body (ccxt sends POST parameters in the body; the query string wins when both have one).

- ``POST /api/v3/order``: symbol, side, type (LIMIT, MARKET, LIMIT_MAKER, STOP_LOSS, STOP_LOSS_LIMIT,
  TAKE_PROFIT, TAKE_PROFIT_LIMIT), timeInForce, quantity, quoteOrderQty, price, stopPrice, newClientOrderId,
  newOrderRespType (ACK / RESULT / FULL with ``fills``; default FULL for LIMIT and MARKET, else ACK). Unknown
  parameters are ignored (selfTradePreventionMode too: the engine always expires the taker); a non-zero
  icebergQty is refused.
- ``GET /api/v3/order`` and ``DELETE /api/v3/order``: orderId or origClientOrderId (unknown: -2013 / -2011, which
  ccxt raises as OrderNotFound). The cancel answer's ``clientOrderId`` is the request's ``newClientOrderId`` if
  sent, else the order's own client id (Binance would make up a new one).
- ``GET /api/v3/openOrders`` (symbol optional), ``DELETE /api/v3/openOrders`` (symbol; no open orders answers
  ``[]``), ``GET /api/v3/allOrders`` (orderId, startTime, endTime, limit), ``GET /api/v3/myTrades`` (orderId,
  fromId, startTime, endTime, limit), ``GET /api/v3/account`` (balances, commissionRates; omitZeroBalances),
  ``GET /sapi/v1/asset/tradeFee`` (per symbol makerCommission / takerCommission, as ccxt's fetch_trading_fees
  reads them).

Admin (unsigned JSON, under ``/admin/``; never delayed, never faulted)
-----------------------------------------------------------------------
- ``GET /admin/state``: venue, paused, steps taken; per symbol mid, last price, best bid/ask, halted; pending
  faults; fees collected; per API key its balances and open order count.
- ``POST /admin/market`` ``{"paused": true|false}``; ``POST /admin/step`` ``{"steps": N}`` (N market steps now,
  paused or not).
- ``POST /admin/faults`` with any of the keys below; each sets (not adds to) its counter, ``clear`` first. The
  answer is the pending faults and the halted symbols.

Faults on order placement (``POST /api/v3/order`` that passed the API-key and timestamp/signature checks):
each such request consumes at most one pending fault, the first non-zero in this order:

- ``{"reject_next": N}``: HTTP 400 ``{"code": -2010, "msg": "Order rejected (injected)"}``; the engine is not
  touched (no order). ccxt raises InvalidOrder.
- ``{"error_500_next": N}``: HTTP 500 ``{"msg": "Internal error (injected); execution status unknown."}``; the
  engine is not touched. The body has no ``code`` on purpose: with one, ccxt maps -1000 to OperationFailed
  before looking at the status; without, it raises ExchangeNotAvailable for the 500.
- ``{"rate_limit_next": N}``: HTTP 429 ``{"code": -1003, "msg": ...}``; engine not touched. ccxt raises
  DDoSProtection (a NetworkError).
- ``{"timeout_next": N, "timeout_s": S}``: the order is processed by the engine as usual (accepted, or refused
  for its own reasons), then the answer waits S seconds (default 10) before it is written, so a client with a
  shorter timeout gives up (ccxt RequestTimeout) while the order exists. The connection is closed afterwards.
- ``{"drop_ack_next": N}``: the order is processed as usual, then the connection is closed without any answer
  (ccxt NetworkError); the order exists.

Other faults: ``{"latency_spike_ms": X, "latency_spike_next": N}``: the next N (default 1) exchange requests of
any kind (not ``/admin``) wait X ms more, before they are handled. ``{"halt": ["BTCUSDT"]}``: new orders on the
symbol are refused with -2010 "Market is closed." (ccxt MarketClosed, an OperationRejected), exchangeInfo shows
status HALT, the background market stops quoting and trading it (its resting quotes stay; cancels and queries
still work); ``{"resume": [...]}`` undoes it. ``{"trades_lag_ms": X}``: until set back to 0 (or cleared),
``GET /api/v3/myTrades`` leaves out the account's trades made in the last X ms, while orders (``executedQty`` of
GET/DELETE ``/api/v3/order``, openOrders, allOrders) and placement answers already count them: a trades list
that lags the venue's cumulative filled quantity, as eventually consistent venues do. ``{"clear": true}``: drops
every pending fault and spike, the trades lag, and resumes every halted symbol.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from shared.simulator.model import (
    AccountTrade,
    ExchangeError,
    OrderType,
    OrderView,
    Placement,
    PublicTrade,
)
from shared.simulator.venues import PROFILES, VenueProfile, profile

D = Decimal
FUNDING: dict[str, Decimal] = {"USDT": D(20_000_000), "BTC": D(400), "ETH": D(4_000)}  # a desk, not a retail account
ORDER_TYPES = [t.value for t in (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.MARKET, OrderType.STOP_LOSS,
                                 OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)]
_STOP_TYPES = {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
_NUMBER = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_INTEGER = re.compile(r"^-?[0-9]{1,20}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_MINUTE = 60_000
_DAY = 86_400_000
_KEEP_MINUTES = 7 * 1440
_INTERVALS = {"1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360,
              "8h": 480, "12h": 720, "1d": 1440}
_AUTH_CODES = {-2014, -2015, -1022}
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}
_ZERO = "0.00000000"


def _f(value: Decimal) -> str:
    """Binance's number format: a string with 8 decimals."""
    return f"{value:.8f}"


# ---- pending faults ---------------------------------------------------------------------------------------
class Faults:
    """Injected faults waiting for their requests; thread-safe."""

    ORDER = ("reject_next", "error_500_next", "rate_limit_next", "timeout_next", "drop_ack_next")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(self.ORDER, 0)
        self.timeout_s = 10.0
        self.spike_ms = 0.0
        self.spike_next = 0
        self.trades_lag_ms = 0.0

    def take_order_fault(self) -> tuple[str | None, float]:
        """The fault the next order placement gets (consumed), and the timeout's delay."""
        with self._lock:
            for name in self.ORDER:
                if self.counts[name]:
                    self.counts[name] -= 1
                    return name, self.timeout_s
        return None, 0.0

    def take_spike_ms(self) -> float:
        if not self.spike_next:  # unlocked peek: the common case costs nothing
            return 0.0
        with self._lock:
            if self.spike_next:
                self.spike_next -= 1
                return self.spike_ms
        return 0.0

    def configure(self, body: Mapping[str, Any]) -> None:
        """Apply an admin request's fault keys (all validated before any is applied)."""
        for name in (*self.ORDER, "latency_spike_next"):
            if name in body:
                _count(body, name)
        for name in ("timeout_s", "latency_spike_ms", "trades_lag_ms"):
            if name in body:
                _number(body, name)
        with self._lock:
            if body.get("clear"):
                self.counts = dict.fromkeys(self.ORDER, 0)
                self.spike_ms, self.spike_next, self.timeout_s, self.trades_lag_ms = 0.0, 0, 10.0, 0.0
            for name in self.ORDER:
                if name in body:
                    self.counts[name] = _count(body, name)
            if "timeout_s" in body:
                self.timeout_s = _number(body, "timeout_s")
            if "trades_lag_ms" in body:
                self.trades_lag_ms = _number(body, "trades_lag_ms")
            if "latency_spike_ms" in body or "latency_spike_next" in body:
                self.spike_ms = _number(body, "latency_spike_ms") if "latency_spike_ms" in body else self.spike_ms
                self.spike_next = _count(body, "latency_spike_next") if "latency_spike_next" in body else 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counts, "timeout_s": self.timeout_s, "latency_spike_ms": self.spike_ms,
                    "latency_spike_next": self.spike_next, "trades_lag_ms": self.trades_lag_ms}


class AdminError(ValueError):
    """A malformed admin request (HTTP 400)."""


def _count(body: Mapping[str, Any], name: str) -> int:
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AdminError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _number(body: Mapping[str, Any], name: str) -> float:
    value = body[name]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise AdminError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


# ---- candles ----------------------------------------------------------------------------------------------
class _Candles:
    """One symbol's public trades as 1m candles: minute -> [o, h, l, c, vol, quote vol, count, taker-buy vol,
    taker-buy quote vol]."""

    def __init__(self) -> None:
        self.minutes: dict[int, list[Any]] = {}
        self.seen = 0  # highest public trade id folded in

    def add(self, t: PublicTrade) -> None:
        minute = t.time - t.time % _MINUTE
        c = self.minutes.get(minute)
        taker_buy = not t.is_buyer_maker
        if c is None:
            self.minutes[minute] = [t.price, t.price, t.price, t.price, t.qty, t.quote_qty, 1,
                                    t.qty if taker_buy else D(0), t.quote_qty if taker_buy else D(0)]
            if len(self.minutes) > _KEEP_MINUTES:
                del self.minutes[min(self.minutes)]
            return
        if t.price > c[1]:
            c[1] = t.price
        if t.price < c[2]:
            c[2] = t.price
        c[3] = t.price
        c[4] += t.qty
        c[5] += t.quote_qty
        c[6] += 1
        if taker_buy:
            c[7] += t.qty
            c[8] += t.quote_qty


# ---- the venue ----------------------------------------------------------------------------------------------
class Simulator:
    """One simulated venue: engine, background market, pending faults and funded API keys, behind one lock."""

    def __init__(self, venue: VenueProfile, *, seed: int | None = None, step_ms: int = 100,
                 paused: bool = False, warmup_steps: int = 10) -> None:
        self.profile = venue
        self.engine, self.market = venue.build(seed)
        self.seed = venue.seed if seed is None else seed
        self.lock = threading.Lock()
        self.faults = Faults()
        self.latency_s = venue.latency_ms / 1000
        self.step_ms = step_ms
        self.paused = paused
        self.steps = 0
        self.funded: set[str] = set()
        self.symbols = [c.symbol for c in self.engine.symbols()]
        self.candles = {s: _Candles() for s in self.symbols}
        self._last_ms = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._assets = sorted({a for c in self.engine.symbols() for a in (c.base, c.quote)})
        with self.lock:
            self._step(warmup_steps)

    # -- clock and market --
    def now_ms(self) -> int:
        """Wall-clock ms, never going backwards (call under the lock)."""
        now = time.time_ns() // 1_000_000
        if now < self._last_ms:
            now = self._last_ms
        self._last_ms = now
        return now

    def _step(self, n: int) -> None:
        for _ in range(n):
            self.market.step(self.now_ms())
            self.steps += 1
        self._sync_candles()

    def _sync_candles(self) -> None:
        """Fold the public trades made since the last call into the candles (at most the engine's last 1000)."""
        for symbol, candles in self.candles.items():
            latest = self.engine.recent_trades(symbol, 1)
            if not latest or latest[0].id <= candles.seen:
                continue
            for t in self.engine.recent_trades(symbol, min(latest[0].id - candles.seen, 1000)):
                if t.id > candles.seen:
                    candles.add(t)
            candles.seen = latest[0].id

    def start(self) -> None:
        if self.step_ms > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="market", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self.step_ms / 1000
        due = time.monotonic()
        while True:
            due += interval
            delay = due - time.monotonic()
            if delay < 0:  # fell behind: do not try to catch up
                due, delay = time.monotonic(), 0.0
            if self._stop.wait(delay):
                return
            try:
                with self.lock:
                    if self.paused:
                        self._sync_candles()
                    else:
                        self._step(1)
            except Exception:  # keep the venue alive; say what happened
                traceback.print_exc()

    # -- accounts --
    def authenticate(self, params: Mapping[str, str], headers: Any) -> str:
        """The account a signed request acts for (its API key); funds it on first use (takes the lock)."""
        key = headers.get("X-MBX-APIKEY")
        if not key or not _KEY.match(key):
            raise ExchangeError(-2014, "API-key format invalid.")
        if key in (self.market.maker, self.market.taker):
            raise ExchangeError(-2015, "Invalid API-key, IP, or permissions for action.")
        timestamp = params.get("timestamp")
        if not timestamp:
            raise ExchangeError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not timestamp.isdigit():
            raise ExchangeError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is "
                                       "'^[0-9]{1,20}$'.")
        if not params.get("signature"):
            raise ExchangeError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        if key not in self.funded:
            with self.lock:
                if key not in self.funded:
                    for asset in self._assets:
                        if asset in FUNDING:
                            self.engine.deposit(key, asset, FUNDING[asset])
                    self.funded.add(key)
        return key

    # -- admin --
    def admin(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "body must be JSON"}
        if not isinstance(data, dict):
            return 400, {"error": "body must be a JSON object"}
        try:
            if (method, path) == ("GET", "/admin/state"):
                return 200, self.state()
            if (method, path) == ("POST", "/admin/faults"):
                return 200, self.configure_faults(data)
            if (method, path) == ("POST", "/admin/market"):
                if not isinstance(data.get("paused"), bool):
                    raise AdminError("paused must be true or false")
                with self.lock:
                    self.paused = data["paused"]
                return 200, {"paused": self.paused, "steps": self.steps}
            if (method, path) == ("POST", "/admin/step"):
                n = _count(data, "steps") if "steps" in data else 1
                if n > 10_000:
                    raise AdminError("steps must be at most 10000")
                with self.lock:
                    self._step(n)
                    return 200, self._symbols_state()
        except AdminError as err:
            return 400, {"error": str(err)}
        return 404, {"error": f"no admin endpoint {method} {path}; known: GET /admin/state, POST /admin/faults, "
                              f"POST /admin/market, POST /admin/step"}

    def configure_faults(self, data: Mapping[str, Any]) -> dict[str, Any]:
        known = {*Faults.ORDER, "timeout_s", "latency_spike_ms", "latency_spike_next", "trades_lag_ms", "halt",
                 "resume", "clear"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AdminError(f"unknown fault keys {unknown}; known: {sorted(known)}")
        halts = {name: data.get(name, []) for name in ("halt", "resume")}
        for name, symbols in halts.items():
            if not isinstance(symbols, list) or any(s not in self.symbols for s in symbols):
                raise AdminError(f"{name} must be a list of symbols among {self.symbols}, got {symbols!r}")
        self.faults.configure(data)
        with self.lock:
            if data.get("clear"):
                for symbol in self.symbols:
                    self.engine.set_halted(symbol, False)
            for symbol in halts["halt"]:
                self.engine.set_halted(symbol, True)
            for symbol in halts["resume"]:
                self.engine.set_halted(symbol, False)
            halted = [s for s in self.symbols if self.engine.is_halted(s)]
        return {**self.faults.snapshot(), "halted": halted}

    def _symbols_state(self) -> dict[str, Any]:
        out = {}
        for symbol in self.symbols:
            depth = self.engine.depth(symbol, 1)
            last = self.engine.last_price(symbol)
            out[symbol] = {
                "mid": str(self.market.mid(symbol)),
                "last_price": None if last is None else str(last),
                "best_bid": str(depth.bids[0][0]) if depth.bids else None,
                "best_ask": str(depth.asks[0][0]) if depth.asks else None,
                "halted": self.engine.is_halted(symbol),
            }
        return {"paused": self.paused, "steps": self.steps, "symbols": out}

    def state(self) -> dict[str, Any]:
        with self.lock:
            accounts = {}
            for key in sorted(self.funded):
                balances = self.engine.balances(key)
                accounts[key] = {
                    "balances": {a: {"free": str(b.free), "locked": str(b.locked)} for a, b in balances.items()},
                    "open_orders": len(self.engine.open_orders(key)),
                }
            return {
                "venue": self.profile.name,
                "seed": self.seed,
                "step_ms": self.step_ms,
                "latency_ms": self.profile.latency_ms,
                "fees": {"maker": str(self.profile.fees.maker), "taker": str(self.profile.fees.taker)},
                **self._symbols_state(),
                "faults": self.faults.snapshot(),
                "fees_collected": {a: str(v) for a, v in sorted(self.engine.fees_collected().items())},
                "accounts": accounts,
            }


# ---- parameters -------------------------------------------------------------------------------------------
def _required(p: Mapping[str, str], name: str) -> str:
    value = p.get(name)
    if not value:
        raise ExchangeError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _decimal(p: Mapping[str, str], name: str) -> Decimal | None:
    value = p.get(name)
    if not value:
        return None
    if not _NUMBER.match(value):
        raise ExchangeError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                   "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    return D(value)


def _int(p: Mapping[str, str], name: str) -> int | None:
    value = p.get(name)
    if not value:
        return None
    if not _INTEGER.match(value):
        raise ExchangeError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                   "'^[0-9]{1,20}$'.")
    return int(value)


def _limit(p: Mapping[str, str], default: int, maximum: int) -> int:
    value = _int(p, "limit")
    if value is None:
        return default
    if value <= 0:
        raise ExchangeError(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
    return min(value, maximum)


def _symbol(sim: Simulator, p: Mapping[str, str]) -> str:
    symbol = _required(p, "symbol")
    if symbol not in sim.candles:
        raise ExchangeError(-1121, "Invalid symbol.")
    return symbol


def _symbols_param(sim: Simulator, p: Mapping[str, str]) -> list[str]:
    """``symbol`` or ``symbols`` (a JSON list), else every symbol."""
    if p.get("symbol"):
        return [_symbol(sim, p)]
    if p.get("symbols"):
        try:
            wanted = json.loads(p["symbols"])
        except ValueError:
            raise ExchangeError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(wanted, list) or any(s not in sim.candles for s in wanted):
            raise ExchangeError(-1121, "Invalid symbol.")
        return wanted
    return list(sim.symbols)


# ---- JSON views -------------------------------------------------------------------------------------------
def _order_json(v: OrderView) -> dict[str, Any]:
    """GET /api/v3/order, openOrders, allOrders."""
    return {
        "symbol": v.symbol, "orderId": v.order_id, "orderListId": -1, "clientOrderId": v.client_order_id,
        "price": _f(v.price), "origQty": _f(v.orig_qty), "executedQty": _f(v.executed_qty),
        "cummulativeQuoteQty": _f(v.cummulative_quote_qty), "status": v.status.value,
        "timeInForce": v.time_in_force.value, "type": v.type.value, "side": v.side.value,
        "stopPrice": _f(v.stop_price), "icebergQty": _ZERO, "time": v.time, "updateTime": v.update_time,
        "isWorking": v.is_working, "workingTime": -1 if v.working_time is None else v.working_time,
        "origQuoteOrderQty": _f(v.orig_quote_order_qty), "selfTradePreventionMode": "EXPIRE_TAKER",
    }


def _fill_json(t: AccountTrade) -> dict[str, Any]:
    return {"price": _f(t.price), "qty": _f(t.qty), "commission": _f(t.commission),
            "commissionAsset": t.commission_asset, "tradeId": t.id}


def _new_order_json(placed: Placement, resp_type: str, now: int) -> dict[str, Any]:
    """POST /api/v3/order in ACK, RESULT or FULL form."""
    v = placed.order
    out: dict[str, Any] = {"symbol": v.symbol, "orderId": v.order_id, "orderListId": -1,
                           "clientOrderId": v.client_order_id, "transactTime": now}
    if resp_type == "ACK":
        return out
    out.update({
        "price": _f(v.price), "origQty": _f(v.orig_qty), "executedQty": _f(v.executed_qty),
        "origQuoteOrderQty": _f(v.orig_quote_order_qty), "cummulativeQuoteQty": _f(v.cummulative_quote_qty),
        "status": v.status.value, "timeInForce": v.time_in_force.value, "type": v.type.value,
        "side": v.side.value, "workingTime": -1 if v.working_time is None else v.working_time,
        "selfTradePreventionMode": "EXPIRE_TAKER",
    })
    if v.type.value in _STOP_TYPES:
        out["stopPrice"] = _f(v.stop_price)
    if resp_type == "FULL":
        out["fills"] = [_fill_json(t) for t in placed.fills]
    return out


def _cancel_json(v: OrderView, client_order_id: str | None, now: int) -> dict[str, Any]:
    """DELETE /api/v3/order and each entry of DELETE /api/v3/openOrders."""
    out = {
        "symbol": v.symbol, "origClientOrderId": v.client_order_id, "orderId": v.order_id, "orderListId": -1,
        "clientOrderId": client_order_id or v.client_order_id, "transactTime": now, "price": _f(v.price),
        "origQty": _f(v.orig_qty), "executedQty": _f(v.executed_qty),
        "origQuoteOrderQty": _f(v.orig_quote_order_qty), "cummulativeQuoteQty": _f(v.cummulative_quote_qty),
        "status": v.status.value, "timeInForce": v.time_in_force.value, "type": v.type.value,
        "side": v.side.value, "selfTradePreventionMode": "EXPIRE_TAKER",
    }
    if v.type.value in _STOP_TYPES:
        out["stopPrice"] = _f(v.stop_price)
    return out


def _trade_json(t: AccountTrade) -> dict[str, Any]:
    return {"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1, "price": _f(t.price),
            "qty": _f(t.qty), "quoteQty": _f(t.quote_qty), "commission": _f(t.commission),
            "commissionAsset": t.commission_asset, "time": t.time, "isBuyer": t.is_buyer, "isMaker": t.is_maker,
            "isBestMatch": True}


# ---- endpoints --------------------------------------------------------------------------------------------
Reply = tuple[int, Any]


def ping(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    return 200, {}


def server_time(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    return 200, {"serverTime": time.time_ns() // 1_000_000}


def system_status(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    return 200, {"status": 0, "msg": "normal"}


def exchange_info(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    symbols = _symbols_param(sim, p)
    with sim.lock:
        halted = {s: sim.engine.is_halted(s) for s in symbols}
    rows = []
    for s in symbols:
        c = sim.engine.symbol_config(s)
        rows.append({
            "symbol": s, "status": "HALT" if halted[s] else "TRADING", "baseAsset": c.base,
            "baseAssetPrecision": 8, "quoteAsset": c.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8, "orderTypes": ORDER_TYPES,
            "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False, "cancelReplaceAllowed": False, "amendAllowed": False,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": _f(c.tick_size), "maxPrice": _f(c.max_price),
                 "tickSize": _f(c.tick_size)},
                {"filterType": "LOT_SIZE", "minQty": _f(c.min_qty), "maxQty": _f(c.max_qty),
                 "stepSize": _f(c.step_size)},
                {"filterType": "MARKET_LOT_SIZE", "minQty": _f(c.min_qty), "maxQty": _f(c.max_qty),
                 "stepSize": _f(c.step_size)},
                {"filterType": "NOTIONAL", "minNotional": _f(c.min_notional), "applyMinToMarket": True,
                 "maxNotional": "9000000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER"],
        })
    return 200, {
        "timezone": "UTC", "serverTime": time.time_ns() // 1_000_000,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [], "symbols": rows,
    }


def depth(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    symbol = _symbol(sim, p)
    limit = _limit(p, 100, 5000)
    with sim.lock:
        d = sim.engine.depth(symbol, limit)
    return 200, {"lastUpdateId": d.last_update_id, "bids": [[_f(px), _f(q)] for px, q in d.bids],
                 "asks": [[_f(px), _f(q)] for px, q in d.asks]}


def trades(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    symbol = _symbol(sim, p)
    limit = _limit(p, 500, 1000)
    with sim.lock:
        rows = sim.engine.recent_trades(symbol, limit)
    return 200, [{"id": t.id, "price": _f(t.price), "qty": _f(t.qty), "quoteQty": _f(t.quote_qty), "time": t.time,
                  "isBuyerMaker": t.is_buyer_maker, "isBestMatch": True} for t in rows]


def agg_trades(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    """One aggregate trade per trade (``a`` = ``f`` = ``l`` = the trade id), from the last 1000 public trades."""
    symbol = _symbol(sim, p)
    from_id, start, end = _int(p, "fromId"), _int(p, "startTime"), _int(p, "endTime")
    limit = _limit(p, 500, 1000)
    with sim.lock:
        rows = sim.engine.recent_trades(symbol, 1000)
    if from_id is not None or start is not None or end is not None:
        rows = [t for t in rows if (from_id is None or t.id >= from_id) and (start is None or t.time >= start)
                and (end is None or t.time <= end)]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
    else:
        rows = rows[-limit:]
    return 200, [{"a": t.id, "p": _f(t.price), "q": _f(t.qty), "f": t.id, "l": t.id, "T": t.time,
                  "m": t.is_buyer_maker, "M": True} for t in rows]


def _one_or_all(sim: Simulator, p: Mapping[str, str], row: Callable[[str], dict[str, Any]]) -> Reply:
    single = bool(p.get("symbol"))
    symbols = _symbols_param(sim, p)
    with sim.lock:
        rows = [row(s) for s in symbols]
    return 200, rows[0] if single else rows


def book_ticker(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    def row(s: str) -> dict[str, Any]:
        d = sim.engine.depth(s, 1)
        bid = d.bids[0] if d.bids else (D(0), D(0))
        ask = d.asks[0] if d.asks else (D(0), D(0))
        return {"symbol": s, "bidPrice": _f(bid[0]), "bidQty": _f(bid[1]), "askPrice": _f(ask[0]),
                "askQty": _f(ask[1])}
    return _one_or_all(sim, p, row)


def ticker_price(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    def row(s: str) -> dict[str, Any]:
        return {"symbol": s, "price": _f(sim.engine.last_price(s) or D(0))}
    return _one_or_all(sim, p, row)


def ticker_24hr(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    def row(s: str) -> dict[str, Any]:
        now = sim.now_ms()
        since = now - _DAY
        sim._sync_candles()
        minutes = sorted(sim.candles[s].minutes.items())
        window = [c for m, c in minutes if m + _MINUTE > since]
        before = [c for m, c in minutes if m + _MINUTE <= since]
        last_trade = sim.engine.recent_trades(s, 1)
        last = last_trade[0].price if last_trade else D(0)
        d = sim.engine.depth(s, 1)
        bid = d.bids[0] if d.bids else (D(0), D(0))
        ask = d.asks[0] if d.asks else (D(0), D(0))
        volume = sum((c[4] for c in window), D(0))
        quote_volume = sum((c[5] for c in window), D(0))
        open_ = window[0][0] if window else last
        change = last - open_
        first_id = sim.candles[s].seen - sum(c[6] for c in window) + 1 if window else -1
        return {
            "symbol": s, "priceChange": _f(change),
            "priceChangePercent": f"{(change / open_ * 100) if open_ else D(0):.3f}",
            "weightedAvgPrice": _f(quote_volume / volume if volume else last),
            "prevClosePrice": _f(before[-1][3] if before else D(0)), "lastPrice": _f(last),
            "lastQty": _f(last_trade[0].qty if last_trade else D(0)), "bidPrice": _f(bid[0]), "bidQty": _f(bid[1]),
            "askPrice": _f(ask[0]), "askQty": _f(ask[1]), "openPrice": _f(open_),
            "highPrice": _f(max((c[1] for c in window), default=last)),
            "lowPrice": _f(min((c[2] for c in window), default=last)),
            "volume": _f(volume), "quoteVolume": _f(quote_volume), "openTime": since, "closeTime": now,
            "firstId": first_id, "lastId": sim.candles[s].seen if window else -1,
            "count": sum(c[6] for c in window),
        }
    return _one_or_all(sim, p, row)


def klines(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    symbol = _symbol(sim, p)
    interval = _required(p, "interval")
    if interval not in _INTERVALS:
        raise ExchangeError(-1120, "Invalid interval.")
    span = _INTERVALS[interval] * _MINUTE
    start, end = _int(p, "startTime"), _int(p, "endTime")
    limit = _limit(p, 500, 1000)
    with sim.lock:
        sim._sync_candles()
        minutes = [(m, list(c)) for m, c in sorted(sim.candles[symbol].minutes.items())]
    buckets: list[list[Any]] = []  # [open time, o, h, l, c, vol, quote vol, count, taker-buy vol, quote]
    for minute, c in minutes:
        start_of = minute - minute % span
        if buckets and buckets[-1][0] == start_of:
            b = buckets[-1]
            b[2], b[3], b[4] = max(b[2], c[1]), min(b[3], c[2]), c[3]
            for i in range(4, 9):
                b[i + 1] += c[i]
            continue
        while buckets and buckets[-1][0] + span < start_of:  # a gap: zero-volume candles at the last close
            close = buckets[-1][4]
            buckets.append([buckets[-1][0] + span, close, close, close, close, D(0), D(0), 0, D(0), D(0)])
        buckets.append([start_of, *c[:9]])
    if start is not None:
        buckets = [b for b in buckets if b[0] + span > start]
    if end is not None:
        buckets = [b for b in buckets if b[0] <= end]
    buckets = buckets[:limit] if start is not None else buckets[-limit:]
    return 200, [[b[0], _f(b[1]), _f(b[2]), _f(b[3]), _f(b[4]), _f(b[5]), b[0] + span - 1, _f(b[6]), b[7],
                  _f(b[8]), _f(b[9]), "0"] for b in buckets]


def new_order(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    return place_order(sim, p, sim.authenticate(p, h))


def place_order(sim: Simulator, p: Mapping[str, str], key: str) -> Reply:
    """POST /api/v3/order for an authenticated account, once the faults had their say (``Handler._handle``)."""
    symbol = _required(p, "symbol")
    side = _required(p, "side")
    otype = _required(p, "type")
    quantity, price = _decimal(p, "quantity"), _decimal(p, "price")
    stop, quote_qty = _decimal(p, "stopPrice"), _decimal(p, "quoteOrderQty")
    iceberg = _decimal(p, "icebergQty")
    if iceberg:
        raise ExchangeError(-2010, "Iceberg orders are not supported for this symbol.")
    resp_type = p.get("newOrderRespType") or ("FULL" if otype in ("LIMIT", "MARKET") else "ACK")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise ExchangeError(-1100, "Illegal characters found in parameter 'newOrderRespType'; legal range is "
                                   "'ACK, RESULT, FULL'.")
    with sim.lock:
        now = sim.now_ms()
        placed = sim.engine.place_order(
            key, symbol, side, otype, now_ms=now, quantity=quantity, price=price,
            time_in_force=p.get("timeInForce") or None, stop_price=stop, quote_order_qty=quote_qty,
            client_order_id=p.get("newClientOrderId") or None)
    return 200, _new_order_json(placed, resp_type, now)


def get_order(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    symbol = _required(p, "symbol")
    order_id, client_id = _int(p, "orderId"), p.get("origClientOrderId") or None
    with sim.lock:
        v = sim.engine.get_order(key, symbol, order_id=order_id, orig_client_order_id=client_id)
    return 200, _order_json(v)


def cancel_order(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    symbol = _required(p, "symbol")
    order_id, client_id = _int(p, "orderId"), p.get("origClientOrderId") or None
    with sim.lock:
        now = sim.now_ms()
        v = sim.engine.cancel_order(key, symbol, now_ms=now, order_id=order_id, orig_client_order_id=client_id)
    return 200, _cancel_json(v, p.get("newClientOrderId") or None, now)


def open_orders(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    symbol = p.get("symbol") or None
    with sim.lock:
        rows = sim.engine.open_orders(key, symbol)
    return 200, [_order_json(v) for v in rows]


def cancel_open_orders(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    symbol = _required(p, "symbol")
    with sim.lock:
        now = sim.now_ms()
        rows = sim.engine.cancel_open_orders(key, symbol, now_ms=now)
    return 200, [_cancel_json(v, None, now) for v in rows]


def all_orders(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    symbol = _required(p, "symbol")
    from_id, start, end = _int(p, "orderId"), _int(p, "startTime"), _int(p, "endTime")
    limit = _limit(p, 500, 1000)
    timed = start is not None or end is not None
    with sim.lock:
        rows = sim.engine.all_orders(key, symbol, from_order_id=from_id, limit=10**9 if timed else limit)
    if timed:
        rows = [v for v in rows if (start is None or v.time >= start) and (end is None or v.time <= end)]
        rows = rows[:limit] if (start is not None or from_id is not None) else rows[-limit:]
    return 200, [_order_json(v) for v in rows]


def my_trades(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    symbol = _required(p, "symbol")
    order_id, from_id = _int(p, "orderId"), _int(p, "fromId")
    start, end = _int(p, "startTime"), _int(p, "endTime")
    limit = _limit(p, 500, 1000)
    lag_ms = sim.faults.trades_lag_ms
    filtered = order_id is not None or start is not None or end is not None or lag_ms > 0
    with sim.lock:
        rows = sim.engine.my_trades(key, symbol, from_id=from_id, limit=10**9 if filtered else limit)
        if lag_ms > 0:  # the injected lag: the newest trades are not listed yet
            cutoff = sim.now_ms() - lag_ms
            rows = [t for t in rows if t.time <= cutoff]
    if filtered:
        rows = [t for t in rows if (order_id is None or t.order_id == order_id)
                and (start is None or t.time >= start) and (end is None or t.time <= end)]
        rows = rows[:limit] if (start is not None or from_id is not None) else rows[-limit:]
    return 200, [_trade_json(t) for t in rows]


def account(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    key = sim.authenticate(p, h)
    with sim.lock:
        balances = sim.engine.balances(key)
        now = sim.now_ms()
    omit_zero = (p.get("omitZeroBalances") or "").lower() == "true"
    fees = sim.profile.fees
    return 200, {
        "makerCommission": int(fees.maker * 10_000), "takerCommission": int(fees.taker * 10_000),
        "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": _f(fees.maker), "taker": _f(fees.taker), "buyer": _ZERO, "seller": _ZERO},
        "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now, "accountType": "SPOT",
        "balances": [{"asset": a, "free": _f(b.free), "locked": _f(b.locked)} for a, b in balances.items()
                     if not (omit_zero and not b.free and not b.locked)],
        "permissions": ["SPOT"], "uid": zlib.crc32(key.encode()),
    }


def trade_fee(sim: Simulator, p: Mapping[str, str], h: Any) -> Reply:
    sim.authenticate(p, h)
    fees = sim.profile.fees
    return 200, [{"symbol": s, "makerCommission": str(fees.maker), "takerCommission": str(fees.taker)}
                 for s in _symbols_param(sim, p)]


ROUTES: dict[tuple[str, str], Callable[[Simulator, Mapping[str, str], Any], Reply]] = {
    ("GET", "/api/v3/ping"): ping,
    ("GET", "/api/v3/time"): server_time,
    ("GET", "/api/v3/exchangeInfo"): exchange_info,
    ("GET", "/api/v3/depth"): depth,
    ("GET", "/api/v3/trades"): trades,
    ("GET", "/api/v3/aggTrades"): agg_trades,
    ("GET", "/api/v3/ticker/bookTicker"): book_ticker,
    ("GET", "/api/v3/ticker/24hr"): ticker_24hr,
    ("GET", "/api/v3/ticker/price"): ticker_price,
    ("GET", "/api/v3/klines"): klines,
    ("GET", "/sapi/v1/system/status"): system_status,
    ("POST", "/api/v3/order"): new_order,
    ("GET", "/api/v3/order"): get_order,
    ("DELETE", "/api/v3/order"): cancel_order,
    ("GET", "/api/v3/openOrders"): open_orders,
    ("DELETE", "/api/v3/openOrders"): cancel_open_orders,
    ("GET", "/api/v3/allOrders"): all_orders,
    ("GET", "/api/v3/myTrades"): my_trades,
    ("GET", "/api/v3/account"): account,
    ("GET", "/sapi/v1/asset/tradeFee"): trade_fee,
}


def _error_status(code: int) -> int:
    if code in _AUTH_CODES:
        return 401
    if code == -1003:
        return 429
    return 400


# ---- HTTP -------------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    """Routes one keep-alive connection's requests to the simulator (``server.sim``)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "sim-exchange"
    sys_version = ""
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        if self.server.access_log:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's names)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        sim = self.server.sim
        path, _, query = self.path.partition("?")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send(400, {"code": -1000, "msg": "Bad Content-Length."})
            return
        body = self.rfile.read(length) if length > 0 else b""
        if path.startswith("/admin/"):
            try:
                status, payload = sim.admin(method, path, body)
            except Exception as err:
                traceback.print_exc()
                status, payload = 500, {"error": f"{type(err).__name__}: {err}"}
            self._send(status, payload)
            return
        delay = sim.latency_s + sim.faults.take_spike_ms() / 1000
        if delay > 0:
            time.sleep(delay)
        fault, timeout_s = None, 0.0
        try:
            route = ROUTES.get((method, path))
            if route is None:
                self._send(404, {"code": -1020, "msg": f"This operation is not supported: {method} {path}"})
                return
            params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if body else {}
            if query:
                params.update(parse_qsl(query, keep_blank_values=True))
            if route is new_order:
                key = sim.authenticate(params, self.headers)
                fault, timeout_s = sim.faults.take_order_fault()
                if fault == "reject_next":
                    raise ExchangeError(-2010, "Order rejected (injected)")
                if fault == "error_500_next":
                    self._send(500, {"msg": "Internal error (injected); execution status unknown."})
                    return
                if fault == "rate_limit_next":
                    raise ExchangeError(-1003, "Too much request weight used; current limit is 6000 request weight "
                                               "per 1 MINUTE. (injected)")
                status, payload = place_order(sim, params, key)
            else:
                status, payload = route(sim, params, self.headers)
        except ExchangeError as err:
            status, payload = _error_status(err.code), err.to_json()
        except Exception:
            traceback.print_exc()
            status, payload = 500, {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        if fault == "drop_ack_next":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "timeout_next":
            time.sleep(timeout_s)
            self.close_connection = True
            try:
                self._send(status, payload)
            except OSError:  # the client gave up, as intended
                pass
            return
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
                f"{'Connection: close' + chr(13) + chr(10) if self.close_connection else ''}\r\n")
        self.wfile.write(head.encode() + body)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: Simulator, *, access_log: bool = False) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.sim = sim
        self.access_log = access_log

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):  # a client went away: nothing to report
            return
        super().handle_error(request, client_address)


def serve(venue: str, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = None, step_ms: int = 100,
          paused: bool = False, warmup_steps: int = 10, access_log: bool = False) -> SimServer:
    """Build the venue and bind its server (not yet serving: call ``serve_forever``; ``sim.start()`` steps)."""
    sim = Simulator(profile(venue), seed=seed, step_ms=step_ms, paused=paused, warmup_steps=warmup_steps)
    return SimServer((host, port), sim, access_log=access_log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.simulator.server",
                                     description="A simulated exchange speaking Binance's spot REST dialect.")
    parser.add_argument("--venue", required=True, help=f"venue profile: {', '.join(sorted(PROFILES))}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--seed", type=int, default=None, help="overrides the profile's seed")
    parser.add_argument("--step-ms", type=int, default=100, help="background market step period; 0: no stepping")
    parser.add_argument("--paused", action="store_true", help="start with the background market paused")
    parser.add_argument("--warmup-steps", type=int, default=10, help="market steps taken before serving")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    try:
        server = serve(args.venue, args.host, args.port, seed=args.seed, step_ms=args.step_ms, paused=args.paused,
                       warmup_steps=args.warmup_steps, access_log=args.access_log)
    except ValueError as err:
        parser.error(str(err))
    except OSError as err:
        print(f"sim-exchange: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    server.sim.start()
    print(f"sim-exchange {args.venue} listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.sim.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
