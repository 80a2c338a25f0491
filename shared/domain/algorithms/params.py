"""Algorithm parameters as pydantic models: one model per algorithm validates ``algorithm_params`` and is the
source of its JSON Schema (the OpenAPI document's ``TwapParams``, ``VwapParams``, ...), so the two cannot drift.

Pure (no I/O). Every problem is reported as ``(field, issue)`` with the field under ``algorithm_params``
(``algorithm_params.duration_s``, ``algorithm_params.profile[1]``), in words a person can act on ("must be
between 10 and 86400", "required", "unknown parameter; known: ..."), all at once (``InvalidParams``).

Numbers are exact: a JSON number (read as a Decimal, never a float) or a decimal string of ASCII digits
(``"0.1"``, ``"1e-3"``); booleans, ``NaN`` and infinities are refused. Whole numbers are JSON integers (``60`` or
``60.0``) or strings of digits. A ``null`` is the same as leaving the parameter out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

PREFIX = "algorithm_params"
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
WHOLE_PATTERN = r"^[+-]?[0-9]+$"
_DECIMAL = re.compile(DECIMAL_PATTERN)
_WHOLE = re.compile(WHOLE_PATTERN)
ERROR = "algorithm_param"  # the pydantic error type of every problem raised here


class InvalidParams(ValueError):
    """Algorithm parameters failed validation; ``problems`` lists (field, issue) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {i}" for f, i in problems))
        self.problems = problems


def problem(issue: str, at: str = "") -> PydanticCustomError:
    """A problem with the value being validated (`at`: a suffix of its field, e.g. ``[3]`` for a list item)."""
    return PydanticCustomError(ERROR, "{issue}", {"issue": issue, "at": at})


def problems(*found: tuple[str, str]) -> PydanticCustomError:
    """Problems found across fields (a model validator's): (parameter name, issue) pairs."""
    return PydanticCustomError(ERROR, "{issue}", {"issue": "; ".join(i for _, i in found), "problems": list(found)})


def _fmt(d: Decimal | int) -> str:
    return str(d) if isinstance(d, int) else f"{d.normalize():f}"


def _json_number(d: Decimal | int) -> int | float:
    return int(d) if d == int(d) else float(d)


def range_text(lo: Decimal | int | None, hi: Decimal | int | None, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        if lo_open:
            return f"must be greater than {_fmt(lo)} and at most {_fmt(hi)}"
        return f"must be between {_fmt(lo)} and {_fmt(hi)}"
    if lo is not None:
        return f"must be greater than {_fmt(lo)}" if lo_open else f"must be at least {_fmt(lo)}"
    return f"must be at most {_fmt(hi)}" if hi is not None else "out of range"


def to_decimal(value: Any, at: str = "") -> Decimal:
    """`value` as an exact, finite Decimal (a JSON number or a decimal string), or the problem."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise problem("must be a number", at)
    if isinstance(value, str) and not _DECIMAL.match(value):
        raise problem("must be a number", at)
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise problem("must be a number", at) from None
    if not d.is_finite():
        raise problem("must be a finite number", at)
    return d


def _bounds_schema(kind: str, lo: Decimal | int | None, hi: Decimal | int | None, lo_open: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if lo is not None:
        schema["exclusiveMinimum" if lo_open else "minimum"] = _json_number(lo)
    if hi is not None:
        schema["maximum"] = _json_number(hi)
    return schema


def number(lo: Decimal | int | None = None, hi: Decimal | int | None = None, *, lo_open: bool = False,
           description: str = "") -> Any:
    """A Decimal parameter within [lo, hi] (lo excluded when `lo_open`)."""

    def check(value: Any) -> Decimal:
        d = to_decimal(value)
        if (lo is not None and (d <= lo if lo_open else d < lo)) or (hi is not None and d > hi):
            raise problem(range_text(lo, hi, lo_open))
        return d

    text = range_text(lo, hi, lo_open).removeprefix("must be ") if lo is not None or hi is not None else ""
    schema = {"anyOf": [_bounds_schema("number", lo, hi, lo_open), {"type": "string", "pattern": DECIMAL_PATTERN}],
              "description": "; ".join(p for p in (description, "a number or a decimal string" +
                                                    (f", {text}" if text else "")) if p)}
    return Annotated[Decimal, PlainValidator(check), WithJsonSchema(schema)]


def whole(lo: int, hi: int, *, description: str = "") -> Any:
    """A whole-number parameter within [lo, hi]."""

    def check(value: Any) -> int:
        d = to_decimal(value)
        if d != d.to_integral_value() or (isinstance(value, str) and not _WHOLE.match(value)):
            raise problem("must be a whole number")
        if not lo <= d <= hi:
            raise problem(range_text(lo, hi, False))
        return int(d)

    schema = {"anyOf": [_bounds_schema("integer", lo, hi, False), {"type": "string", "pattern": WHOLE_PATTERN}],
              "description": "; ".join(p for p in (description, f"a whole number or a string of digits, "
                                                                f"{range_text(lo, hi, False).removeprefix('must be ')}")
                                       if p)}
    return Annotated[int, PlainValidator(check), WithJsonSchema(schema)]


def choice(*options: str, description: str = "") -> Any:
    """One of `options` (a string enum in the schema)."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise problem(f"must be one of {', '.join(options)}")
        return value

    schema = {"type": "string", "enum": list(options), **({"description": description} if description else {})}
    return Annotated[str, PlainValidator(check), WithJsonSchema(schema)]


def weights(max_items: int = 1000, *, description: str = "") -> Any:
    """A list of 1 to `max_items` non-negative relative weights with a positive sum."""

    def check(value: Any) -> tuple[Decimal, ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not 1 <= len(value) <= max_items:
            raise problem(f"must be a list of 1 to {max_items} relative weights")
        out = []
        for i, w in enumerate(value):
            d = to_decimal(w, f"[{i}]")
            if d < 0:
                raise problem("must not be negative", f"[{i}]")
            out.append(d)
        if sum(out, Decimal(0)) <= 0:
            raise problem("must have a positive sum")
        return tuple(out)

    item = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DECIMAL_PATTERN}]}
    schema = {"type": "array", "items": item, "minItems": 1, "maxItems": max_items,
              "description": "; ".join(p for p in (description, "relative weights (numbers or decimal strings, "
                                                                "not negative, a positive sum)") if p)}
    return Annotated[tuple[Decimal, ...], PlainValidator(check), WithJsonSchema(schema)]


