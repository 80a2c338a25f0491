"""Structured logging in Cloud Logging's JSON form: one object per line on stdout.

Each record carries ``severity``, ``message``, ``logger``, the trace (``logging.googleapis.com/trace``) when a
request brought one, ``logging.googleapis.com/labels`` (function name), and the ids bound for the current unit of
work (order_id, signal_id, message_id, request_id, ...) via ``bind()`` (and ``add()`` for ids learnt inside
the block). Extra fields go in ``extra={"fields": {...}}``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})
_bound: contextvars.ContextVar[bool] = contextvars.ContextVar("log_bound", default=False)
_configured = False


def trace_from_headers(headers: Any, project: str) -> str | None:
    """The Cloud Logging trace resource for a request's X-Cloud-Trace-Context or traceparent header."""
    trace_id = None
    cloud = headers.get("X-Cloud-Trace-Context") if headers else None
    if cloud:
        trace_id = cloud.split("/", 1)[0]
    else:
        parent = headers.get("traceparent") if headers else None
        parts = parent.split("-") if parent else []
        if len(parts) == 4:
            trace_id = parts[1]
    return f"projects/{project}/traces/{trace_id}" if trace_id else None


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Attach fields (ids, trace) to every log record written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    bound = _bound.set(True)
    try:
        yield
    finally:
        _bound.reset(bound)
        _context.reset(token)


def add(**fields: Any) -> None:
    """Attach fields to every later log line of the current unit of work (the innermost ``bind`` block, which
    drops them when it ends): for ids learnt on the way, such as a signal's id once its message parsed. Outside
    any ``bind`` block it does nothing (there is no unit of work to attach them to, and they would outlive it)."""
    if _bound.get():
        _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def current() -> dict[str, Any]:
    """The fields bound for the current unit of work."""
    return dict(_context.get())


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as one line of JSON in Cloud Logging's structured-logging schema."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        super().__init__()
        self.labels = labels or {}

    def format(self, record: logging.LogRecord) -> str:
        ctx = dict(_context.get())
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        trace = ctx.pop("trace", None)
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        if self.labels:
            entry["logging.googleapis.com/labels"] = self.labels
        entry["logging.googleapis.com/sourceLocation"] = {
            "file": record.pathname,
            "line": record.lineno,
            "function": record.funcName,
        }
        entry.update(ctx)
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO", function: str | None = None) -> None:
    """Route the root logger to stdout as structured JSON. Safe to call more than once."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level)
    if _configured:
        return
    labels = {"function": function or os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET", "local")}
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(labels))
    root.handlers[:] = [handler]
    # Client libraries are chatty at INFO; keep their warnings.
    for noisy in ("urllib3", "google", "grpc", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    _configured = True
