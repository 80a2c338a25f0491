"""Orders to and from plain dicts (Firestore documents, Redis snapshots, JSON): Decimals travel as strings.

The codec is pydantic's TypeAdapter of the domain's ``Order`` dataclass: every field (legs, intent, fills)
is carried without a hand-kept field list, and a document written before a field existed reads with its
default.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from shared.domain.orders import Fill, Order

_ORDER = TypeAdapter(Order)
_FILL = TypeAdapter(Fill)


def fill_to_dict(f: Fill) -> dict[str, Any]:
    return _FILL.dump_python(f, mode="json")


def fill_from_dict(d: dict[str, Any]) -> Fill:
    return _FILL.validate_python(d)


def order_to_dict(order: Order) -> dict[str, Any]:
    return _ORDER.dump_python(order, mode="json")


def order_from_dict(d: dict[str, Any]) -> Order:
    known = {k: v for k, v in d.items() if k in _FIELDS}
    return _ORDER.validate_python(known)


_FIELDS = set(Order.__dataclass_fields__)


def jsonable(value: Any) -> Any:
    """Decimals as strings, recursively: what goes into Firestore maps and Pub/Sub messages."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
