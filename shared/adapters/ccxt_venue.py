"""The exchange-adapter protocol implemented on ccxt, for any ccxt exchange id.

``CcxtVenue`` wraps one ccxt exchange object (built once per process by ``build_exchange``) and turns the
protocol's operations into ccxt calls, ccxt's answers into protocol models, and ccxt's exception hierarchy into
the protocol's closed error set. Small per-venue differences live in ``VENUE_QUIRKS``, not in branches.

Idempotent placement: a client order id is marked in a ``PlacedIds`` index (Redis) before it is sent. A second
placement of a marked id looks the order up at the venue and returns it, so one client order id never makes two
venue orders, even for venues (Binance) that only reject duplicates of still-open orders. Without the index
(Redis down) every placement looks up first: slower, never unsafe.

A venue's request weight is budgeted across every instance of its adapter (``RequestBudget``: a token bucket in
Redis). ccxt's own throttle is per process, so N instances behind one API key or egress address would send N
times the venue's limit (ccxt issue 14639). Every HTTP request ccxt makes (``fetch2``, whatever unified call made
it) first takes its ccxt cost (the endpoint's weight in ccxt's units, ``calculate_rate_limiter_cost``) from the
shared bucket, waiting up to ``BUDGET_MAX_WAIT_MS`` for it. A request the budget refuses is never sent: it fails
as ``rate_limited``, a retryable error, so the service treats a refused placement as "not sent" and schedules it
again (shared/app/orders.py ``_place_failed``); nothing is lost or duplicated. When the budget cannot be read
(Redis down) the adapter fails closed for everything but cancels: no placement, lookup or listing goes out on an
unknown budget (each is retried by the service); cancels (the protocol's ``cancel``, ``cancel_all`` and
``cancel_all_after``, with the reads they make) take risk off, so they always go after at most the wait, budget or
not (ccxt's own throttle and the venue's 429 still apply).

Markets are loaded once and cached (``MarketsCache``: Redis) so a cold start does not download them again
(ccxt issue 14639: Cloud Functions users were IP-banned for reloading markets on every call).

Numbers are read exactly (``read_numbers_exactly``): the exchange object parses with ``exchange.number = str``, so
every unified number ccxt builds with ``safe_number`` (orders, trades, fees, balances, tickers, candles, the markets'
rules) is the venue's own decimal string, turned straight into Decimal, never a float round trip. Order-book levels
are the exception in ccxt (its base parser uses ``safe_float`` whatever ``number`` says), so their price and amount
are re-read from the venue's answer as Decimal (which also keeps ccxt's sort of the levels numeric). What stays out
of reach: a venue that sends JSON numbers rather than strings has them parsed to float by ccxt's JSON decoder
before anyone sees them (Binance and its simulators send strings).

ccxt's ``decimal_to_precision`` (behind ``amount_to_precision``, ``price_to_precision`` and many ``create_order``
implementations) changes the calling thread's decimal context for good (rounding ROUND_HALF_UP, the Underflow
trap): every ccxt call runs in a ``decimal.localcontext()`` so nothing else in the process rounds differently
after an adapter call.

An order is sent exactly as the service asked or not at all: the adapter never rounds a price or quantity (ccxt's
``price_to_precision`` rounds to the nearest tick, which can lift a buy's limit above the client's price). An order
off the venue's grid, below its minimum or above its maximum is refused as a final ``invalid_order`` naming the rule
(``shared.domain.market.venue_fit_problems``), before anything is sent and before its id is marked as placed.
"""

from __future__ import annotations

import contextlib
import decimal
import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import ccxt
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE

from shared.adapters.protocol import (
    ERROR_KIND,
    AdapterHealth,
    BookLevel,
    CancelAllResult,
    Candle,
    Candles,
    DeadMansSwitch,
    ErrorCode,
    Fill,
    FillsPage,
    OrderBook,
    OrderType,
    PlaceOrder,
    PlaceResult,
    PublicTrade,
    PublicTrades,
    RateLimit,
    Side,
    SymbolInfo,
    TimeInForce,
    VenueInfo,
    VenueOrder,
    VenueStatus,
)
from shared.domain.market import VenueTerms, plain, venue_fit_problems

logger = logging.getLogger(__name__)


# An order's trades are looked for from this long before its creation time (see CcxtVenue._fills_start_ms).
FILLS_LOOKBACK_MS = 5_000
# Trades asked for per call when paging by time (``CcxtVenue._scan``), whatever page the caller asked for: one
# taker order's fills all carry the same millisecond, so a page must hold them all (Binance's largest page).
# A venue's ``trades_page`` quirk overrides it.
SCAN_PAGE = 1_000


# How long a request may wait for the shared budget before it is refused (cancels go after it regardless).
BUDGET_MAX_WAIT_MS = 1_000


