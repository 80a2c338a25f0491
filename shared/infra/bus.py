"""Event bus: JSON events onto Pub/Sub topics (the publishing port and its Pub/Sub adapter)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Protocol

from google.cloud import pubsub_v1

from shared.infra.config import Settings


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=_default, separators=(",", ":")).encode()


class EventBus(Protocol):
    def publish(self, topic: str, payload: dict[str, Any], **attributes: str) -> None:
        """Publish and wait until the bus has accepted the message (raise if it did not)."""


class PubSubBus:
    def __init__(self, client: pubsub_v1.PublisherClient, settings: Settings, timeout: float = 10.0) -> None:
        self._client = client
        self._settings = settings
        self._timeout = timeout

    def publish(self, topic: str, payload: dict[str, Any], **attributes: str) -> None:
        future = self._client.publish(self._settings.topic_path(topic), encode(payload), **attributes)
        future.result(timeout=self._timeout)
