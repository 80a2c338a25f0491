"""The Pub/Sub-triggered heartbeat function: a strategy's heartbeat on the heartbeats topic re-arms its dead man's
switch (the same as POST /api/v1/heartbeat). A malformed heartbeat is logged and acknowledged."""

from __future__ import annotations

import base64
import logging

import functions_framework
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions import runtime
from shared.app.schemas import Heartbeat
from shared.infra import exact_json

logger = logging.getLogger("heartbeats")


@functions_framework.cloud_event
def heartbeats(event: CloudEvent) -> None:
    message = (event.data or {}).get("message", {})
    try:
        beat = Heartbeat.model_validate(exact_json.loads(base64.b64decode(message.get("data", "") or b"")))
    except (ValueError, ValidationError) as exc:
        logger.warning("malformed heartbeat dropped: %s", exc)
        return
    runtime.dms_service().heartbeat(beat.strategy_id, beat.timeout_ms)
