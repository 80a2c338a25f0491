"""The exchange-adapter protocol: the JSON-over-HTTP contract between the execution service and each venue adapter.

These pydantic models are the single definition of the wire format; ``docs/adapter-openapi.json`` is generated
from them (``python -m shared.adapters.openapi``) and a test keeps it in step. Prices and quantities are Decimal
and travel as JSON strings, so no precision is lost on the way.

Errors fall into a closed set of kinds a caller can act on:
- ``retryable``: the request did not take effect (network, rate limited, venue unavailable): retry with backoff;
- ``final``: the venue refused (insufficient funds, invalid order, unknown order, duplicate, bad request, rejected):
  do not retry;
- ``unknown_outcome``: the request may or may not have taken effect (timeout after sending): look the order up by
  its client order id before doing anything else.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# One definition of each: the wire uses the domain's enums and rules (importers of this module get them here).
from shared.domain.orders import CLIENT_ORDER_ID_PATTERN, SYMBOL_PATTERN, VENUE_TIME_IN_FORCE  # noqa: F401
from shared.domain.orders import OrderType, Side  # noqa: F401

ClientOrderId = Annotated[str, StringConstraints(pattern=CLIENT_ORDER_ID_PATTERN)]
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]

# Side and OrderType are the domain's (same spelling on the wire). The wire's TimeInForce is the part of the
# domain's that venues execute, spelled the same; GTD and DAY never reach an adapter.
TimeInForce = StrEnum("TimeInForce", [(tif.name, tif.value) for tif in VENUE_TIME_IN_FORCE],
                      module=__name__)
TimeInForce.__doc__ = ("What venues execute. GTD and DAY are the service's: it sends them as GTC and expires them "
                       "itself.")


class VenueStatus(StrEnum):
    OPEN = "open"  # working at the venue (possibly partially filled, or a stop waiting for its trigger)
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"  # IOC/FOK remainder, or the venue expired it
    REJECTED = "rejected"


TERMINAL = frozenset({VenueStatus.FILLED, VenueStatus.CANCELED, VenueStatus.EXPIRED, VenueStatus.REJECTED})


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"
    FINAL = "final"
    UNKNOWN_OUTCOME = "unknown_outcome"


class ErrorCode(StrEnum):
    NETWORK = "network"
    RATE_LIMITED = "rate_limited"
    VENUE_UNAVAILABLE = "venue_unavailable"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INVALID_ORDER = "invalid_order"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE = "duplicate"
    BAD_REQUEST = "bad_request"
    REJECTED = "rejected"  # any other refusal by the venue (permissions, authentication, ...)
    TIMEOUT = "timeout"


ERROR_KIND: dict[ErrorCode, ErrorKind] = {
    ErrorCode.NETWORK: ErrorKind.RETRYABLE,
    ErrorCode.RATE_LIMITED: ErrorKind.RETRYABLE,
    ErrorCode.VENUE_UNAVAILABLE: ErrorKind.RETRYABLE,
    ErrorCode.INSUFFICIENT_FUNDS: ErrorKind.FINAL,
    ErrorCode.INVALID_ORDER: ErrorKind.FINAL,
    ErrorCode.UNKNOWN_ORDER: ErrorKind.FINAL,
    ErrorCode.DUPLICATE: ErrorKind.FINAL,
    ErrorCode.BAD_REQUEST: ErrorKind.FINAL,
    ErrorCode.REJECTED: ErrorKind.FINAL,
    ErrorCode.TIMEOUT: ErrorKind.UNKNOWN_OUTCOME,
}

# The HTTP status an adapter answers each error with.
ERROR_STATUS: dict[ErrorCode, int] = {
    ErrorCode.NETWORK: 502,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.VENUE_UNAVAILABLE: 503,
    ErrorCode.INSUFFICIENT_FUNDS: 422,
    ErrorCode.INVALID_ORDER: 422,
    ErrorCode.UNKNOWN_ORDER: 404,
    ErrorCode.DUPLICATE: 409,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.REJECTED: 422,
    ErrorCode.TIMEOUT: 504,
}


class VenueCallError(Exception):
    """What a caller of an adapter sees when a call fails: the protocol's code and kind."""

    def __init__(self, venue: str, code: ErrorCode, message: str, status: int | None = None) -> None:
        super().__init__(f"{venue}: {code.value}: {message}" if venue else f"{code.value}: {message}")
        self.venue = venue
        self.code = code
        self.kind: ErrorKind = ERROR_KIND[code]
        self.status = status
        self.detail = message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class VenueError(_Model):
    kind: ErrorKind
    code: ErrorCode
    message: str
    retry_after_ms: int | None = None


