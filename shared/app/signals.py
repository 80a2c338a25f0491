"""Signal intake: a risk-approved trading signal from Pub/Sub becomes one order, however often it is delivered.

The order's client order id derives from (strategy_id, signal_id), so a redelivered signal finds its order
instead of making another. A signal that cannot become an order is answered with a ``rejected`` event naming
the problem and is acknowledged: it must not loop. So is a signal older than the maximum age by its publish
time (it is never traded late), and one whose strategy's halt state cannot be read (fail closed). Anything else (a crash) propagates, so Pub/Sub redelivers
and finally dead-letters the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from shared.app.dms import SwitchStateUnavailable
from shared.app.events import rejection
from shared.app.orders import Halted, OrderService
from shared.app.ports import EventPublisher
from shared.app.schemas import Signal
from shared.domain.freshness import staleness
from shared.domain.orders import InvalidOrder
from shared.infra import exact_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted | duplicate | rejected
    signal_id: str | None
    order_id: str | None = None
    reason: str | None = None


def _details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "message", "issue": e["msg"]}
            for e in exc.errors(include_url=False)]


def intake(data: bytes, message_id: str, *, service: OrderService, events: EventPublisher,
           now_ms: Callable[[], int], allowed: frozenset[str] | None = None, topic: str | None = None,
           published_ms: int | None = None, max_age_ms: int | None = None) -> Outcome:
    """`allowed`: the strategies the publisher may trade (None: all), known from the topic it published on
    (README, Access: a topic per publisher, its IAM the boundary). `published_ms`: when Pub/Sub accepted the
    message; with `max_age_ms`, a signal older than that (or without a publish time) is rejected, never traded:
    redelivery after an outage, a republished dead letter."""
    try:
        payload = exact_json.loads(data)  # prices and quantities exact: never through a float
    except ValueError as exc:  # not JSON, not UTF-8, or an integer too long to convert
        return _reject(None, f"message data is not JSON: {exc}", [], message_id, events, now_ms)
    if not isinstance(payload, dict):
        return _reject(None, "message data must be a JSON object", [], message_id, events, now_ms)
    if max_age_ms is not None:
        stale = staleness(published_ms, now_ms(), max_age_ms)
        if stale:
            reason = f"signal too old to trade: {stale} (SIGNAL_MAX_AGE_MS)"
            return _reject(payload, reason, [{"field": "publish_time", "issue": stale}], message_id, events, now_ms)
    try:
        signal = Signal.model_validate(payload)
    except ValidationError as exc:
        details = _details(exc)
        reason = "; ".join(f"{d['field']}: {d['issue']}" for d in details)
        return _reject(payload, reason, details, message_id, events, now_ms)
    if allowed is not None and signal.strategy_id not in allowed:
        return _reject(payload, f"strategy_id: {signal.strategy_id!r} is not allowed for publishers of "
                       f"topic {topic!r} (SIGNAL_STRATEGIES)",
                       [{"field": "strategy_id", "issue": "outside the publisher's strategies"}], message_id, events,
                       now_ms)
    try:
        order, created = service.create(signal.to_order(now_ms()))
    except InvalidOrder as exc:
        details = [{"field": f, "issue": i} for f, i in exc.problems]
        return _reject(payload, str(exc), details, message_id, events, now_ms)
    except Halted as exc:
        return _reject(payload, str(exc), [{"field": "strategy_id", "issue": "halted"}], message_id,
                       events, now_ms)
    except SwitchStateUnavailable as exc:  # fail closed: never traded while the halt state is unknown
        return _reject(payload, str(exc), [{"field": "strategy_id", "issue": "dead man's switch state "
                                                  "unavailable"}], message_id, events, now_ms)
    return Outcome("accepted" if created else "duplicate", signal.signal_id, order.order_id)


def _reject(signal: object, reason: str, details: list[dict[str, str]], message_id: str,
            events: EventPublisher, now_ms: Callable[[], int]) -> Outcome:
    """Answer the signal (the parsed message, or None when it was no JSON object) with a `rejected` event."""
    logger.warning("signal rejected: %s", reason, extra={"fields": {"message_id": message_id}})
    event = rejection(signal, reason, details, message_id, now_ms())
    events.publish_notice(event)
    return Outcome("rejected", event["signal_id"], reason=reason)