# The parameters several algorithms share (each rule once).
LimitPrice = number(0, lo_open=True, description="the worst price any child may trade at")
CollarBps = number(0, 10_000, lo_open=True, description="the slippage collar (bps from the slice's mid) when the "
                                                         "order sets no max_slippage_bps")


def _nullable_optionals(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """In the schema, a parameter that may be left out may also be null (null is the same as leaving it out), and
    a number's default is a number."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        default = model.model_fields[name].default
        if isinstance(default, Decimal):
            prop["default"] = _json_number(default)
        if name in required:
            continue
        if "anyOf" in prop:
            options = [o for o in prop.pop("anyOf") if o != {"type": "null"}]
        else:  # a plain schema: its constraints move into the first option
            options = [{k: prop.pop(k) for k in list(prop) if k not in ("title", "description", "default")}]
        flat = [inner for o in options for inner in (o["anyOf"] if set(o) <= {"anyOf", "description"} else [o])]
        description = prop.get("description") or next((o["description"] for o in options if "description" in o), None)
        prop.update({"anyOf": [*flat, {"type": "null"}], **({"description": description} if description else {})})
    schema["additionalProperties"] = False


class AlgorithmParams(BaseModel):
    """The base of every algorithm's parameters: unknown parameters refused, the result immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_nullable_optionals)

    @classmethod
    def parse(cls, params: Mapping[str, Any] | None) -> Self:
        """The validated parameters, or InvalidParams naming every problem."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidParams([(PREFIX, "must be an object")])
        given = {str(k): v for k, v in params.items() if v is not None}  # null: as if not given
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise InvalidParams(cls._problems(exc)) from None

    @classmethod
    def _problems(cls, exc: ValidationError) -> list[tuple[str, str]]:
        unknown: list[tuple[str, str]] = []
        found: list[tuple[str, str]] = []
        known = ", ".join(sorted(cls.model_fields))
        for err in exc.errors(include_url=False):
            name = ".".join(str(p) for p in err["loc"])
            ctx = err.get("ctx") or {}
            if err["type"] == "extra_forbidden":
                unknown.append((f"{PREFIX}.{name}", f"unknown parameter; known: {known}"))
            elif err["type"] == "missing":
                found.append((f"{PREFIX}.{name}", "required"))
            elif "problems" in ctx:
                found += [(f"{PREFIX}.{field}", issue) for field, issue in ctx["problems"]]
            elif err["type"] == ERROR:
                found.append((f"{PREFIX}.{name}{ctx.get('at', '')}" if name else PREFIX, ctx["issue"]))
            else:  # a rule of pydantic's own: its words
                found.append((f"{PREFIX}.{name}" if name else PREFIX, err["msg"]))
        return sorted(unknown) + found