class ErrorResponse(_Model):
    error: VenueError


class PlaceOrder(_Model):
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    type: OrderType
    quantity: Positive
    price: Positive | None = None
    stop_price: Positive | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False


class VenueOrder(_Model):
    venue: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: VenueStatus
    quantity: Decimal
    filled_quantity: Decimal
    remaining_quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    average_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    post_only: bool = False
    created_at_ms: int | None = None
    updated_at_ms: int | None = None
    # "venue_switch": the venue's own cancel-all-after (the dead man's switch; account-wide) cancelled it.
    canceled_by: Literal["venue_switch"] | None = None


class Fill(_Model):
    trade_id: str
    venue_order_id: str
    client_order_id: str | None = None
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_currency: str | None = None
    liquidity: Literal["maker", "taker"] | None = None
    timestamp_ms: int


class PlaceResult(_Model):
    order: VenueOrder
    created: bool = Field(description="False when an order with this client_order_id already existed")
    fills: list[Fill] = Field(default_factory=list, description="Fills the venue reported with its answer")


class FillsPage(_Model):
    fills: list[Fill]
    cursor: str | None = Field(description="Pass back as `since` to get only newer fills")


class OpenOrders(_Model):
    orders: list[VenueOrder]


class BookLevel(_Model):
    price: Decimal
    quantity: Decimal


class OrderBook(_Model):
    venue: str
    symbol: str
    bids: list[BookLevel]
    asks: list[BookLevel]
    timestamp_ms: int | None = None


class PublicTrade(_Model):
    """One trade on the venue's public tape (anyone's, not only ours)."""

    trade_id: str
    timestamp_ms: int
    price: Decimal
    quantity: Decimal
    side: Side | None = Field(default=None, description="The taker's side, when the venue says")


class PublicTrades(_Model):
    venue: str
    symbol: str
    trades: list[PublicTrade] = Field(description="Oldest first")
    complete: bool = Field(description="False when `limit` cut the answer short: ask again from the last trade")


class Candle(_Model):
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class Candles(_Model):
    venue: str
    symbol: str
    timeframe: str
    candles: list[Candle] = Field(description="Oldest first")


class SymbolInfo(_Model):
    """One symbol's trading rules at the venue: what an order must fit to be taken as it is."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal = Field(description="Prices are multiples of it (0: no fixed grid, see "
                                           "price_significant_digits)")
    lot_size: Decimal = Field(description="Quantities are multiples of it (0: no fixed grid)")
    min_quantity: Decimal
    min_notional: Decimal | None
    maker_fee: Decimal
    taker_fee: Decimal
    active: bool
    max_quantity: Decimal | None = None
    max_notional: Decimal | None = Field(default=None, description="The largest price x quantity, where the "
                                                                   "venue says")
    price_significant_digits: int | None = Field(
        default=None, description="Venues that count significant digits in a price (ccxt's SIGNIFICANT_DIGITS "
                                  "precision mode): at most this many; tick_size is 0 there")
    quantity_significant_digits: int | None = None


class RateLimit(_Model):
    requests_per_second: Decimal
    orders_per_10s: int | None = None


class VenueInfo(_Model):
    venue: str
    exchange_id: str
    symbols: list[SymbolInfo]
    rate_limit: RateLimit
    cancel_all_after: Literal["native", "watchdog"]


class CancelAll(_Model):
    symbol: Symbol | None = None


class CancelAllResult(_Model):
    canceled: list[VenueOrder]


class CancelAllAfter(_Model):
    timeout_ms: Annotated[int, Field(ge=0, le=86_400_000, description="0 disarms")]


class DeadMansSwitch(_Model):
    armed: bool
    mode: Literal["native", "watchdog"]
    timeout_ms: int
    deadline_ms: int | None = None


class AdapterHealth(_Model):
    status: Literal["ok", "unavailable"]
    venue: str
    exchange_id: str
    markets_loaded: bool
    venue_latency_ms: float | None = None
    error: str | None = None
