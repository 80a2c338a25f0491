"""The service's public message shapes, as pydantic models: the REST bodies, the Pub/Sub signal, the answers.

The REST API validates with them and the OpenAPI document is generated from them, so the two cannot drift.
``to_order`` turns a request into a domain ``Order``; the domain's ``validate`` then checks the rules that span
fields (a limit order needs a price, ...). The signal is the seed's input message, accepted exactly as written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared.app import fields
from shared.domain.orders import (
    CLIENT_ORDER_ID_PATTERN,
    SMART,
    SYMBOL_PATTERN,
    Order,
    OrderType,
    Side,
    Status,
    TimeInForce,
    client_order_id_for_signal,
    order_id_for,
    venue_client_id_for,
)

Number = fields.Amount  # an ASCII decimal literal within bounds (shared/app/fields.py); sign: the domain's rule
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
                 AfterValidator(fields.check_text)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _OrderFields(_In):
    """The fields an order is made of; the REST body and the signal share them (one set of rules)."""

    strategy_id: fields.StrategyId
    exchange: fields.VenueName = Field(default=SMART, description="a venue, or smart (the default): the SmartRouter")
    symbol: Text
    side: Side
    quantity: Number
    order_type: OrderType = OrderType.LIMIT
    price: Number | None = None
    stop_price: Number | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    expire_at: Annotated[fields.EpochMs, Field(description="GTD expiry, epoch milliseconds")] | None = None
    max_slippage_bps: Number | None = None
    tags: fields.Tags = Field(default_factory=dict)
    algorithm: fields.Key | None = Field(
        default=None, description="direct, twap, vwap, iceberg, pov or smart (implied by exchange smart)")
    algorithm_params: fields.AlgorithmParams = Field(default_factory=dict)

    def _order(self, client_order_id: str, signal_id: str | None, now_ms: int) -> Order:
        return Order(
            order_id=order_id_for(self.strategy_id, client_order_id), client_order_id=client_order_id,
            venue_client_order_id=venue_client_id_for(self.strategy_id, client_order_id), signal_id=signal_id,
            strategy_id=self.strategy_id, exchange=self.exchange, symbol=self.symbol, side=self.side,
            quantity=self.quantity, order_type=self.order_type, price=self.price, stop_price=self.stop_price,
            time_in_force=self.time_in_force, post_only=self.post_only, reduce_only=self.reduce_only,
            expire_at=self.expire_at, max_slippage_bps=self.max_slippage_bps, tags=dict(self.tags),
            created_at=now_ms, updated_at=now_ms,
            algorithm=self.algorithm or (SMART if self.exchange == SMART else None),
            algorithm_params=dict(self.algorithm_params),
        )


class OrderRequest(_OrderFields):
    """POST /api/v1/orders. Send client_order_id to make retries safe: the same id returns the same order."""

    client_order_id: Annotated[str, StringConstraints(pattern=CLIENT_ORDER_ID_PATTERN)] | None = None
    signal_id: fields.SignalId | None = None

    def to_order(self, now_ms: int, generated_id: str) -> Order:
        client_order_id = self.client_order_id or (
            client_order_id_for_signal(self.strategy_id, self.signal_id) if self.signal_id else generated_id)
        return self._order(client_order_id, self.signal_id, now_ms)


class Signal(_OrderFields):
    """A risk-approved trading signal on the signals topic: the seed's input message (extra fields refused).
    Its client order id derives from (strategy_id, signal_id): a redelivered signal finds its order."""

    signal_id: fields.SignalId

    def to_order(self, now_ms: int) -> Order:
        return self._order(client_order_id_for_signal(self.strategy_id, self.signal_id), self.signal_id, now_ms)


class ModifyRequest(_In):
    """PUT /api/v1/orders/{id}: new terms for a working order (quantity is the new total, above what filled)."""

    price: Number | None = None
    quantity: Number | None = None
    stop_price: Number | None = None


class FillView(BaseModel):
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    timestamp: int
    liquidity: str | None


class OrderView(BaseModel):
    order_id: str
    client_order_id: str
    signal_id: str | None
    strategy_id: str
    exchange: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    expire_at: int | None
    max_slippage_bps: Decimal | None
    tags: dict[str, str]
    status: Status
    filled_quantity: Decimal
    remaining_quantity: Decimal
    average_price: Decimal | None
    commission: Decimal = Field(description="in the quote currency: quote-currency fees plus base-currency fees "
                                            "at their fill's price; other currencies only in commissions")
    commissions: dict[str, Decimal] = Field(description="fees per currency, as the venue charged them")
    overfill: Decimal = Field(description="filled beyond the quantity (kept, flagged for attention)")
    venue_order_id: str | None
    venue_client_order_id: str | None
    reason: str | None
    attention: str | None
    version: int
    sequence: int
    created_at: int
    updated_at: int
    submitted_at: int | None
    acknowledged_at: int | None
    first_fill_at: int | None
    terminal_at: int | None
    algorithm: str | None
    algorithm_params: dict[str, Any]
    parent_id: str | None
    slices_done: int
    next_slice_at: int | None
    paused: bool
    arrival_mid: Decimal | None
    notes: list[str]
    fills: list[FillView]
    progress: dict[str, Any] | None = None  # parents: filled %, slices, next slice time, children

    @classmethod
    def of(cls, o: Order) -> OrderView:
        return cls(
            order_id=o.order_id, client_order_id=o.client_order_id, signal_id=o.signal_id, strategy_id=o.strategy_id,
            exchange=o.exchange, symbol=o.symbol, side=o.side, order_type=o.order_type, quantity=o.quantity,
            price=o.price, stop_price=o.stop_price, time_in_force=o.time_in_force, post_only=o.post_only,
            reduce_only=o.reduce_only, expire_at=o.expire_at, max_slippage_bps=o.max_slippage_bps, tags=o.tags,
            status=o.status, filled_quantity=o.filled_quantity, remaining_quantity=o.remaining_quantity,
            average_price=o.average_price, commission=o.commission, commissions=o.commissions,
            overfill=o.overfill, venue_order_id=o.venue_order_id, venue_client_order_id=o.venue_id,
            reason=o.reason, attention=o.attention, version=o.version, sequence=o.sequence,
            created_at=o.created_at, updated_at=o.updated_at, submitted_at=o.submitted_at,
            acknowledged_at=o.acknowledged_at, first_fill_at=o.first_fill_at, terminal_at=o.terminal_at,
            algorithm=o.algorithm, algorithm_params=o.algorithm_params, parent_id=o.parent_id,
            slices_done=o.slices_done, next_slice_at=o.next_slice_at, paused=o.paused, arrival_mid=o.arrival_mid,
            notes=list(o.notes),
            fills=[FillView(trade_id=f.trade_id, quantity=f.quantity, price=f.price, fee=f.fee,
                            fee_currency=f.fee_currency, timestamp=f.timestamp_ms, liquidity=f.liquidity)
                   for f in o.fills],
        )


class OrderList(BaseModel):
    orders: list[OrderView]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    field: str
    issue: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    error: ErrorBody


class Heartbeat(_In):
    """POST /api/v1/heartbeat and the heartbeats topic: re-arm a strategy's dead man's switch (no strategy_id:
    the global switch)."""

    strategy_id: fields.StrategyId | None = None
    timeout_ms: fields.bounded_int(1_000, 3_600_000) = 30_000
    # When the strategy sent it (epoch ms). Optional: over HTTP a heartbeat without it counts as sent on arrival;
    # on the topic, the older of this and Pub/Sub's publish time counts (a republished message keeps its age).
    sent_at_ms: fields.bounded_int(0, 2**53) | None = None


class ExecuteRequest(_In):
    """POST /api/v1/execute: place an order and wait for it to settle."""

    order: OrderRequest
    wait_s: fields.Seconds(30) = 5.0
    until: Literal["terminal", "working"] = "working"


class OptimizeRequest(_In):
    """POST /api/v1/routes/optimize: a dry run of the SmartRouter."""

    side: Side
    symbol: Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)]
    quantity: Annotated[Number, Field(gt=0)]
    limit_price: Annotated[Number, Field(gt=0)] | None = None
    depth: fields.bounded_int(1, 500) = 50


MAX_LIST_LIMIT = 500


class OrderListQuery(_In):
    """GET /api/v1/orders: its query string (each parameter at most once; unknown ones refused)."""

    status: Status | None = None
    strategy_id: fields.StrategyId | None = None
    signal_id: fields.SignalId | None = None
    symbol: Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN)] | None = None
    exchange: fields.VenueName | None = None
    parent_id: fields.OrderId | None = None
    created_after: fields.EpochMs | None = None
    created_before: fields.EpochMs | None = None
    limit: fields.bounded_int(1, MAX_LIST_LIMIT) = 100
    cursor: Annotated[str, StringConstraints(max_length=512), AfterValidator(fields.check_text)] | None = None


class TcaQuery(_In):
    """GET /api/v1/analytics/tca: its query string (group_by is checked by the route against the group keys)."""

    group_by: Annotated[str, StringConstraints(max_length=128), AfterValidator(fields.check_text)] = ""
    since: fields.EpochMs | None = None
    until: fields.EpochMs | None = None
    seed: fields.bounded_int(0, 2**32) = 0
