"""The messages of the order-events topic, as pydantic models: their one wire format and its JSON Schema.

Three kinds of message travel on ``order-events``:
- ``OrderEventMessage``: an order's transition (``OrderEvent.as_message``, kept in the order's outbox);
- the same form for a signal that never became an order (``rejection``): every field is present, quantities 0,
  prices and the order's identity ``null``, ``sequence`` 0 (it belongs to no order's sequence);
- ``DeadMansSwitchNotice``: a switch fired or was re-enabled (``type`` says so; no order's fields).

Every quantity, price and fee is a JSON **number** written exactly from its Decimal (``exact_json.dumps``: never
through a float, so ``0.1`` is ``0.1`` and 30 significant digits stay 30); consumers should parse them with a
Decimal-aware parser (Python: ``json.loads(data, parse_float=Decimal)``). Times are epoch milliseconds.

``encode`` is what the publisher sends: the outbox's dict (Decimals as text, as Firestore keeps them) validated
through the model, so every message leaves in exactly the documented form. ``document`` is the JSON Schema
(2020-12) committed as ``docs/events.schema.json`` (regenerate: ``python -m shared.app.events``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from shared import openapi as oa
from shared.app import fields
from shared.domain.orders import Side, Status, client_order_id_for_signal
from shared.infra import exact_json

OUT = Path(__file__).resolve().parents[2] / "docs" / "events.schema.json"

Exact = Annotated[Decimal, Field(allow_inf_nan=False),
                  WithJsonSchema({"type": "number", "description": "written exactly from a Decimal: parse it as one"})]
EpochMs = Annotated[int, Field(ge=0, description="epoch milliseconds")]


class _Message(BaseModel):
    # Unknown keys are dropped when a message is encoded (an outbox written by a newer or older version must still
    # publish); the schema says there are none, and a unit test keeps as_message() and the model equal.
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


class LastFill(_Message):
    """The fill that caused this event (fills are counted once per venue trade id)."""

    trade_id: str
    quantity: Exact
    price: Exact
    fee: Exact
    fee_currency: str | None
    timestamp: EpochMs


class OrderEventMessage(_Message):
    """An order's transition (or a signal's rejection before any order existed: ``order_id`` null). Consumers may
    see an event twice: order by ``(order_id, sequence)`` and drop repeats; there is never a gap."""

    order_id: str | None = Field(description="null only for a signal rejected before it became an order")
    signal_id: str | None
    status: Status
    filled_quantity: Exact
    average_price: Exact | None = Field(description="rounded half-even to 12 places; null before any fill")
    commission: Exact = Field(description="in the quote currency: quote-currency fees plus base-currency fees at "
                                          "their fill's price; fees in other currencies only in commissions")
    commissions: dict[str, Exact] = Field(description="fees per currency, as the venue charged them")
    timestamp: EpochMs
    client_order_id: str | None
    strategy_id: str | None
    exchange: str | None
    symbol: str | None
    side: Side | None
    quantity: Exact
    remaining_quantity: Exact
    sequence: int = Field(ge=0, description="per order, from 1 (0: a signal's rejection, which has no order)")
    last_fill: LastFill | None
    reason: str | None
    algorithm: str | None = Field(description="set on an algorithm parent's events (twap, smart, ...)")
    parent_id: str | None = Field(description="set on an algorithm child's events: its parent's order_id")
    attention: str | None = Field(description="why the order needs a person's attention, if it does")
    details: list[dict[str, str]] | None = Field(
        default=None, description="a signal's rejection: [{field, issue}] naming each problem")
    message_id: str | None = Field(default=None, description="a signal's rejection: the Pub/Sub message it answers")


class DeadMansSwitchNotice(_Message):
    """A dead man's switch fired (``halted``: the strategy's working orders are being cancelled) or trading resumed
    (``resumed``: a heartbeat, or an operator re-enabled it); ``strategy_id`` ``*``: the global switch."""

    type: Literal["dead_mans_switch"]
    order_id: None = None
    strategy_id: str | None
    status: Literal["halted", "resumed"]
    reason: str | None
    timestamp: EpochMs


Message = OrderEventMessage | DeadMansSwitchNotice
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


def _model_for(payload: Mapping[str, Any]) -> type[_Message]:
    return DeadMansSwitchNotice if payload.get("type") == "dead_mans_switch" else OrderEventMessage


def encode(payload: Mapping[str, Any]) -> bytes:
    """The message's bytes on the topic: validated through its model (ValidationError if it does not fit),
    numbers exact."""
    message = _model_for(payload).model_validate(dict(payload))
    return exact_json.dumps(message.model_dump(mode="python")).encode()


def _text(value: Any, limit: int = 128) -> str | None:
    """A string field of the signal as the signal model reads it (stripped), if it is one of sane length."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    try:
        fields.check_text(value)
    except ValueError:
        return None  # control or format characters: not echoed
    return value if 0 < len(value) <= limit else None


def rejection(signal: Any, reason: str, details: list[dict[str, str]], message_id: str, now_ms: int) -> dict:
    """The ``rejected`` event for a signal that never became an order, in the full event format: what could be read
    of the signal (its ids, strategy, venue, symbol, side), quantities 0, prices and the order's id null."""
    given = signal if isinstance(signal, Mapping) else {}
    # ids are echoed only when they keep the id rules (shared/app/fields.py): never a NUL or U+202E into an event
    signal_id = given.get("signal_id") if fields.is_signal_id(given.get("signal_id")) else None
    strategy_id = given.get("strategy_id") if fields.is_strategy_id(given.get("strategy_id")) else None
    side = given.get("side")
    return {
        "order_id": None, "signal_id": signal_id, "status": Status.REJECTED.value,
        "filled_quantity": "0", "average_price": None, "commission": "0", "commissions": {}, "timestamp": now_ms,
        "client_order_id": (client_order_id_for_signal(strategy_id, signal_id)
                            if signal_id and strategy_id else None),
        "strategy_id": strategy_id, "exchange": _text(given.get("exchange")), "symbol": _text(given.get("symbol")),
        "side": side if side in {s.value for s in Side} else None,
        "quantity": "0", "remaining_quantity": "0", "sequence": 0, "last_fill": None, "reason": reason,
        "algorithm": None, "parent_id": None, "attention": None, "details": details, "message_id": message_id,
    }


def document() -> dict[str, Any]:
    schema = _MESSAGE.json_schema(mode="serialization", ref_template="#/$defs/{model}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "order-events message",
            "description": (__doc__ or "").split("\n\n")[0].strip(), **schema}


def render() -> str:
    return oa.render(document())


if __name__ == "__main__":
    oa.write(OUT, document())