class AdapterError(Exception):
    """A protocol error: carries the closed-set code and its kind."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.kind = ERROR_KIND[code]


# Per-venue differences (Freqtrade style: one generic wrapper, small overrides).
VENUE_QUIRKS: dict[str, dict[str, Any]] = {
    "binance": {
        # Binance only refuses a duplicate client id while the first order is open; it says so as -2010.
        "duplicate_messages": ("Duplicate order sent",),
        # ccxt would otherwise make signed margin and currency calls during load_markets.
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False},
        "cancel_all_needs_symbol": True,
    },
    # Prices count significant digits (the exchange's precisionMode), amounts decimal places: ccxt's own
    # amount_to_precision of these two says DECIMAL_PLACES whatever the exchange's mode.
    "bitfinex": {"amount_precision_mode": DECIMAL_PLACES},
    "bithumb": {"amount_precision_mode": DECIMAL_PLACES},
}

_DEFAULT_QUIRKS: dict[str, Any] = {"duplicate_messages": (), "options": {}, "cancel_all_needs_symbol": False,
                                   "amount_precision_mode": None, "trades_page": SCAN_PAGE}

_CCXT_STATUS = {
    "open": VenueStatus.OPEN,
    "closed": VenueStatus.FILLED,
    "canceled": VenueStatus.CANCELED,
    "canceling": VenueStatus.OPEN,
    "expired": VenueStatus.EXPIRED,
    "rejected": VenueStatus.REJECTED,
}

_CCXT_TYPE = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "limit_maker": OrderType.LIMIT,
    "stop_loss": OrderType.STOP,
    "stop_market": OrderType.STOP,
    "stop": OrderType.STOP,
    "stop_loss_limit": OrderType.STOP_LIMIT,
    "stop_limit": OrderType.STOP_LIMIT,
}


def quirks(exchange_id: str) -> dict[str, Any]:
    return {**_DEFAULT_QUIRKS, **VENUE_QUIRKS.get(exchange_id, {})}


def build_exchange(
    exchange_id: str,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    password: str | None = None,
    sandbox: bool = False,
    api_url: str | None = None,
    timeout_ms: int = 10_000,
    rate_limit_ms: int | None = None,
) -> ccxt.Exchange:
    """A ccxt exchange object, throttled at the venue's published rate (or `rate_limit_ms`; 0 turns the throttle
    off, for simulators only), optionally in sandbox mode or pointed at another base URL."""
    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"unknown ccxt exchange id {exchange_id!r}")
    config: dict[str, Any] = {
        "enableRateLimit": rate_limit_ms != 0,
        "timeout": timeout_ms,
        "options": dict(quirks(exchange_id)["options"]),
    }
    for key, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
        if value:
            config[key] = value
    if rate_limit_ms:
        config["rateLimit"] = rate_limit_ms
    exchange = getattr(ccxt, exchange_id)(config)
    if sandbox:
        exchange.set_sandbox_mode(True)
    if api_url:
        exchange.urls["api"] = _rebase(exchange.urls["api"], api_url.rstrip("/"))
    return exchange


def _rebase(urls: Any, base: str) -> Any:
    """Every URL of ccxt's api map moved to `base`, keeping its path (for a local or proxied venue)."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        target = urlsplit(base)
        parts = urlsplit(urls)
        return urlunsplit((target.scheme, target.netloc, target.path + parts.path, parts.query, parts.fragment))
    return urls


def read_numbers_exactly(exchange: ccxt.Exchange) -> ccxt.Exchange:
    """Make `exchange` give every number as the venue wrote it (see the module doc): ``number = str`` for the
    unified structures, and order-book levels whose price and amount are Decimal read from the venue's strings
    (wrapping the exchange's own level parser, so per-venue extras such as Kraken's timestamps are kept)."""
    exchange.number = str
    parse_level = exchange.parse_order_book_bid_ask
    if getattr(parse_level, "reads_exactly", False):
        return exchange

    def exact_level(bidask: Any, price_key: Any = 0, amount_key: Any = 1, count_or_id_key: Any = 2) -> list:
        level = list(parse_level(bidask, price_key, amount_key, count_or_id_key))
        level[0] = _dec(exchange.safe_string(bidask, price_key))
        level[1] = _dec(exchange.safe_string(bidask, amount_key))
        return level

    exact_level.reads_exactly = True  # type: ignore[attr-defined]
    exchange.parse_order_book_bid_ask = exact_level
    return exchange


class PlacedIds(Protocol):
    def mark(self, client_order_id: str) -> bool:
        """Record the id; True if it was not recorded before. Raises when the index is unavailable."""


class MarketsCache(Protocol):
    def get(self) -> dict | None: ...

    def put(self, markets: dict) -> None: ...


class RequestBudget(Protocol):
    """A venue's request weight shared by every adapter instance (shared/infra/cache.py: Redis)."""

    def take(self, cost: float, now_ms: int) -> int:
        """Take `cost` units: 0 when granted, else the milliseconds until they could be (nothing taken). Raises
        when the budget cannot be read."""
        ...


def _dec(value: Any) -> Decimal | None:
    """A ccxt number as a plain Decimal, exactly: the venue's string "0.00100000" is 0.001 (trailing zeros and
    exponents dropped, no digit lost, whatever the decimal context's precision). A float (an older markets cache,
    a venue that sends JSON numbers) is read by its shortest repr, the closest this side can get."""
    if value is None or value == "":
        return None
    d = Decimal(value) if isinstance(value, (str, Decimal, int)) else Decimal(str(value))
    if not d.is_finite():
        return d
    with decimal.localcontext() as context:
        context.prec = max(context.prec, len(d.as_tuple().digits))
        return Decimal(format(d.normalize(), "f"))


