"""The edge's field rules, one definition each: every REST body, query string and path parameter, and every
Pub/Sub signal is validated with these types, so a field obeys the same rule wherever it arrives.

- **Numbers** (prices, quantities, bps) are decimal literals in ASCII: a JSON number (``exact_json`` parses it
  straight to Decimal) or a string such as ``"0.1"``, ``"-2"``, ``"1e-5"``. Never Unicode digits (``"٣"``),
  ``_`` separators (``"0.0_1"``), inner whitespace, ``NaN`` or ``Infinity``; at most ``MAX_DIGITS`` significant
  digits, magnitude below ``1e{MAX_ADJUSTED + 1}``, exponent at least ``MIN_EXPONENT``, so no input can make a
  decimal computation or a Firestore write blow up.
- **Integers** (epoch ms, limits, seeds, timeouts) are a JSON integer or a string of ASCII digits, within a stated
  range (epoch ms: 0 to the end of year 9999; nothing beyond Firestore's 64 bits).
- **Ids** (strategy, signal, client order, venue, tag and parameter keys) are ASCII letters, digits and
  ``. _ : -``, start with a letter or digit (so never Firestore's reserved ``__x__``), and are bounded in
  length: safe as Firestore document ids and map keys, Prometheus label values and log text. An **order id** is
  what the service makes: ``ord_`` and 24 lowercase hex digits.
- **Text** (tag values) is at most ``MAX_TEXT`` characters and holds no control or format character (NUL, the
  bidi overrides such as U+202E, zero-width characters).
- **Maps** (``tags``, ``algorithm_params``) have id keys, a bounded number of entries and (params) a bounded
  depth; their integers fit 64 bits.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

MAX_DIGITS = 40
MAX_ADJUSTED = 29  # |x| < 1e30
MIN_EXPONENT = -60
MAX_LITERAL = 64  # characters of a number written as a string
MAX_TEXT = 256
EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
INT64_MAX = 2**63 - 1

DECIMAL_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"  # strategy ids, venue names
LONG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"  # signal ids
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,63}$"  # tag and parameter keys: no dot (a Firestore field path)
ORDER_ID_PATTERN = r"^ord_[0-9a-f]{24}$"
DIGITS_PATTERN = r"^[0-9]{1,19}$"

_DECIMAL = re.compile(DECIMAL_PATTERN)
_ID = re.compile(ID_PATTERN)
_LONG_ID = re.compile(LONG_ID_PATTERN)
_KEY = re.compile(KEY_PATTERN)
_ORDER_ID = re.compile(ORDER_ID_PATTERN)
_DIGITS = re.compile(DIGITS_PATTERN)

ID_RULE = "1-64 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit"
LONG_ID_RULE = "1-128 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit"
KEY_RULE = "1-64 characters from A-Z a-z 0-9 _ : -, starting with a letter or digit"
NUMBER_RULE = (f"a decimal number in ASCII (a JSON number or a string such as \"0.1\"), finite, at most "
               f"{MAX_DIGITS} significant digits, below 1e{MAX_ADJUSTED + 1}")


# ---- plain checks (also used outside pydantic: query strings, path parameters) ------------------------------
def is_order_id(value: object) -> bool:
    return isinstance(value, str) and _ORDER_ID.fullmatch(value) is not None


def is_strategy_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_signal_id(value: object) -> bool:
    return isinstance(value, str) and _LONG_ID.fullmatch(value) is not None


def decimal_of(value: object) -> Decimal:
    """`value` (a Decimal from exact_json, a JSON integer, or a string) as a Decimal within the number rule;
    ValueError naming the rule otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError(NUMBER_RULE)
    if isinstance(value, int):
        if abs(value) >= 10 ** (MAX_ADJUSTED + 1):
            raise ValueError(NUMBER_RULE)
        return Decimal(value)
    if isinstance(value, str):
        if len(value) > MAX_LITERAL or not _DECIMAL.fullmatch(value):
            raise ValueError(NUMBER_RULE)
        try:
            value = Decimal(value)
        except InvalidOperation:  # the pattern admits only what Decimal reads; kept as a guard
            raise ValueError(NUMBER_RULE) from None
    if not value.is_finite():
        raise ValueError(NUMBER_RULE)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_DIGITS or exponent < MIN_EXPONENT or (value != 0 and value.adjusted() > MAX_ADJUSTED):
        raise ValueError(NUMBER_RULE)
    return value


