"""Orders to and from plain dicts (Firestore documents, Redis snapshots, JSON): Decimals travel as strings."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from shared.domain.orders import Fill, Order, OrderType, Side, Status, TimeInForce

_DECIMAL = {"quantity", "price", "stop_price", "max_slippage_bps", "arrival_mid"}
_ENUMS = {"side": Side, "order_type": OrderType, "time_in_force": TimeInForce, "status": Status}
_ORDER_FIELDS = [f.name for f in fields(Order)]


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def fill_to_dict(f: Fill) -> dict[str, Any]:
    return {"trade_id": f.trade_id, "quantity": str(f.quantity), "price": str(f.price), "fee": str(f.fee),
            "fee_currency": f.fee_currency, "timestamp_ms": f.timestamp_ms, "liquidity": f.liquidity}


def fill_from_dict(d: dict[str, Any]) -> Fill:
    return Fill(trade_id=d["trade_id"], quantity=Decimal(d["quantity"]), price=Decimal(d["price"]),
                fee=Decimal(d["fee"]), fee_currency=d.get("fee_currency"), timestamp_ms=int(d["timestamp_ms"]),
                liquidity=d.get("liquidity"))


def order_to_dict(order: Order) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _ORDER_FIELDS:
        value = getattr(order, name)
        if name in _DECIMAL:
            value = None if value is None else str(value)
        elif name in _ENUMS:
            value = value.value
        elif name == "fills":
            value = [fill_to_dict(f) for f in value]
        elif name in ("tags", "algorithm_params"):
            value = jsonable(dict(value))
        elif name == "notes":
            value = list(value)
        out[name] = value
    return out


def order_from_dict(d: dict[str, Any]) -> Order:
    kwargs: dict[str, Any] = {}
    for name in _ORDER_FIELDS:
        if name not in d:
            continue
        value = d[name]
        if name in _DECIMAL:
            value = _dec(value)
        elif name in _ENUMS:
            value = _ENUMS[name](value)
        elif name == "fills":
            value = tuple(fill_from_dict(f) for f in value or ())
        elif name in ("tags", "algorithm_params"):
            value = dict(value or {})
        elif name == "notes":
            value = tuple(value or ())
        kwargs[name] = value
    return Order(**kwargs)


def jsonable(value: Any) -> Any:
    """Decimals as strings, recursively: what goes into Firestore maps and Pub/Sub messages."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