def _grid(precision: Any, mode: int) -> tuple[Decimal, int | None]:
    """ccxt's precision of a price or an amount as (step, significant digits), by ccxt's precision mode:
    TICK_SIZE gives the step itself, DECIMAL_PLACES a number of decimals (step 10^-n), SIGNIFICANT_DIGITS a number
    of significant digits (no fixed step: 0). Unknown precision is (0, None): no rule."""
    value = _dec(precision)
    if value is None or (value <= 0 and mode == TICK_SIZE):
        return Decimal(0), None
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value)), None
    if mode == SIGNIFICANT_DIGITS:
        return Decimal(0), int(value)
    return value, None


def _error_for(exc: Exception, *, writes: bool, duplicate_messages: tuple[str, ...] = ()) -> AdapterError:
    """ccxt's exception hierarchy onto the protocol's closed set. `writes`: the call may have changed venue state."""
    msg = str(exc)[:500]
    if isinstance(exc, ccxt.DuplicateOrderId) or any(m in msg for m in duplicate_messages):
        return AdapterError(ErrorCode.DUPLICATE, msg)
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return AdapterError(ErrorCode.RATE_LIMITED, msg)
    if isinstance(exc, ccxt.OnMaintenance):
        return AdapterError(ErrorCode.VENUE_UNAVAILABLE, msg)
    if isinstance(exc, ccxt.NetworkError):
        # A write whose answer was lost may have happened (a 5xx from Binance means "status unknown" too).
        if writes:
            return AdapterError(ErrorCode.TIMEOUT, msg)
        if isinstance(exc, ccxt.ExchangeNotAvailable):
            return AdapterError(ErrorCode.VENUE_UNAVAILABLE, msg)
        return AdapterError(ErrorCode.NETWORK, msg)
    if isinstance(exc, ccxt.InsufficientFunds):
        return AdapterError(ErrorCode.INSUFFICIENT_FUNDS, msg)
    if isinstance(exc, ccxt.OrderNotFound):
        return AdapterError(ErrorCode.UNKNOWN_ORDER, msg)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.BadSymbol)):
        return AdapterError(ErrorCode.INVALID_ORDER, msg)
    if isinstance(exc, ccxt.BadRequest):
        return AdapterError(ErrorCode.BAD_REQUEST, msg)
    if isinstance(exc, ccxt.ExchangeError):
        return AdapterError(ErrorCode.REJECTED, msg)
    return AdapterError(ErrorCode.NETWORK, f"{type(exc).__name__}: {msg}")


