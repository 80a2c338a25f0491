"""The Pub/Sub-triggered signal function: decode the pushed message and hand it to signal intake.

Returning normally acknowledges the message (also for a rejected signal: its reason goes out as an event);
raising makes Pub/Sub redeliver, until the dead-letter policy moves the message aside. Only a dependency's
passing failure (shared/infra/errors.py) is raised; any other exception is logged with its stack trace and the
message's ids and answered with a ``rejected`` event (a poison message must not crash every delivery).
"""

from __future__ import annotations

import base64
import binascii
import logging

import functions_framework
from cloudevents.http import CloudEvent

from functions import runtime
from shared.app import signals as intake
from shared.domain.access import publisher_topic
from shared.infra import errors, log
from shared.infra.bus import publish_time_ms

logger = logging.getLogger("signals")
_service = runtime.order_service()


@functions_framework.cloud_event
def signals(event: CloudEvent) -> None:
    body = event.data if isinstance(event.data, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    message_id = str(message.get("messageId") or message.get("message_id") or event["id"])
    try:
        data = base64.b64decode(message.get("data", "") or b"", validate=True)
    except (binascii.Error, ValueError, TypeError):
        data = b"\xff"  # undecodable: intake rejects it as not JSON
    topic = publisher_topic(event["source"])  # who published: the topic's IAM says (README, Access)
    with log.bind(message_id=message_id):
        outcome = intake.deliver(data, message_id, service=_service, events=_service.events, now_ms=runtime.now_ms,
                                 transient=errors.transient, allowed=runtime.SETTINGS.signal_scope(topic),
                                 topic=topic, published_ms=publish_time_ms(message),
                                 max_age_ms=runtime.SETTINGS.signal_max_age_ms)
        with log.bind(signal_id=outcome.signal_id, order_id=outcome.order_id):
            logger.info("signal %s", outcome.status, extra={"fields": {"reason": outcome.reason}})
