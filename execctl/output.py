"""How execctl shows what the service answered: ``-o table`` (rich, for people), ``-o json`` (the service's
document as it sent it, numbers digit for digit: for jq and scripts) and ``-o csv`` (one row per item, raw values).

A command describes its rows with ``Column``s (a header and how to read the value from an item); the table shows
values for reading (times as UTC clock times, decimals as sent), CSV keeps them raw (epoch ms, decimals as sent).
"""

from __future__ import annotations

import csv
import enum
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.infra import exact_json

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def dig(item: Any, path: str) -> Any:
    """``item["a"]["b"]`` for path ``a.b``; None where a step is missing."""
    for step in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(step)
    return item


@dataclass(frozen=True)
class Column:
    header: str
    path: str  # where the value is in an item (dig)
    kind: str = "text"  # text | id (never folded) | ms (epoch ms, UTC) | when (the same, short) | num (right)
    read: Callable[[Any], Any] | None = None  # instead of path: the value computed from the item

    def raw(self, item: Any) -> Any:
        return self.read(item) if self.read else dig(item, self.path)

    def shown(self, item: Any) -> str:
        return show(self.raw(item), self.kind)


def show(value: Any, kind: str = "text") -> str:
    """`value` for a person: '' for nothing, epoch ms as UTC time, Decimals as the service wrote them."""
    if value is None:
        return ""
    if kind in ("ms", "when") and isinstance(value, int) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value / 1000, UTC)
        return moment.strftime("%m-%d %H:%M:%S") if kind == "when" else moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return exact_json.dumps(value)
    if kind == "num":
        return _plain(value)
    return str(value)


def _plain(value: Any) -> str:
    """A number for reading: its value without trailing zeros (49975.630000000000 -> 49975.63), never in exponent
    form; anything that is not a number as it is."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (ArithmeticError, ValueError):
        return str(value)
    if not number.is_finite() or isinstance(value, bool):
        return str(value)
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: raw (epoch ms, decimals as sent), objects as JSON, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return exact_json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def emit_json(doc: Any) -> None:
    sys.stdout.write(exact_json.dumps(doc) + "\n")
    sys.stdout.flush()


def table(rows: Iterable[Any], columns: Sequence[Column], title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                 collapse_padding=True)
    cells = [[col.shown(row) for col in columns] for row in rows]
    for i, col in enumerate(columns):
        # An id stays whole (it is copied into the next command); other cells fold when the terminal is narrow.
        widest = max((len(r[i]) for r in cells), default=0) if col.kind in ("id", "ms", "when") else None
        grid.add_column(col.header, justify="right" if col.kind == "num" else "left", overflow="fold",
                        no_wrap=widest is not None, min_width=widest)
    for row in cells:
        grid.add_row(*row)
    return grid


def emit_rows(doc: Any, rows: Iterable[Any], columns: Sequence[Column], fmt: Format, title: str | None = None) -> None:
    """A list: the document as JSON, or its rows as CSV or a table."""
    if fmt is Format.json:
        emit_json(doc)
    elif fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.header for c in columns])
        for row in rows:
            writer.writerow([csv_cell(c.raw(row)) for c in columns])
        sys.stdout.flush()
    else:
        out.print(table(rows, columns, title))


def pairs(item: dict[str, Any], kinds: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """A flat object's (key, shown value) pairs; nested objects and lists are left to their own tables."""
    kinds = kinds or {}
    return [(k, show(v, kinds.get(k, "ms" if k.endswith("_at") else "text"))) for k, v in item.items()
            if not isinstance(v, (dict, list)) or k in kinds]


def emit_object(doc: dict[str, Any], fmt: Format, title: str | None = None, kinds: dict[str, str] | None = None,
                extra: Sequence[Table] = ()) -> None:
    """One object: JSON as sent; CSV as field,value rows; a two-column table (and `extra` tables below it)."""
    if fmt is Format.json:
        emit_json(doc)
        return
    rows = pairs(doc, kinds)
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["field", "value"])
        for key, value in doc.items():
            writer.writerow([key, csv_cell(value)])
        sys.stdout.flush()
        return
    grid = Table(title=title, title_justify="left", show_header=False)
    grid.add_column("field", style="bold")
    grid.add_column("value", overflow="fold")
    for key, value in rows:
        grid.add_row(key, value)
    out.print(grid)
    for t in extra:
        out.print(t)


def error(code: str, message: str, details: Sequence[dict[str, Any]] = (), status: int | None = None) -> None:
    """The service's JSON error, readably, on stderr."""
    head = f"HTTP {status} " if status is not None else ""
    err.print(f"[bold red]error[/]: {head}[bold]{escape(code)}[/]: {escape(message)}", highlight=False)
    for d in details:
        rest = {k: v for k, v in d.items() if k not in ("field", "issue")}
        extra = f" ({exact_json.dumps(rest)})" if rest else ""
        err.print(f"  {d.get('field', '?')}: {d.get('issue', '?')}{extra}", highlight=False, markup=False)


def dec(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as Decimal; None where there is none."""
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))
