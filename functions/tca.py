"""The TCA functions (shared/app/tca_pipeline.py): ``tca``, pushed every order event by its own subscription of
order-events, samples what transaction cost analysis needs as it happens; ``markouts``, triggered by the markout
tasks it schedules (Cloud Tasks, one per venue, symbol and second), reads the mid once for every fill due then.

A message that is not an order's event (a rejected signal's or a dead man's switch notice) or does not parse is
logged and acknowledged; a crash raises, so Pub/Sub redelivers (the work is idempotent: fills are recorded once
by key, the row once by version). A markout task that cannot read the book answers 503 and its queue retries it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent
from pydantic import BaseModel, Field, ValidationError

from functions import http, runtime
from shared.app.ports import Contended
from shared.app.tca_pipeline import MarketDataUnavailable, worth_a_look
from shared.infra import exact_json, log

logger = logging.getLogger("tca")
_pipeline = runtime.tca_pipeline()


class MarkoutTask(BaseModel):
    venue: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=1, max_length=64)
    second: int = Field(ge=0)


@functions_framework.cloud_event
def tca(event: CloudEvent) -> None:
    message = (event.data or {}).get("message", {})
    try:
        body = exact_json.loads(base64.b64decode(message.get("data", "") or b"", validate=True))
    except (ValueError, binascii.Error) as exc:
        logger.warning("unreadable order event dropped: %s", exc)
        return
    order_id = body.get("order_id") if isinstance(body, dict) else None
    if not isinstance(order_id, str) or not order_id:
        return  # a notice (a rejected signal, a dead man's switch): no order to analyse
    if not worth_a_look(body):
        return
    with log.bind(order_id=order_id):
        outcome = _pipeline.on_event(order_id)
        logger.debug("tca: %s", outcome)


def markouts(request: flask.Request) -> tuple[Any, ...]:
    try:
        task = MarkoutTask.model_validate(http.json_body_or_empty(request))
    except ValidationError as exc:
        logger.error("malformed markout task dropped: %s", exc.errors(include_url=False))
        return {"dropped": "malformed task"}, 200
    with log.bind(task=request.headers.get("X-CloudTasks-TaskName")):
        try:
            recorded = _pipeline.on_markout(task.venue, task.symbol, task.second)
        except (MarketDataUnavailable, Contended) as exc:
            logger.warning("markout task deferred: %s", exc)
            return {"error": {"code": "unavailable", "message": str(exc), "details": []}}, 503, {"Retry-After": "1"}
        return {"recorded": recorded}, 200
