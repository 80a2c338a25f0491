"""JSON in, with money exact: every number with a fraction or an exponent is parsed straight to a Decimal.

The standard parser (and Flask's ``request.get_json``, and pydantic's ``model_validate_json``, which reads a JSON
number into a Decimal field through a float) turns ``12345.123456789012345678`` into the float
``12345.123456789011``: the digits after the 17th are gone before any model sees them. Every entry point that
reads JSON (REST bodies, Pub/Sub signals, Cloud Tasks bodies, the adapter's requests, the adapter's answers to
the service) parses with ``loads`` and then validates the Python value with ``model_validate``, so a Decimal
field gets the digits that were sent. Integers stay ``int`` (exact already); ``NaN`` and ``Infinity`` become
Decimals too (models and the domain refuse them with their own messages).

Hostile documents are refused here, as ValueError (``TooLarge`` / ``TooDeep`` name the bound), before any work
they could make expensive: numbers are ASCII decimal literals only (JSON's grammar; nothing that Python's
``int``/``Decimal`` would also read, such as Unicode digits or ``_``), a document is at most `max_bytes` long
and nests arrays and objects at most `max_depth` deep (50,000 ``[`` used to exhaust the parser's recursion: a
RecursionError, now a TooDeep).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

MAX_BYTES = 16 * 1024 * 1024  # adapter answers (a page of 1,000 fills) stay far below it
MAX_DEPTH = 32  # Firestore itself nests maps at most 20 deep; nothing the service reads goes beyond 6
EDGE_MAX_BYTES = 64 * 1024  # a REST body or a signal: an order with 32 tags and a VWAP profile fits in ~40 KB

_ASCII_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class TooLarge(ValueError):
    """The document is longer than the bound."""


class TooDeep(ValueError):
    """Arrays and objects nest deeper than the bound."""


def _int(text: str) -> int:
    if not _ASCII_NUMBER.fullmatch(text):
        raise ValueError(f"not an ASCII JSON number: {text[:40]!r}")
    return int(text)


def _decimal(text: str) -> Decimal:
    if not _ASCII_NUMBER.fullmatch(text):
        raise ValueError(f"not an ASCII JSON number: {text[:40]!r}")
    return Decimal(text)


def depth(value: Any) -> int:
    """How deep arrays and objects nest in the parsed document `value` (a scalar is 0, ``[]`` is 1)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def loads(data: bytes | bytearray | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in `data`, its non-integer numbers as Decimal. Raises ValueError when it is not JSON
    (``json.JSONDecodeError``, ``UnicodeDecodeError``, an integer longer than Python converts, a number that is
    not an ASCII literal), ``TooLarge`` beyond `max_bytes` and ``TooDeep`` beyond `max_depth`."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise TooLarge(f"the document is {len(raw)} bytes; at most {max_bytes}")
    too_deep = TooDeep(f"arrays and objects nest more than {max_depth} deep")
    try:
        doc = json.loads(raw, parse_float=_decimal, parse_int=_int, parse_constant=Decimal)
    except RecursionError:  # deeper than the interpreter's own limit (about 1,000): far beyond ours
        raise too_deep from None
    if depth(doc) > max_depth:
        raise too_deep
    return doc


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
