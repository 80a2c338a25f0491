"""The Pub/Sub-triggered heartbeat function: a strategy's heartbeat on the heartbeats topic re-arms its dead man's
switch (the same as POST /api/v1/heartbeat), judged by when it was sent: the older of Pub/Sub's publish time and
the heartbeat's own ``sent_at_ms``. A malformed, stale or latched heartbeat is logged with its reason and
acknowledged (redelivering it could never make it count). So is one that could not be recorded because the
switch state is unavailable (logged as an error): the next heartbeat counts, and if none can, the switch fires,
which is the safe outcome. Its topic names its publishers (their IAM): a heartbeat for a strategy outside the
topic's SIGNAL_STRATEGIES (the global switch, no strategy, needs `*`) is ignored the same way."""

from __future__ import annotations

import base64
import logging

import functions_framework
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from functions import runtime
from shared.app.dms import SwitchStateUnavailable
from shared.app.schemas import Heartbeat
from shared.domain.access import publisher_topic
from shared.domain.freshness import oldest
from shared.infra import exact_json, log
from shared.infra.bus import publish_time_ms

logger = logging.getLogger("heartbeats")


@functions_framework.cloud_event
def heartbeats(event: CloudEvent) -> None:
    message = (event.data or {}).get("message", {})
    message_id = message.get("messageId") or message.get("message_id") or event["id"]
    with log.bind(message_id=message_id):
        try:
            beat = Heartbeat.model_validate(exact_json.loads(base64.b64decode(message.get("data", "") or b"")))
        except (ValueError, ValidationError) as exc:
            logger.warning("malformed heartbeat dropped: %s", exc)
            return
        topic = publisher_topic(event["source"])  # who published: the topic's IAM says (README, Access)
        allowed = runtime.SETTINGS.signal_scope(topic)
        if allowed is not None and (beat.strategy_id or "*") not in allowed:
            logger.warning("heartbeat ignored: strategy_id %r is not among the strategies of topic %r "
                           "(SIGNAL_STRATEGIES)", beat.strategy_id, topic,
                           extra={"fields": {"strategy_id": beat.strategy_id, "topic": topic}})
            return
        sent = oldest(publish_time_ms(message), beat.sent_at_ms)
        try:
            outcome = runtime.dms_service().heartbeat(beat.strategy_id, beat.timeout_ms, sent_at_ms=sent)
        except SwitchStateUnavailable as exc:
            logger.error("heartbeat not recorded: %s", exc, extra={"fields": {"strategy_id": beat.strategy_id}})
            return
        except Exception:  # noqa: BLE001 (a retry of a defect cannot count later: acknowledged, never looping)
            logger.exception("heartbeat crashed; acknowledged (the next heartbeat counts, else the switch fires)",
                             extra={"fields": {"strategy_id": beat.strategy_id}})
            return
        logger.info("heartbeat %s", "ignored" if outcome.ignored else "taken",
                    extra={"fields": {"strategy_id": beat.strategy_id, "reason": outcome.ignored,
                                      "sent_at_ms": sent}})
