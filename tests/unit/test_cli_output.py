"""execctl's output: JSON is the service's document digit for digit, CSV keeps raw values, tables show times as
UTC; KEY=VALUE flags read JSON values exactly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import typer

from execctl import output
from execctl.main import _pairs
from execctl.output import Column, Format

DOC = {"orders": [{"order_id": "ord_1", "price": Decimal("0.10"), "created_at": 1796410907207, "tags": {"a": "b"},
                   "avg": None}]}
COLUMNS = (Column("order_id", "order_id", "id"), Column("price", "price", "num"), Column("created", "created_at", "ms"),
           Column("tags", "tags"), Column("avg", "avg"))


def test_json_is_the_document_with_exact_numbers(capsys):
    output.emit_rows(DOC, DOC["orders"], COLUMNS, Format.json)
    assert capsys.readouterr().out == '{"orders":[{"order_id":"ord_1","price":0.10,"created_at":1796410907207,' \
                                      '"tags":{"a":"b"},"avg":null}]}\n'


def test_csv_keeps_raw_values(capsys):
    output.emit_rows(DOC, DOC["orders"], COLUMNS, Format.csv)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["order_id", "price", "created", "tags", "avg"], ["ord_1", "0.10", "1796410907207", '{"a":"b"}', ""]]


def test_tables_show_times_in_utc_and_numbers_without_trailing_zeros(capsys):
    output.emit_rows(DOC, DOC["orders"], COLUMNS, Format.table)
    shown = capsys.readouterr().out
    assert "2026-12-04 19:01:47.207" in shown and "ord_1" in shown and "0.1 " in shown and "0.10" not in shown


@pytest.mark.parametrize("value, shown", [("49975.630000000000", "49975.63"), (Decimal("1E+3"), "1000"),
                                          ("60000", "60000"), ("0.000", "0"), ("-1.50", "-1.5"), ("n/a", "n/a"),
                                          (7, "7")])
def test_numbers_are_shown_plainly(value, shown):
    assert output.show(value, "num") == shown


@pytest.mark.parametrize("flag, value", [("n=0.1", Decimal("0.1")), ("n=60", 60), ("mode=maker", "maker"),
                                         ("on=true", True), ('l=["a"]', ["a"]), ("t=", "")])
def test_key_value_flags(flag, value):
    assert _pairs([flag], "--param") == {flag.partition("=")[0]: value}


def test_a_flag_without_a_key_is_a_usage_error():
    with pytest.raises(typer.BadParameter):
        _pairs(["=1"], "--param")
    with pytest.raises(typer.BadParameter):
        _pairs(["novalue"], "--param")
