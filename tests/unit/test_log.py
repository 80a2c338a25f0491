"""Structured log lines in Cloud Logging's schema."""

import json
import logging

from shared.infra import log


def _record(msg: str, level: int = logging.INFO, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("orders", level, __file__, 10, msg, (), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_one_json_object_with_severity_message_labels_and_bound_ids():
    fmt = log.CloudLoggingFormatter({"function": "api"})
    with log.bind(order_id="o-1", signal_id="s-1", trace="projects/p/traces/abc"):
        line = fmt.format(_record("placed", logging.WARNING, fields={"venue": "binance"}))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "placed"
    assert entry["logging.googleapis.com/labels"] == {"function": "api"}
    assert entry["logging.googleapis.com/trace"] == "projects/p/traces/abc"
    assert entry["order_id"] == "o-1" and entry["signal_id"] == "s-1" and entry["venue"] == "binance"


def test_bound_ids_end_with_their_block():
    fmt = log.CloudLoggingFormatter()
    with log.bind(order_id="o-1"):
        pass
    assert "order_id" not in json.loads(fmt.format(_record("x")))


def test_exceptions_are_kept_in_one_line():
    fmt = log.CloudLoggingFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(fmt.format(rec))
    assert entry["severity"] == "ERROR" and "ValueError: boom" in entry["stack_trace"]


def test_trace_from_either_header():
    assert log.trace_from_headers({"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"}, "p") == \
        "projects/p/traces/105445aa7843bc8bf206b12000100000"
    assert log.trace_from_headers({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "p") == \
        "projects/p/traces/0af7651916cd43dd8448eb211c80319c"
    assert log.trace_from_headers({}, "p") is None
