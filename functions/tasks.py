"""The work functions: ``submit`` (send an order to its venue) and ``sync`` (poll it there), triggered by Cloud
Tasks (the sync function also runs the sweep's reconcile tasks, from the reconcile queue); ``sweep`` (enqueue
the reconciliation of everything) and ``dms`` (the dead man's switch check), triggered by Cloud Scheduler.

Chosen over Pub/Sub for submission because a task can be named (production refuses a duplicate name), delayed
(backoff, polling, expiry) and rate-limited per queue, which is what venue rate limits need. Each handler is
idempotent and checks the order's state before acting. A malformed task is logged and answered 200 (a non-2xx
would only make Cloud Tasks retry it forever); a crash answers 500 and the queue retries.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import flask
from pydantic import BaseModel, Field, ValidationError

from functions import http, runtime
from shared.app import fields
from shared.app.ports import Contended, OrderNotFound
from shared.domain.reconcile import ReconcileTask
from shared.infra import log

logger = logging.getLogger("tasks")
_service = runtime.order_service()


class SubmitTask(BaseModel):
    order_id: fields.OrderId  # the edge's rule: never a Firestore-reserved id
    attempt: int = 0


class SyncTask(BaseModel):
    order_id: fields.OrderId  # the edge's rule: never a Firestore-reserved id
    attempt: int = 0
    chain: int | None = None  # the order's sync chain generation; None: a one-off check


class ReconcileBody(BaseModel):
    """A task of the sweep's fan-out (shared/domain/reconcile.py), delivered to the sync function."""

    kind: Literal["shard", "orphans"]
    venue: str
    run: int
    shard: int = Field(default=0, ge=0)
    shards: int = Field(default=1, ge=1, le=4096)
    cursor: str | None = None
    part: int = Field(default=0, ge=0)


class SliceTask(BaseModel):
    order_id: fields.OrderId  # the edge's rule: never a Firestore-reserved id
    slice_index: int = 0


def _run(request: flask.Request, model: type[BaseModel], work: Any) -> tuple[Any, ...]:
    headers = request.headers
    try:
        task = model.model_validate(http.json_body_or_empty(request))
    except ValidationError as exc:
        logger.error("malformed task dropped: %s", exc.errors(include_url=False))
        return {"dropped": "malformed task"}, 200
    with log.bind(order_id=task.order_id, task=headers.get("X-CloudTasks-TaskName"),
                  trace=log.trace_from_headers(headers, runtime.SETTINGS.google_cloud_project)):
        try:
            order = work(task)
        except OrderNotFound:
            logger.error("task for an unknown order dropped")
            return {"dropped": "unknown order"}, 200
        except Contended as exc:  # nothing was written: the queue delivers it again (any non-2xx is retried)
            logger.warning("task deferred: %s", exc)
            return {"error": {"code": "contended", "message": str(exc), "details": []}}, 503, {"Retry-After": "1"}
        logger.info("task done: order %s", order.status.value)
        return {"order_id": order.order_id, "status": order.status.value}, 200


def submit(request: flask.Request) -> tuple[Any, ...]:
    return _run(request, SubmitTask,
                lambda t: _service.submit(t.order_id, attempt=t.attempt))


def sync(request: flask.Request) -> tuple[Any, ...]:
    """An order's sync task, or (a body with ``kind``) a reconcile task of the sweep's fan-out."""
    body = http.json_body_or_empty(request)
    if isinstance(body, dict) and "kind" in body:
        return _reconcile(request, body)
    return _run(request, SyncTask, lambda t: _service.sync(t.order_id, attempt=t.attempt, chain=t.chain))


def _reconcile(request: flask.Request, body: dict[str, Any]) -> tuple[dict, int]:
    try:
        task = ReconcileBody.model_validate(body)
    except ValidationError as exc:
        logger.error("malformed reconcile task dropped: %s", exc.errors(include_url=False))
        return {"dropped": "malformed task"}, 200
    with log.bind(task=request.headers.get("X-CloudTasks-TaskName"), venue=task.venue,
                  trace=log.trace_from_headers(request.headers, runtime.SETTINGS.google_cloud_project)):
        result = _service.reconcile(ReconcileTask(**task.model_dump()))
        logger.info("reconcile task done: %s", {k: v for k, v in result.items() if k != "orphan_venue_orders"})
        return result, 200


def slices(request: flask.Request) -> tuple[Any, ...]:
    return _run(request, SliceTask, lambda t: runtime.parent_orders().run_slice(t.order_id, t.slice_index))


def sweep(request: flask.Request) -> tuple[dict, int]:
    """Cloud Scheduler's periodic reconciliation (also callable by hand): enqueues the run's reconcile tasks."""
    return _service.sweep(), 200


class DmsCheck(BaseModel):
    for_s: float = Field(default=0.0, ge=0, le=3000)  # keep checking every second this long


def dms(request: flask.Request) -> tuple[dict, int]:
    """The dead man's switch check: Cloud Scheduler calls it every minute with {"for_s": 55}."""
    try:
        body = DmsCheck.model_validate(http.json_body_or_empty(request))
    except ValidationError as exc:
        return {"error": str(exc)}, 400
    result = runtime.dms_service().check(for_s=body.for_s)
    if result["unavailable"]:  # fail closed: the order path refuses meanwhile; the scheduler calls again
        return {"error": {"code": "dms_unavailable", "message": result["unavailable"],
                          "details": [{"field": "switches", "issue": "unreadable"}]}, **result}, 503
    return result, 200
