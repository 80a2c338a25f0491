"""Events onto Pub/Sub: order events in per-order sequence (ordering key = order id), rejections, TCA rows, and
the process-wide publisher's settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from google.cloud import pubsub_v1
from google.protobuf.timestamp_pb2 import Timestamp

from shared.app import events as wire
from shared.infra.config import Settings

logger = logging.getLogger(__name__)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


ORIGINAL_PUBLISH_TIME = "original_publish_time"  # attribute a republisher copies a dead letter's publish time into


def publish_time_ms(message: dict[str, Any]) -> int | None:
    """When a pushed message was first published, in epoch milliseconds: the older of its ``publishTime`` (RFC
    3339, up to nanoseconds) and an ``original_publish_time`` attribute (the same form), which whoever republishes
    a message from a dead-letter topic copies from it, since the republished message gets a new publish time.
    None when neither is there or readable."""
    attributes = message.get("attributes") or {}
    times = [_rfc3339_ms(message.get("publishTime") or message.get("publish_time")),
             _rfc3339_ms(attributes.get(ORIGINAL_PUBLISH_TIME) if isinstance(attributes, dict) else None)]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _rfc3339_ms(raw: object) -> int | None:
    if not isinstance(raw, str):
        return None
    stamp = Timestamp()
    try:
        stamp.FromJsonString(raw)
    except ValueError:
        return None
    return stamp.ToMilliseconds()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=_default, separators=(",", ":")).encode()


class PubSubRows:
    """Publishes TCA rows to the tca-records topic (Terraform streams it to BigQuery)."""

    def __init__(self, client: pubsub_v1.PublisherClient, settings: Settings, timeout: float = 10.0) -> None:
        self._client = client
        self._topic = settings.topic_path(settings.tca_records_topic)
        self._timeout = timeout

    def publish(self, row: dict[str, Any]) -> None:
        self._client.publish(self._topic, encode(row), order_id=str(row.get("order_id", "")),
                             version=str(row.get("version", ""))).result(timeout=self._timeout)


class PubSubEvents:
    """Publishes order events (the outbox's entries, JSON-ready dicts) and notices, each in the one wire format
    of ``shared.app.events`` (quantities, prices and fees as exact JSON numbers)."""

    def __init__(self, client: pubsub_v1.PublisherClient, settings: Settings, timeout: float = 10.0) -> None:
        self._client = client
        self._topic = settings.topic_path(settings.order_events_topic)
        self._timeout = timeout

    def publish_events(self, events: Sequence[dict[str, Any]]) -> int:
        """Publish in order (one ordering key per order, so one batch); returns how many, from the first, were
        accepted. After a failure the rest of that order's events fail too and stay in the outbox."""
        futures = [self._client.publish(self._topic, wire.encode(e), ordering_key=e["order_id"], order_id=e["order_id"],
                                        status=e["status"], sequence=str(e["sequence"])) for e in events]
        for done, (event, future) in enumerate(zip(events, futures, strict=True)):
            try:
                future.result(timeout=self._timeout)
            except Exception as exc:
                key = event["order_id"]
                logger.warning("event %s#%s not published (%s); the sweep will retry", key, event["sequence"], exc)
                self._client.resume_publish(self._topic, key)
                return done
        return len(events)

    def publish_notice(self, payload: dict[str, Any]) -> None:
        """A message that is not an order's transition: a rejected signal, a dead man's switch firing."""
        self._client.publish(self._topic, wire.encode(payload), status=str(payload.get("status", ""))).result(
            timeout=self._timeout)
