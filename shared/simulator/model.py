"""The simulated exchange's vocabulary: Binance's enums, configuration, read-only views and the error type.

Everything here speaks ``Decimal`` and Binance's names, so an HTTP layer can serialise a view field by field
(views are ``NamedTuple``s: immutable, cheap to build, ``_asdict()``) and turn an ``ExchangeError`` into
Binance's ``{"code": ..., "msg": ...}`` body. Configuration objects are frozen dataclasses.

These enums are Binance's wire vocabulary (``BUY``, ``STOP_LOSS_LIMIT``, ...), not the service's: the simulator
stands in for a venue the service does not own, so it models that venue's rules rather than sharing ours (a change
to ours must not quietly change the venue the tests trust). The one mapping between the two vocabularies is
ccxt's, inside the adapter. Likewise the client-id rule in ``engine`` is Binance's own, which admits every id the
service's rule (``shared.domain.orders.CLIENT_ORDER_ID_PATTERN``) does; a unit test keeps that so.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    """Binance's order statuses. REJECTED is never stored: a rejected request raises ``ExchangeError``."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


class ExchangeError(Exception):
    """A request the exchange refuses, with Binance's error ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def to_json(self) -> dict[str, int | str]:
        return {"code": self.code, "msg": self.msg}


@dataclass(frozen=True)
class SymbolConfig:
    """A trading pair and its filters (Binance's PRICE_FILTER, LOT_SIZE and NOTIONAL)."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_price: Decimal = Decimal("1000000")
    max_qty: Decimal = Decimal("9000")


@dataclass(frozen=True)
class Fees:
    """Commission rates, charged on every fill in the asset the account receives."""

    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")


class Balance(NamedTuple):
    free: Decimal
    locked: Decimal


class OrderView(NamedTuple):
    """An order as Binance reports it (``price``/``stop_price`` are 0 when not applicable)."""

    symbol: str
    order_id: int
    client_order_id: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cummulative_quote_qty: Decimal
    status: OrderStatus
    time_in_force: TimeInForce
    type: OrderType
    side: Side
    stop_price: Decimal
    orig_quote_order_qty: Decimal
    time: int
    update_time: int
    working_time: int | None
    is_working: bool


class AccountTrade(NamedTuple):
    """One fill of one account's order (Binance's ``myTrades`` row; also a ``fills`` entry of a new order)."""

    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


class PublicTrade(NamedTuple):
    """A trade as the public ``trades`` endpoint shows it."""

    id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    time: int
    is_buyer_maker: bool


class Depth(NamedTuple):
    """Aggregated book levels, best first; ``last_update_id`` increases with every change to the book."""

    last_update_id: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


class Placement(NamedTuple):
    """The answer to a new order: the order as it stands after its own matching, and its fills as taker."""

    order: OrderView
    fills: list[AccountTrade]