def int_of(value: object, low: int = 0, high: int = INT64_MAX) -> int:
    """`value` (a JSON integer or a string of ASCII digits) as an int in [low, high]; ValueError otherwise."""
    rule = f"an integer from {low} to {high}"
    if isinstance(value, bool):
        raise ValueError(rule)
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError(rule)
        value = int(value)
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(rule)
    return value


def check_text(value: str) -> str:
    if len(value) > MAX_TEXT:
        raise ValueError(f"at most {MAX_TEXT} characters")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ValueError(f"must not contain control or format characters (U+{ord(ch):04X})")
    return value


def _matching(pattern: re.Pattern[str], rule: str):
    def check(value: object) -> object:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(rule)
        return value
    return check


def _int_in(low: int, high: int):
    return lambda value: int_of(value, low, high)


def _params(value: dict[str, Any]) -> dict[str, Any]:
    """algorithm_params: at most 32 entries with id keys; values are numbers, integers, booleans, short text,
    or lists (at most 1,440 entries: a VWAP profile) of numbers, nested no deeper."""
    if len(value) > 32:
        raise ValueError("at most 32 parameters")
    for key, item in value.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"parameter name {key[:70]!r}: {KEY_RULE}")
        items = item if isinstance(item, list) else [item]
        if len(items) > 1440:
            raise ValueError(f"{key}: at most 1440 entries")
        for v in items:
            if v is None or isinstance(v, bool):
                continue
            if isinstance(v, str):
                try:
                    check_text(v)
                    if _reads_as_number(v):  # "0.0_1", "٣": Python's Decimal reads them; we do not
                        decimal_of(v)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
            elif isinstance(v, int) and abs(v) > INT64_MAX:
                raise ValueError(f"{key}: an integer beyond 64 bits")
            elif isinstance(v, (int, Decimal)):
                try:
                    decimal_of(v)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
            else:
                raise ValueError(f"{key}: a number, an integer, a boolean, text, or a list of numbers")
    return value


def _reads_as_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


# ---- the pydantic types ------------------------------------------------------------------------------------
_NUMBER_SCHEMA = {"anyOf": [{"type": "number"},
                            {"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": MAX_LITERAL}]}

Amount = Annotated[Decimal, BeforeValidator(decimal_of), WithJsonSchema(_NUMBER_SCHEMA)]
"""A price, quantity or bps figure (the number rule); whether it must be positive is the domain's rule."""

EpochMs = Annotated[int, BeforeValidator(_int_in(0, EPOCH_MS_MAX)),
                    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": EPOCH_MS_MAX})]


def bounded_int(low: int, high: int) -> Any:
    return Annotated[int, BeforeValidator(_int_in(low, high)),
                     WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


def Seconds(high: int) -> Any:  # noqa: N802 (a type factory)
    """A duration in seconds from 0 to `high`, fractions allowed (the number rule), as a float: a wait, not money."""
    def check(value: object) -> float:
        seconds = decimal_of(value)
        if not 0 <= seconds <= high:
            raise ValueError(f"from 0 to {high} seconds")
        return float(seconds)
    return Annotated[float, BeforeValidator(check), WithJsonSchema({"type": "number", "minimum": 0, "maximum": high})]


def _id_type(pattern: re.Pattern[str], source: str, rule: str, max_length: int) -> Any:
    return Annotated[str, BeforeValidator(_matching(pattern, rule)),
                     WithJsonSchema({"type": "string", "pattern": source, "maxLength": max_length})]


StrategyId = _id_type(_ID, ID_PATTERN, ID_RULE, 64)
VenueName = _id_type(_ID, ID_PATTERN, ID_RULE, 64)
SignalId = _id_type(_LONG_ID, LONG_ID_PATTERN, LONG_ID_RULE, 128)
OrderId = _id_type(_ORDER_ID, ORDER_ID_PATTERN, "an order id: ord_ and 24 hex digits", 28)
Key = _id_type(_KEY, KEY_PATTERN, KEY_RULE, 64)
Text = Annotated[str, AfterValidator(check_text), Field(max_length=MAX_TEXT)]
Tags = Annotated[dict[Key, Text], Field(max_length=32)]
AlgorithmParams = Annotated[dict[str, Any], AfterValidator(_params)]
