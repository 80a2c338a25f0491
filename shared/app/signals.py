"""Signal intake: a trading signal arrives from Pub/Sub, is recorded once, and an event says what happened.

At least once delivery means the same signal can arrive several times: the record is created keyed by
``signal_id`` and only the first delivery publishes ``received``. A message that cannot be read is
acknowledged with a ``rejected`` event carrying the reason, so it never loops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.infra.bus import EventBus

logger = logging.getLogger(__name__)


class SignalStore(Protocol):
    def create_signal(self, signal_id: str, record: dict[str, Any]) -> bool:
        """Store the record unless one exists for signal_id; True if this call created it."""


@dataclass(frozen=True)
class Outcome:
    status: str  # received | duplicate | rejected
    signal_id: str | None
    reason: str | None = None


def _parse(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"message data is not JSON: {exc}"
    if not isinstance(payload, dict):
        return None, "message data must be a JSON object"
    signal_id = payload.get("signal_id")
    if not isinstance(signal_id, str) or not signal_id.strip():
        return payload, "signal_id: required, a non-empty string"
    return payload, None


def intake(
    data: bytes,
    message_id: str,
    *,
    store: SignalStore,
    bus: EventBus,
    events_topic: str,
    now_ms: Callable[[], int],
) -> Outcome:
    payload, problem = _parse(data)
    signal_id = payload.get("signal_id") if payload and isinstance(payload.get("signal_id"), str) else None
    if problem:
        logger.warning("signal rejected: %s", problem, extra={"fields": {"message_id": message_id}})
        bus.publish(
            events_topic,
            {"signal_id": signal_id, "status": "rejected", "reason": problem, "message_id": message_id,
             "timestamp": now_ms()},
        )
        return Outcome("rejected", signal_id, problem)
    assert payload is not None and signal_id is not None
    created = store.create_signal(signal_id, {"signal": payload, "message_id": message_id, "received_at": now_ms()})
    if not created:
        logger.info("duplicate delivery of signal %s ignored", signal_id)
        return Outcome("duplicate", signal_id)
    bus.publish(events_topic, {"signal_id": signal_id, "status": "received", "timestamp": now_ms()},
                signal_id=signal_id)
    return Outcome("received", signal_id)
