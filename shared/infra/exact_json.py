"""JSON in, with money exact: every number with a fraction or an exponent is parsed straight to a Decimal.

The standard parser (and Flask's ``request.get_json``, and pydantic's ``model_validate_json``, which reads a JSON
number into a Decimal field through a float) turns ``12345.123456789012345678`` into the float
``12345.123456789011``: the digits after the 17th are gone before any model sees them. Every entry point that
reads JSON (REST bodies, Pub/Sub signals, Cloud Tasks bodies, the adapter's requests, the adapter's answers to
the service) parses with ``loads`` and then validates the Python value with ``model_validate``, so a Decimal
field gets the digits that were sent. Integers stay ``int`` (exact already); ``NaN`` and ``Infinity`` become
Decimals too (models and the domain refuse them with their own messages).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def loads(data: bytes | bytearray | str) -> Any:
    """The JSON document in `data`, its non-integer numbers as Decimal. Raises ValueError when it is not JSON
    (``json.JSONDecodeError``, ``UnicodeDecodeError``, or an integer longer than Python converts)."""
    return json.loads(data, parse_float=Decimal, parse_constant=Decimal)


def dumps(value: Any) -> str:
    """`value` as compact JSON with every Decimal written as a JSON number, digit for digit (``Decimal("0.10")`` is
    ``0.10``, never a float's ``0.1`` or ``0.09999999999999999``). A non-finite Decimal or float raises ValueError
    (JSON has no NaN); other values are written as the standard encoder writes them."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, allow_nan=False)
