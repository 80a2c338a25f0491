"""The service's side of the adapter protocol: an HTTP client per adapter, and their shared call statistics.

``VenueClient`` speaks to one adapter over one pooled HTTP session (built once per process) and returns the
protocol's models. Every failure becomes a ``VenueCallError`` with the protocol's kind, so a caller decides
from the kind alone: retry (retryable), give up (final), or look the order up first (unknown_outcome). A
connection that was never made (refused, unresolvable, connect timeout) is retryable even for a write: nothing
was sent. A connection that breaks or times out after a write was sent is an unknown outcome; the same on a read
is retryable, and a read whose pooled connection was dropped before any answer is sent once more at once
(``session``). Answers are parsed with ``exact_json``: a price the adapter sends as a JSON number keeps its digits.

``AdapterStats`` keeps each adapter's latency samples, call and error counts, last success and its dead man's
switch state in Redis, so every function instance reports the same figures.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
import requests
from pydantic import BaseModel, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from shared.adapters.protocol import (
    AdapterHealth,
    CancelAllResult,
    Candles,
    DeadMansSwitch,
    ErrorCode,
    ErrorKind,
    FillsPage,
    OpenOrders,
    OrderBook,
    PlaceOrder,
    PlaceResult,
    PublicTrades,
    VenueCallError,
    VenueInfo,
    VenueOrder,
)
from shared.infra import exact_json, redis_client

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

LATENCY_SAMPLES = 1000


class _ResendDropped(Retry):
    """urllib3's Retry narrowed to one case: a connection dropped before any answer (``ProtocolError``). A server
    closing an idle keep-alive connection can race a request sent on it; HTTP/1.1 lets a client send a safe
    request again. Timeouts, refused connections and statuses reach the caller as they are."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and not isinstance(error, ProtocolError):
            if isinstance(error, ReadTimeoutError):
                raise error.with_traceback(_stacktrace)  # requests turns it into its ReadTimeout
            # As urllib3's own Retry gives up: wrapped, the form requests turns into ConnectionError (refused),
            # ConnectTimeout, SSLError... Raised bare, a NewConnectionError escapes requests' exception types.
            raise MaxRetryError(_pool, url, error).with_traceback(_stacktrace) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def resend_dropped(methods: Iterable[str], times: int = 1) -> Retry:
    """``max_retries`` for an ``HTTPAdapter``: send a request of these methods again, up to `times`, when its
    connection was dropped before any answer; nothing else is retried."""
    return _ResendDropped(total=times, connect=0, read=times, status=0, other=0, redirect=0,
                          allowed_methods=frozenset(methods), respect_retry_after_header=False,
                          raise_on_status=False)


def session(pool: int = 32) -> requests.Session:
    """The pooled session adapter calls share. Reads (GET) are sent once more on a dropped connection; writes
    never are (their outcome is looked up by client order id instead)."""
    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=resend_dropped({"GET"}))
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class AdapterStats:
    """Per-adapter call statistics in Redis. Recording never fails the call it describes."""

    def __init__(self, client: redis.Redis, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000):
        self._r = client
        self._clock_ms = clock_ms

    def record(self, venue: str, latency_ms: float, ok: bool, error: str | None = None) -> None:
        key = f"venue:{venue}"
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.lpush(f"{key}:latency", f"{latency_ms:.3f}")
            pipe.ltrim(f"{key}:latency", 0, LATENCY_SAMPLES - 1)
            pipe.hincrby(f"{key}:counts", "calls", 1)
            if ok:
                pipe.hset(f"{key}:counts", "last_success_ms", self._clock_ms())
            else:
                pipe.hincrby(f"{key}:counts", "errors", 1)
                pipe.hset(f"{key}:counts", mapping={"last_error": error or "", "last_error_ms": self._clock_ms()})
            pipe.execute()
        except redis.RedisError as exc:
            redis_client.report_unavailable("adapter_stats", exc)

    def record_switch(self, venue: str, state: DeadMansSwitch) -> None:
        try:
            self._r.set(f"venue:{venue}:switch", state.model_dump_json())
        except redis.RedisError:
            logger.warning("dead man's switch state of %s not recorded (redis unavailable)", venue)

    def snapshot(self, venue: str) -> dict[str, Any]:
        key = f"venue:{venue}"
        pipe = self._r.pipeline(transaction=False)
        pipe.lrange(f"{key}:latency", 0, -1)
        pipe.hgetall(f"{key}:counts")
        pipe.get(f"{key}:switch")
        samples, counts, switch = pipe.execute()
        return summarize([float(s) for s in samples], counts, json.loads(switch) if switch else None)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def summarize(samples: list[float], counts: dict[str, str], switch: dict | None) -> dict[str, Any]:
    ordered = sorted(samples)
    calls = int(counts.get("calls", 0))
    errors = int(counts.get("errors", 0))
    return {
        "calls": calls,
        "errors": errors,
        "error_rate": round(errors / calls, 4) if calls else 0.0,
        "latency_ms": {"p50": percentile(ordered, 50), "p99": percentile(ordered, 99), "samples": len(ordered)},
        "last_success_ms": int(counts["last_success_ms"]) if "last_success_ms" in counts else None,
        "last_error": counts.get("last_error") or None,
        "dead_mans_switch": switch or {"armed": False},
    }


class IdTokenAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <Google ID token>`` for one adapter (audience: its base URL), from the runtime's
    service account. The token is fetched on first use and refreshed shortly before it expires (google-auth's
    ``valid``); every other call only sets the header."""

    def __init__(self, audience: str) -> None:
        self._audience = audience
        self._creds: Any = None
        self._transport: Any = None  # google-auth's HTTP transport (its own session), built on the first fetch
        self._lock = threading.Lock()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if self._creds is None or not self._creds.valid:
                self._refresh()
            r.headers["Authorization"] = f"Bearer {self._creds.token}"
        return r

    def _refresh(self) -> None:
        import google.auth.transport.requests
        import google.oauth2.id_token

        if self._transport is None:
            self._transport = google.auth.transport.requests.Request()
        if self._creds is None:
            self._creds = google.oauth2.id_token.fetch_id_token_credentials(self._audience, self._transport)
        self._creds.refresh(self._transport)


class VenueClient:
    """One adapter, over HTTP."""

    def __init__(self, venue: str, base_url: str, http: requests.Session, stats: AdapterStats | None = None,
                 timeout_s: float = 10.0, id_token: bool = False) -> None:
        self.venue = venue
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._auth = IdTokenAuth(self.base_url) if id_token else None
        self._stats = stats
        self._timeout = timeout_s

    def _call(self, method: str, path: str, model: type[M], *, writes: bool = False, params: dict | None = None,
              body: BaseModel | dict | None = None, timeout_s: float | None = None) -> M:
        data = body.model_dump_json() if isinstance(body, BaseModel) else (json.dumps(body) if body else None)
        start = time.perf_counter()
        try:
            resp = self._http.request(
                method, self.base_url + path, params=params, data=data, timeout=timeout_s or self._timeout,
                auth=self._auth,
                headers={"Content-Type": "application/json"} if data else None,
            )
        except (requests.RequestException, HTTPError) as exc:  # urllib3's own, should one ever come through bare
            arrived = _may_have_arrived(exc)
            code = ErrorCode.TIMEOUT if writes and arrived else ErrorCode.NETWORK
            self._record(start, False, f"{code.value}: {type(exc).__name__}")
            raise VenueCallError(self.venue, code, _describe(exc, self.base_url, arrived)) from exc
        if resp.status_code >= 400:
            err = _error_of(resp, writes)
            # A refusal by the venue is an answer: the adapter itself is working.
            self._record(start, err.kind is ErrorKind.FINAL, f"{err.code.value}: {err}")
            raise VenueCallError(self.venue, err.code, str(err), resp.status_code)
        self._record(start, True)
        try:
            # Not model_validate_json: it reads a JSON number into a Decimal field through a float.
            return model.model_validate(exact_json.loads(resp.content))
        except ValueError as exc:  # not JSON, or not the model (ValidationError is a ValueError)
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else f"not JSON: {exc}"
            raise VenueCallError(self.venue, ErrorCode.TIMEOUT if writes else ErrorCode.NETWORK,
                                 f"unreadable answer: {why}") from exc

    def _record(self, start: float, ok: bool, error: str | None = None) -> None:
        if self._stats is not None:
            self._stats.record(self.venue, (time.perf_counter() - start) * 1000, ok, error)

    # ---- protocol operations ---------------------------------------------------------------------------
    def health(self, timeout_s: float = 2.0) -> AdapterHealth:
        try:
            return self._call("GET", "/health", AdapterHealth, timeout_s=timeout_s)
        except VenueCallError as err:
            if err.status == 503:
                return AdapterHealth(status="unavailable", venue=self.venue, exchange_id="?", markets_loaded=False,
                                     error=str(err))
            raise

    def info(self) -> VenueInfo:
        return self._call("GET", "/info", VenueInfo)

    def place(self, order: PlaceOrder) -> PlaceResult:
        return self._call("POST", "/orders", PlaceResult, writes=True, body=order)

    def get(self, symbol: str, *, client_order_id: str | None = None, venue_order_id: str | None = None) -> VenueOrder:
        return self._call("GET", "/order", VenueOrder, params=_ids(symbol, client_order_id, venue_order_id))

    def cancel(self, symbol: str, *, client_order_id: str | None = None,
               venue_order_id: str | None = None) -> VenueOrder:
        return self._call("DELETE", "/order", VenueOrder, writes=True,
                          params=_ids(symbol, client_order_id, venue_order_id))

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return self._call("GET", "/open-orders", OpenOrders, params={"symbol": symbol} if symbol else None).orders

    def fills(self, symbol: str, since: str | None = None, limit: int = 500,
              venue_order_id: str | None = None) -> FillsPage:
        params = {"symbol": symbol, "limit": limit, **({"since": since} if since else {}),
                  **({"venue_order_id": venue_order_id} if venue_order_id else {})}
        return self._call("GET", "/fills", FillsPage, params=params)

    def book(self, symbol: str, depth: int = 20) -> OrderBook:
        return self._call("GET", "/book", OrderBook, params={"symbol": symbol, "depth": depth})

    def trades(self, symbol: str, since_ms: int, until_ms: int | None = None, limit: int = 1000) -> PublicTrades:
        params = {"symbol": symbol, "since_ms": since_ms, "limit": limit,
                  **({"until_ms": until_ms} if until_ms is not None else {})}
        return self._call("GET", "/trades", PublicTrades, params=params)

    def candles(self, symbol: str, since_ms: int, timeframe: str = "1m", limit: int = 500) -> Candles:
        params = {"symbol": symbol, "since_ms": since_ms, "timeframe": timeframe, "limit": limit}
        return self._call("GET", "/candles", Candles, params=params)

    def cancel_all(self, symbol: str | None = None) -> CancelAllResult:
        return self._call("POST", "/cancel-all", CancelAllResult, writes=True, body={"symbol": symbol})

    def cancel_all_after(self, timeout_ms: int) -> DeadMansSwitch:
        state = self._call("POST", "/cancel-all-after", DeadMansSwitch, writes=True, body={"timeout_ms": timeout_ms})
        if self._stats is not None:
            self._stats.record_switch(self.venue, state)
        return state


def _ids(symbol: str, client_order_id: str | None, venue_order_id: str | None) -> dict[str, str]:
    params = {"symbol": symbol}
    if client_order_id:
        params["client_order_id"] = client_order_id
    if venue_order_id:
        params["venue_order_id"] = venue_order_id
    return params


def _may_have_arrived(exc: BaseException) -> bool:
    """Whether a failed request may still have reached the adapter: anything but a connection never made
    (refused, name not resolved, connect timeout: urllib3's ConnectTimeoutError and its NewConnectionError,
    found wherever requests wrapped them)."""
    if any(isinstance(e, (requests.ConnectTimeout, ConnectTimeoutError)) for e in _causes(exc)):
        return False
    return not any(sign in str(exc) for sign in ("Connection refused", "Failed to establish", "NameResolution"))


def _describe(exc: BaseException, base_url: str, arrived: bool) -> str:
    """One line for a failed call: a connection never made says so and why (refused, unresolvable, ...)."""
    if not arrived:
        root = next((e for e in reversed(_causes(exc)) if isinstance(e, ConnectTimeoutError)), None)
        why = str(root).split("): ", 1)[-1] if root is not None else str(exc)
        return f"{type(exc).__name__}: no connection to {base_url} ({why}); the request was not sent"
    return f"{type(exc).__name__}: {exc}"


def _causes(exc: BaseException, limit: int = 16) -> list[BaseException]:
    """`exc` and what it wraps: requests keeps urllib3's MaxRetryError in args, which keeps the cause in reason."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < limit:
        e = todo.pop()
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
    return seen


def _error_of(resp: requests.Response, writes: bool) -> VenueCallError:
    try:
        err = resp.json()["error"]
        return VenueCallError("", ErrorCode(err["code"]), err.get("message", ""), resp.status_code)
    except (ValueError, KeyError, TypeError):
        # Not the protocol's answer (a proxy, a crashed adapter): a write may have happened.
        code = ErrorCode.TIMEOUT if writes and resp.status_code >= 500 else (
            ErrorCode.VENUE_UNAVAILABLE if resp.status_code >= 500 else ErrorCode.BAD_REQUEST)
        return VenueCallError("", code, f"HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code)