class CcxtVenue:
    """One venue behind the adapter protocol."""

    def __init__(
        self,
        venue: str,
        exchange: ccxt.Exchange,
        *,
        placed: PlacedIds | None = None,
        markets_cache: MarketsCache | None = None,
        budget: RequestBudget | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.venue = venue
        self.exchange = read_numbers_exactly(exchange)
        self._quirks = quirks(exchange.id)
        self._placed = placed
        self._markets_cache = markets_cache
        self._clock_ms = clock_ms
        self._markets_lock = threading.Lock()
        self._watchdog_deadline_ms: int | None = None
        self._watchdog_timeout_ms = 0
        self._budget = budget
        self._sleep = sleep
        self._risk = threading.local()  # .reducing: this thread is in a cancel (see _spend)
        if budget is not None:
            self._wrap_requests()

    # ---- the shared request budget ---------------------------------------------------------------------
    def _wrap_requests(self) -> None:
        """Every HTTP request of the exchange object takes its cost from the shared budget first."""
        exchange, send = self.exchange, self.exchange.fetch2

        def fetch2(path: str, api: Any = "public", method: str = "GET", params: dict | None = None,
                   config: dict | None = None) -> Any:
            params, config = params or {}, config or {}
            self._spend(float(exchange.calculate_rate_limiter_cost(api, method, path, params, config)))
            return send(path, api, method, params, config)

        exchange.fetch2 = fetch2

    def _spend(self, cost: float) -> None:
        assert self._budget is not None
        risk_reducing = getattr(self._risk, "reducing", False)
        waited_ms = 0  # counted, not read off the clock: the wait is bounded whatever the clock does
        while True:
            now = self._clock_ms()
            try:
                wait_ms = self._budget.take(cost, now)
            except Exception as exc:
                if risk_reducing:
                    logger.warning("request budget of %s unavailable (%s); a cancel goes anyway", self.venue, exc)
                    return
                raise AdapterError(ErrorCode.RATE_LIMITED, f"{self.venue}: the shared request budget cannot be "
                                                           f"read ({type(exc).__name__}); not sent") from exc
            if wait_ms <= 0:
                return
            if waited_ms + wait_ms > BUDGET_MAX_WAIT_MS:
                if risk_reducing:
                    logger.warning("request budget of %s spent; a cancel goes anyway", self.venue)
                    return
                raise AdapterError(ErrorCode.RATE_LIMITED, f"{self.venue}: the request budget shared by every "
                                                           f"adapter instance is spent for {wait_ms} ms; not sent")
            self._sleep(wait_ms / 1000)
            waited_ms += wait_ms

    @contextlib.contextmanager
    def _reducing_risk(self) -> Iterator[None]:
        """Requests made inside take risk off (a cancel and its reads): the budget never stops them."""
        outer = getattr(self._risk, "reducing", False)
        self._risk.reducing = True
        try:
            yield
        finally:
            self._risk.reducing = outer

    # ---- markets ---------------------------------------------------------------------------------------
    def markets(self) -> dict:
        """Markets, loaded once per process: from the cache if it has them, else from the venue."""
        if self.exchange.markets:
            return self.exchange.markets
        with self._markets_lock:
            if self.exchange.markets:
                return self.exchange.markets
            cached = self._cache_get()
            if cached:
                self.exchange.set_markets(cached)
            else:
                self._call(self.exchange.load_markets, writes=False)
                self._apply_account_fees()
                self._cache_put(self.exchange.markets)
        return self.exchange.markets

    def _apply_account_fees(self) -> None:
        """The account's own maker/taker rates where the venue tells them (else ccxt's published defaults)."""
        if not (self.exchange.has.get("fetchTradingFees") and self.exchange.apiKey):
            return
        try:
            with decimal.localcontext():  # see _call
                fees = self.exchange.fetch_trading_fees()
        except Exception as exc:
            logger.warning("trading fees unavailable on %s (%s); using published rates", self.venue, exc)
            return
        for symbol, fee in fees.items():
            market = self.exchange.markets.get(symbol)
            if market is not None and fee.get("maker") is not None and fee.get("taker") is not None:
                market["maker"], market["taker"] = fee["maker"], fee["taker"]

    def _cache_get(self) -> dict | None:
        if self._markets_cache is None:
            return None
        try:
            return self._markets_cache.get()
        except Exception:
            logger.warning("markets cache unavailable; loading from the venue")
            return None

    def _cache_put(self, markets: dict) -> None:
        if self._markets_cache is None:
            return
        try:
            self._markets_cache.put(markets)
        except Exception:
            logger.warning("markets cache unavailable; markets kept in this process only")

    def _call(self, fn: Callable[..., Any], *args: Any, writes: bool, **kwargs: Any) -> Any:
        """One ccxt call, its exceptions mapped onto the protocol's, in a decimal context of its own (ccxt's
        decimal_to_precision would otherwise change this thread's rounding and traps for good)."""
        try:
            with decimal.localcontext():
                return fn(*args, **kwargs)
        except AdapterError:
            raise
        except Exception as exc:
            raise _error_for(exc, writes=writes, duplicate_messages=self._quirks["duplicate_messages"]) from exc

    def _market(self, symbol: str) -> dict:
        market = self.markets().get(symbol)
        if market is None:
            raise AdapterError(ErrorCode.INVALID_ORDER, f"{self.venue} does not list {symbol}")
        return market

    def terms(self, market: dict) -> VenueTerms:
        """A ccxt market's trading rules, read by the exchange's precision mode (amounts by the venue's own
        mode where ccxt formats them differently: ``amount_precision_mode``)."""
        mode = self.exchange.precisionMode
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        tick, price_digits = _grid(precision.get("price"), mode)
        lot, quantity_digits = _grid(precision.get("amount"), self._quirks["amount_precision_mode"] or mode)
        amount, cost = limits.get("amount") or {}, limits.get("cost") or {}
        return VenueTerms(
            venue=self.venue, symbol=market["symbol"], tick_size=tick, lot_size=lot,
            min_quantity=_dec(amount.get("min")) or Decimal(0), min_notional=_dec(cost.get("min")),
            maker_fee=_dec(market.get("maker")) or Decimal(0), taker_fee=_dec(market.get("taker")) or Decimal(0),
            max_quantity=_dec(amount.get("max")) or None, max_notional=_dec(cost.get("max")) or None,
            price_significant_digits=price_digits, quantity_significant_digits=quantity_digits,
        )

    # ---- orders ----------------------------------------------------------------------------------------
    def place(self, req: PlaceOrder) -> PlaceResult:
        args = self._order_args(req, self._market(req.symbol))  # refuses what the venue cannot take as it is
        first = self._mark(req.client_order_id)
        if not first:
            existing = self._find(req.client_order_id, req.symbol)
            if existing is not None:
                return PlaceResult(order=existing, created=False)
        try:
            raw = self._call(self.exchange.create_order, req.symbol, *args, writes=True)
        except AdapterError as err:
            if err.code is ErrorCode.DUPLICATE:
                existing = self._find(req.client_order_id, req.symbol)
                if existing is not None:
                    return PlaceResult(order=existing, created=False)
            raise
        order = self._order(raw, req)
        # The fills in a placement's answer lack what the order already says (Binance gives them no time: the
        # order's transaction time is theirs).
        fills = [self._fill({**t, "symbol": t.get("symbol") or req.symbol, "side": t.get("side") or req.side.value,
                             "order": t.get("order") or order.venue_order_id,
                             "timestamp": t.get("timestamp") or order.updated_at_ms or order.created_at_ms})
                 for t in raw.get("trades") or [] if t.get("id") is not None]
        return PlaceResult(order=order, created=True, fills=fills)

    def _mark(self, client_order_id: str) -> bool:
        """True when this id is new to the index; False when known or when the index cannot say."""
        if self._placed is None:
            return False
        try:
            return self._placed.mark(client_order_id)
        except Exception:
            logger.warning("placed-id index unavailable; looking the order up before placing")
            return False

    def _find(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        try:
            return self.get(client_order_id=client_order_id, symbol=symbol)
        except AdapterError as err:
            if err.code is ErrorCode.UNKNOWN_ORDER:
                return None
            raise

    def _order_args(self, req: PlaceOrder, market: dict) -> tuple[str, str, str, str | None, dict]:
        """ccxt's create_order arguments for `req`, its numbers exactly as sent. AdapterError(invalid_order)
        naming the venue's rule when the venue could not take them as they are."""
        ccxt_type = "market" if req.type in (OrderType.MARKET, OrderType.STOP) else "limit"
        price = req.price if ccxt_type == "limit" else None
        stop = req.stop_price if req.type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        problems = venue_fit_problems(self.terms(market), side=req.side, quantity=req.quantity,
                                      price=price, stop_price=stop)
        if problems:
            raise AdapterError(ErrorCode.INVALID_ORDER, "; ".join(f"{f}: {p}" for f, p in problems))
        params: dict[str, Any] = {"clientOrderId": req.client_order_id}
        if stop is not None:
            params["stopPrice"] = self._unchanged("stop_price", stop, self.exchange.price_to_precision, req.symbol)
        if ccxt_type == "limit" and not req.post_only:
            params["timeInForce"] = req.time_in_force.value
        if req.post_only:
            params["postOnly"] = True
        if req.reduce_only:
            params["reduceOnly"] = True
        amount = self._unchanged("quantity", req.quantity, self.exchange.amount_to_precision, req.symbol)
        price_text = None if price is None else self._unchanged("price", price, self.exchange.price_to_precision,
                                                                req.symbol)
        return ccxt_type, req.side.value, amount, price_text, params

    def _unchanged(self, name: str, value: Decimal, to_precision: Callable[[str, str], str], symbol: str) -> str:
        """`value` as ccxt formats it for the venue; refused (invalid_order) if formatting would change it: a
        price or quantity is the service's to fit (ccxt rounds prices to the nearest tick, either way)."""
        try:
            with decimal.localcontext():  # see _call
                text = to_precision(symbol, plain(value))
        except ccxt.BaseError as exc:  # InvalidOrder: below the precision (raised before any request)
            raise _error_for(exc, writes=False) from exc
        except Exception as exc:  # nothing was sent, and trying again would fail the same way
            raise AdapterError(ErrorCode.INVALID_ORDER, f"{name}: {plain(value)} cannot be formatted for "
                                                        f"{self.venue}: {type(exc).__name__}: {exc}") from exc
        if Decimal(text) != value:
            raise AdapterError(ErrorCode.INVALID_ORDER,
                               f"{name}: {plain(value)} does not fit {self.venue}'s precision for {symbol} (it would "
                               f"go out as {text}); the adapter does not round")
        return text

    def _id_params(self, client_order_id: str | None, venue_order_id: str | None, symbol: str) -> dict[str, str]:
        """ccxt's params for addressing one order by client or venue id (a 400 when neither is given)."""
        if not client_order_id and not venue_order_id:
            raise AdapterError(ErrorCode.BAD_REQUEST, "client_order_id or venue_order_id is required")
        self._market(symbol)
        return {"clientOrderId": client_order_id} if client_order_id else {}

    def get(self, *, client_order_id: str | None = None, venue_order_id: str | None = None,
            symbol: str) -> VenueOrder:
        params = self._id_params(client_order_id, venue_order_id, symbol)
        raw = self._call(self.exchange.fetch_order, venue_order_id, symbol, params, writes=False)
        return self._order(raw)

    def cancel(self, *, client_order_id: str | None = None, venue_order_id: str | None = None,
               symbol: str) -> VenueOrder:
        """Idempotent: cancelling an order that is already terminal returns it as it is."""
        with self._reducing_risk():
            return self._cancel(client_order_id=client_order_id, venue_order_id=venue_order_id, symbol=symbol)

    def _cancel(self, *, client_order_id: str | None = None, venue_order_id: str | None = None,
               symbol: str) -> VenueOrder:
        """Idempotent: cancelling an order that is already terminal returns it as it is."""
        params = self._id_params(client_order_id, venue_order_id, symbol)
        try:
            raw = self._call(self.exchange.cancel_order, venue_order_id, symbol, params, writes=True)
        except AdapterError as err:
            if err.code not in (ErrorCode.UNKNOWN_ORDER, ErrorCode.REJECTED):
                raise
            # Unknown to cancel: either it never existed (the lookup raises unknown_order) or it is done already.
            current = self.get(client_order_id=client_order_id, venue_order_id=venue_order_id, symbol=symbol)
            if current.status is VenueStatus.OPEN:
                raise
            return current
        order = self._order(raw)
        if order.status is VenueStatus.OPEN:
            # Some venues answer a cancel with only an acknowledgement: read the order back.
            return self.get(client_order_id=client_order_id, venue_order_id=order.venue_order_id, symbol=symbol)
        return order

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        if symbol:
            self._market(symbol)
        else:
            self.markets()
        self.exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        raws = self._call(self.exchange.fetch_open_orders, symbol, writes=False)
        return [self._order(r) for r in raws]

    def fills(self, symbol: str, since: str | None = None, limit: int = 500,
              venue_order_id: str | None = None) -> FillsPage:
        """Fills after the cursor (a venue trade id), oldest first; only one order's when venue_order_id is given."""
        self._market(symbol)
        if venue_order_id:
            return self._order_fills(symbol, venue_order_id, since, limit)
        params: dict[str, Any] = {}
        if since:
            params["fromId"] = int(since) + 1 if since.isdigit() else since
        raws = self._call(self.exchange.fetch_my_trades, symbol, None, limit, params, writes=False)
        fills = [self._fill(t) for t in raws]
        if since and since.isdigit():
            fills = [f for f in fills if not f.trade_id.isdigit() or int(f.trade_id) > int(since)]
        cursor = fills[-1].trade_id if fills else since
        return FillsPage(fills=fills, cursor=cursor)

    def _order_fills(self, symbol: str, venue_order_id: str, since: str | None, limit: int) -> FillsPage:
        """One venue order's fills after the cursor (the last trade id returned before), oldest first, at most
        `limit`; the cursor is the last one returned. Every fill is found, however many the order or the account
        has:
        - with ccxt's fetchOrderTrades: one call; a full page may not be all, so the order's trades are then paged
          by time from its creation (``_scan``);
        - without it: the account's trades of the symbol are paged by time from the order's creation to the end
          and the order's are kept (ccxt's fetchMyTrades with no `since` gives only the newest page).
        A cursor past `limit` fills scans again from the order's creation: costly only for orders with more fills
        than one page."""
        if self.exchange.has.get("fetchOrderTrades"):
            raws = self._call(self.exchange.fetch_order_trades, venue_order_id, symbol, None, limit, writes=False)
            if len(raws) >= limit:
                raws = self._scan(lambda since_ms, page: self.exchange.fetch_order_trades(
                    venue_order_id, symbol, since_ms, page), self._fills_start_ms(symbol, venue_order_id))
        else:
            raws = [t for t in self._scan(lambda since_ms, page: self.exchange.fetch_my_trades(symbol, since_ms, page),
                                          self._fills_start_ms(symbol, venue_order_id))
                    if str(t.get("order")) == venue_order_id]
        fills = [self._fill(t) for t in raws]
        ids = [f.trade_id for f in fills]
        if since in ids:  # a cursor the scan does not find returns them all: the caller keeps each trade id once
            fills = fills[ids.index(since) + 1:]
        page = fills[:limit]
        return FillsPage(fills=page, cursor=page[-1].trade_id if page else since)

    def _fills_start_ms(self, symbol: str, venue_order_id: str) -> int:
        """Where an order's trades can begin: its creation at the venue, less FILLS_LOOKBACK_MS (an order's time and
        its trades' times may come from different clocks; Freqtrade looks back 5 s too). An order the venue gives
        no time for is scanned from the epoch: slow, but nothing is missed."""
        created = self.get(venue_order_id=venue_order_id, symbol=symbol).created_at_ms
        if created is None:
            logger.warning("%s gives no creation time for order %s: scanning its trades from the epoch",
                           self.venue, venue_order_id)
            return 0
        return max(0, int(created) - FILLS_LOOKBACK_MS)

    def _scan(self, fetch: Callable[[int, int], list[dict]], start_ms: int) -> list[dict]:
        """Every trade `fetch(since_ms, limit)` gives from `start_ms` on, oldest first, paged forward by time to the
        end: a page that brings nothing new. Pages are of the venue's ``trades_page`` (SCAN_PAGE), not of what the
        caller asked for. The next page starts at the last trade's millisecond, not after it,
        and trades already seen are dropped by id (ccxt's own ``paginate`` moves on to last + 1 ms, losing the
        trades of that millisecond that the page boundary cut, and stops silently after ``paginationCalls``, 10 by
        default). The one bound of paging by time: a full page within one millisecond cannot be paged past; that is
        an error naming it, never a silent cut. (A venue that gives fewer trades per call than asked for is
        paged all the same; one that does so within a single millisecond cannot be told apart from the end.)"""
        found: dict[str, dict] = {}
        since, page = start_ms, self._quirks["trades_page"]
        while True:
            raws = self._call(fetch, since, page, writes=False)
            stamps = [t["timestamp"] for t in raws if t.get("timestamp") is not None]
            if len(stamps) < len(raws):
                raise AdapterError(ErrorCode.REJECTED, f"{self.venue} gives trades without a time: they cannot be "
                                                       f"paged by time")
            if len(raws) >= page and max(stamps) <= since:
                raise AdapterError(ErrorCode.REJECTED,
                                   f"{self.venue} has a full page of {page} trades of the account at {since} ms: the "
                                   f"rest of that millisecond cannot be paged by time (raise its trades_page quirk)")
            new = [t for t in raws if str(t["id"]) not in found]
            if not new:
                break
            found.update((str(t["id"]), t) for t in new)
            since = max(since, max(stamps))
        return sorted(found.values(), key=lambda t: t["timestamp"])

    def book(self, symbol: str, depth: int = 20) -> OrderBook:
        self._market(symbol)
        raw = self._call(self.exchange.fetch_order_book, symbol, depth, writes=False)
        return OrderBook(
            venue=self.venue,
            symbol=symbol,
            bids=[BookLevel(price=_dec(p), quantity=_dec(q)) for p, q, *_ in raw["bids"][:depth]],
            asks=[BookLevel(price=_dec(p), quantity=_dec(q)) for p, q, *_ in raw["asks"][:depth]],
            timestamp_ms=raw.get("timestamp") or self._clock_ms(),
        )

    def trades(self, symbol: str, since_ms: int, until_ms: int | None = None, limit: int = 1000) -> PublicTrades:
        """The public tape from `since_ms` (inclusive) to `until_ms` (inclusive), oldest first, at most `limit`
        trades (``complete`` False when more may follow: ask again from the last trade's time)."""
        self._market(symbol)
        params = {"until": until_ms} if until_ms is not None else {}
        raws = self._call(self.exchange.fetch_trades, symbol, since_ms, limit, params, writes=False)
        trades = [PublicTrade(trade_id=str(t["id"]), timestamp_ms=int(t["timestamp"]), price=_dec(t["price"]),
                              quantity=_dec(t["amount"]), side=t.get("side"))
                  for t in raws if t.get("timestamp") is not None and t["timestamp"] >= since_ms
                  and (until_ms is None or t["timestamp"] <= until_ms)]
        return PublicTrades(venue=self.venue, symbol=symbol, trades=trades, complete=len(raws) < limit)

    def candles(self, symbol: str, since_ms: int, timeframe: str = "1m", limit: int = 500) -> Candles:
        """OHLCV candles from `since_ms`, oldest first."""
        self._market(symbol)
        if timeframe not in (self.exchange.timeframes or {}):
            raise AdapterError(ErrorCode.BAD_REQUEST, f"timeframe: {self.venue} offers "
                                                      f"{', '.join(self.exchange.timeframes or {}) or 'none'}")
        raws = self._call(self.exchange.fetch_ohlcv, symbol, timeframe, since_ms, limit, writes=False)
        return Candles(venue=self.venue, symbol=symbol, timeframe=timeframe, candles=[
            Candle(open_ms=int(ts), open=_dec(o), high=_dec(h), low=_dec(lo), close=_dec(c), volume=_dec(v))
            for ts, o, h, lo, c, v, *_ in raws if ts >= since_ms])

    def info(self) -> VenueInfo:
        symbols = []
        for symbol, m in sorted(self.markets().items()):
            if not m.get("spot", True):
                continue
            t = self.terms(m)
            symbols.append(SymbolInfo(
                symbol=symbol, base=m["base"], quote=m["quote"], tick_size=t.tick_size, lot_size=t.lot_size,
                min_quantity=t.min_quantity, min_notional=t.min_notional, maker_fee=t.maker_fee,
                taker_fee=t.taker_fee, active=bool(m.get("active", True)), max_quantity=t.max_quantity,
                max_notional=t.max_notional, price_significant_digits=t.price_significant_digits,
                quantity_significant_digits=t.quantity_significant_digits,
            ))
        return VenueInfo(
            venue=self.venue,
            exchange_id=self.exchange.id,
            symbols=symbols,
            rate_limit=RateLimit(requests_per_second=Decimal(1000) / Decimal(str(self.exchange.rateLimit or 1000))),
            cancel_all_after="native" if self.native_cancel_after else "watchdog",
        )

    def cancel_all(self, symbol: str | None = None) -> CancelAllResult:
        """Cancel every open order (of one symbol, or everywhere); returns them as they ended."""
        with self._reducing_risk():
            return self._cancel_all(symbol)

    def _cancel_all(self, symbol: str | None = None) -> CancelAllResult:
        """Cancel every open order (of one symbol, or everywhere); returns them as they ended."""
        before = self.open_orders(symbol)
        if symbol is None and not self._quirks["cancel_all_needs_symbol"]:
            batches = [None]
        else:
            batches = [symbol] if symbol else sorted({o.symbol for o in before})
        answered: dict[str, VenueOrder] = {}
        for sym in batches:
            raws = self._call(self.exchange.cancel_all_orders, sym, writes=True)
            for raw in raws if isinstance(raws, list) else []:
                if isinstance(raw, dict) and raw.get("id") is not None:
                    order = self._order(raw)
                    answered[order.venue_order_id] = order
        # Venues that answer without the orders: read back what was open.
        canceled = [answered.get(o.venue_order_id) or self.get(venue_order_id=o.venue_order_id, symbol=o.symbol)
                    for o in before]
        return CancelAllResult(canceled=canceled)

    # ---- dead man's switch -----------------------------------------------------------------------------
    @property
    def native_cancel_after(self) -> bool:
        return bool(self.exchange.has.get("cancelAllOrdersAfter"))

    def cancel_all_after(self, timeout_ms: int) -> DeadMansSwitch:
        """Arm (or refresh) the switch for timeout_ms; 0 disarms. Native where the venue has it, else a watchdog."""
        with self._reducing_risk():
            return self._cancel_all_after(timeout_ms)

    def _cancel_all_after(self, timeout_ms: int) -> DeadMansSwitch:
        """Arm (or refresh) the switch for timeout_ms; 0 disarms. Native where the venue has it, else a watchdog."""
        if self.native_cancel_after:
            self._call(self.exchange.cancel_all_orders_after, timeout_ms, writes=True)
            mode = "native"
        else:
            mode = "watchdog"
        self._watchdog_timeout_ms = timeout_ms
        self._watchdog_deadline_ms = self._clock_ms() + timeout_ms if timeout_ms else None
        return self.switch_state(mode)

    def switch_state(self, mode: str | None = None) -> DeadMansSwitch:
        return DeadMansSwitch(
            armed=self._watchdog_deadline_ms is not None,
            mode=mode or ("native" if self.native_cancel_after else "watchdog"),
            timeout_ms=self._watchdog_timeout_ms,
            deadline_ms=self._watchdog_deadline_ms,
        )

    def watchdog_tick(self) -> CancelAllResult | None:
        """For venues without a native switch: cancel everything once the deadline passes, then disarm."""
        deadline = self._watchdog_deadline_ms
        if self.native_cancel_after or deadline is None or self._clock_ms() < deadline:
            return None
        logger.warning("dead man's switch fired on %s: no refresh for %d ms", self.venue, self._watchdog_timeout_ms)
        result = self.cancel_all()
        self._watchdog_deadline_ms = None
        return result

    def restore_switch(self, state: DeadMansSwitch) -> None:
        """Take over a switch armed by another instance (its state comes from shared storage)."""
        self._watchdog_timeout_ms = state.timeout_ms
        self._watchdog_deadline_ms = state.deadline_ms if state.armed else None

    def health(self) -> AdapterHealth:
        start = time.perf_counter()
        try:
            self._call(self.exchange.fetch_time, writes=False) if self.exchange.has.get("fetchTime") else None
            self.markets()
        except AdapterError as err:
            return AdapterHealth(status="unavailable", venue=self.venue, exchange_id=self.exchange.id,
                                 markets_loaded=bool(self.exchange.markets), error=f"{err.code}: {err}")
        return AdapterHealth(status="ok", venue=self.venue, exchange_id=self.exchange.id, markets_loaded=True,
                             venue_latency_ms=round((time.perf_counter() - start) * 1000, 2))

    # ---- conversions -----------------------------------------------------------------------------------
    def _order(self, raw: dict, req: PlaceOrder | None = None) -> VenueOrder:
        amount = _dec(raw.get("amount")) if raw.get("amount") is not None else (req.quantity if req else Decimal(0))
        filled = _dec(raw.get("filled")) or Decimal(0)
        remaining = _dec(raw.get("remaining"))
        status = _CCXT_STATUS.get(raw.get("status") or "open", VenueStatus.OPEN)
        if remaining is None or status in (VenueStatus.CANCELED, VenueStatus.EXPIRED, VenueStatus.REJECTED):
            remaining = amount - filled if status is VenueStatus.OPEN else Decimal(0)
        raw_type = (raw.get("type") or (req.type.value if req else "limit")).lower()
        order_type = _CCXT_TYPE.get(raw_type, req.type if req else OrderType.LIMIT)
        tif = raw.get("timeInForce")
        return VenueOrder(
            venue=self.venue,
            client_order_id=raw.get("clientOrderId") or (req.client_order_id if req else ""),
            venue_order_id=str(raw.get("id")),
            symbol=raw.get("symbol") or (req.symbol if req else ""),
            side=Side(raw.get("side") or (req.side.value if req else "buy")),
            type=order_type,
            status=status,
            quantity=amount,
            filled_quantity=filled,
            remaining_quantity=remaining,
            price=_dec(raw.get("price")) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
            stop_price=_dec(raw.get("triggerPrice") or raw.get("stopPrice")),
            average_price=_dec(raw.get("average")) if filled else None,
            time_in_force=TimeInForce(tif) if tif in TimeInForce.__members__ else None,
            post_only=bool(raw.get("postOnly")),
            created_at_ms=raw.get("timestamp"),
            updated_at_ms=raw.get("lastUpdateTimestamp") or raw.get("lastTradeTimestamp") or raw.get("timestamp"),
        )

    def _fill(self, t: dict) -> Fill:
        fee = t.get("fee") or {}
        return Fill(
            trade_id=str(t["id"]),
            venue_order_id=str(t.get("order")),
            client_order_id=(t.get("info") or {}).get("clientOrderId"),
            symbol=t["symbol"],
            side=Side(t["side"]),
            price=_dec(t["price"]),
            quantity=_dec(t["amount"]),
            fee=_dec(fee.get("cost")) or Decimal(0),
            fee_currency=fee.get("currency"),
            liquidity=t.get("takerOrMaker"),
            timestamp_ms=int(t.get("timestamp") or self._clock_ms()),  # when the venue gives none: when we learnt it
        )
