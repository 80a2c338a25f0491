"""Signal intake: a risk-approved trading signal from Pub/Sub becomes one order, however often it is delivered.

The order's client order id derives from (strategy_id, signal_id), so a redelivered signal finds its order
instead of making another. A signal that cannot become an order is answered with a ``rejected`` event naming
the problem and is acknowledged: it must not loop. So is a signal older than the maximum age by its publish
time (it is never traded late), one for a strategy outside its topic's set, and one whose strategy's halt state
cannot be read (fail closed). Anything else (a crash) propagates to ``deliver``, which lets Pub/Sub redeliver a
dependency's passing failure and answers any other with ``crashed`` (a ``rejected`` event, acknowledged: a poison
message would crash every delivery). The signal's id and its order's id are added to the log context as soon as
they are known, so every later line of the delivery carries them.
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
from shared.app import fields
from shared.app.schemas import Signal
from shared.domain.freshness import staleness
from shared.domain.orders import InvalidOrder, client_order_id_for_signal, order_id_for
from shared.infra import exact_json, log

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted | duplicate | rejected
    signal_id: str | None
    order_id: str | None = None
    reason: str | None = None


def _details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "message",
             "issue": e["msg"].removeprefix("Value error, ")}
            for e in exc.errors(include_url=False)]


def intake(data: bytes, message_id: str, *, service: OrderService, events: EventPublisher,
           now_ms: Callable[[], int], allowed: frozenset[str] | None = None, topic: str | None = None,
           published_ms: int | None = None, max_age_ms: int | None = None) -> Outcome:
    """`allowed`: the strategies the publisher may trade (None: all), known from the topic it published on
    (README, Access: a topic per publisher, its IAM the boundary). `published_ms`: when Pub/Sub accepted the
    message; with `max_age_ms`, a signal older than that (or without a publish time) is rejected, never traded:
    redelivery after an outage, a republished dead letter."""
    try:  # prices and quantities exact: never through a float; size and nesting bounded
        payload = exact_json.loads(data, max_bytes=exact_json.EDGE_MAX_BYTES)
    except (exact_json.TooLarge, exact_json.TooDeep) as exc:
        return _reject(None, f"message data refused: {exc}", [{"field": "data", "issue": str(exc)}], message_id,
                       events, now_ms)
    except ValueError as exc:  # not JSON, not UTF-8, or an integer too long to convert
        return _reject(None, f"message data is not JSON: {exc}", [], message_id, events, now_ms)
    if not isinstance(payload, dict):
        return _reject(None, "message data must be a JSON object", [], message_id, events, now_ms)
    signal_id = payload.get("signal_id")
    log.add(signal_id=signal_id if fields.is_signal_id(signal_id) else None)  # never logged unless a valid id
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
    log.add(order_id=order_id_for(signal.strategy_id, client_order_id_for_signal(signal.strategy_id,
                                                                                 signal.signal_id)))
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


def deliver(data: bytes, message_id: str, *, service: OrderService, events: EventPublisher,
            now_ms: Callable[[], int], transient: Callable[[BaseException], bool], **intake_kw) -> Outcome:
    """One delivery of a signal message, every failure answered: ``intake`` (with `intake_kw`); a `transient`
    failure (a dependency's passing trouble) is logged and raised, so Pub/Sub delivers the message again; any other
    is logged with its stack trace and answered by ``crashed`` (rejected and acknowledged). Call inside
    ``log.bind(message_id=...)``: the signal's and the order's ids join every line as intake learns them."""
    try:
        return intake(data, message_id, service=service, events=events, now_ms=now_ms, **intake_kw)
    except Exception as exc:  # noqa: BLE001 (every failure is answered: redelivered, or rejected)
        if transient(exc):
            logger.warning("signal deferred: %s; Pub/Sub delivers it again", type(exc).__name__, exc_info=exc)
            raise
        logger.error("signal crashed intake: rejected and acknowledged", exc_info=exc)
        return crashed(message_id, exc, events=events, now_ms=now_ms)


def crashed(message_id: str, exc: BaseException, *, events: EventPublisher, now_ms: Callable[[], int]) -> Outcome:
    """Answer a delivery whose intake raised something no retry can cure (a defect, or an input no rule caught):
    a ``rejected`` event naming the message and the error's kind, so the message is acknowledged rather than
    crashing every delivery until it is dead-lettered. The caller has logged the stack trace."""
    signal_id = log.current().get("signal_id")
    reason = f"internal error ({type(exc).__name__}); the service logs have it under message_id {message_id}"
    return _reject({"signal_id": signal_id} if signal_id else None, reason,
                   [{"field": "message", "issue": "internal error"}], message_id, events, now_ms)
