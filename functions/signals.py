"""The Pub/Sub-triggered signal function: decode the pushed message and hand it to signal intake.

Returning normally acknowledges the message (also for a rejected signal: its reason goes out as an event);
raising makes Pub/Sub redeliver, until the dead-letter policy moves the message aside.
"""

from __future__ import annotations

import base64
import logging
import time

import functions_framework
from cloudevents.http import CloudEvent

from functions import runtime
from shared.app import signals as intake
from shared.infra import clients, log
from shared.infra.bus import PubSubBus
from shared.infra.store import FirestoreStore

logger = logging.getLogger("signals")
_store = FirestoreStore(clients.firestore_db())
_bus = PubSubBus(clients.publisher(), runtime.SETTINGS)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@functions_framework.cloud_event
def signals(event: CloudEvent) -> None:
    message = (event.data or {}).get("message", {})
    message_id = message.get("messageId") or message.get("message_id") or event["id"]
    data = base64.b64decode(message.get("data", "") or b"")
    with log.bind(message_id=message_id):
        outcome = intake.intake(
            data, message_id, store=_store, bus=_bus, events_topic=runtime.SETTINGS.order_events_topic, now_ms=_now_ms
        )
        with log.bind(signal_id=outcome.signal_id):
            logger.info("signal %s", outcome.status, extra={"fields": {"reason": outcome.reason}})
