"""The ports the use cases talk through. Infrastructure adapters implement them; unit tests may fake them.

The use cases never import a client library: they see these protocols only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.domain.orders import Order, OrderEvent
from shared.domain.reconcile import ReconcileTask

Change = Callable[[Order], tuple[Order, list[OrderEvent]]]


class OrderNotFound(LookupError):
    pass


class Contended(RuntimeError):
    """A transaction on one order kept being aborted by concurrent writers: nothing of it was written. Safe to
    try again (HTTP 503 with Retry-After; a task is retried by its queue)."""


@dataclass(frozen=True)
class Page:
    orders: list[Order]
    cursor: str | None


class OrderStore(Protocol):
    """The durable record (Firestore wins any disagreement). Every change is one transaction: the order, its new
    version and its new events (the outbox) are written together."""

    def create(self, order: Order, events: Sequence[OrderEvent]) -> tuple[Order, bool]:
        """Store a new order unless one with its id exists; returns (the stored order, created)."""

    def get(self, order_id: str) -> Order | None: ...

    def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        """The orders of these ids that exist (order id -> order), read by id in batches: no query, no cap."""

    def update(self, order_id: str, change: Change) -> tuple[Order, list[dict[str, Any]]]:
        """Apply `change` in a transaction. Returns the order and every event still waiting to be published
        (the outbox), oldest first."""

    def mark_published(self, order_id: str, events: Sequence[dict[str, Any]]) -> None: ...

    def list(self, filters: dict[str, Any], limit: int, cursor: str | None) -> Page: ...

    def with_pending_events(self, page: int = 500) -> Iterator[tuple[Order, list[dict[str, Any]]]]:
        """Every order with events not yet confirmed published, paged to the end."""

    def open_orders(self, page: int = 500) -> Iterator[Order]:
        """Every order not terminal, paged to the end (no cap)."""

    def open_orders_page(self, exchange: str, low: str | None, high: str | None, after: str | None,
                         limit: int) -> Page:
        """One page of the open orders of `exchange` whose ids lie in [low, high) (None: unbounded), after the
        order id `after`, in id order; `cursor` is the last id of a full page (None: nothing more). Documents
        that predate the venue keys get them on the way (so `known_venue_keys` finds them)."""

    def open_venue_keys(self, exchange: str) -> set[str]:
        """Every venue key held by an open order of `exchange`, paged to the end (one scan, no cap)."""

    def known_venue_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` (shared.domain.reconcile.venue_keys) some record holds, whatever its status."""

    def watermark(self, name: str) -> dict[str, Any]:
        """A small durable document of the reconciliation (e.g. each symbol's account-trades cursor)."""

    def save_watermark(self, name: str, value: dict[str, Any]) -> None: ...


class OrderCache(Protocol):
    """Order snapshots for fast reads; may be unavailable (the store is the truth). Order ids derive from client
    order ids (and those from signal ids), so a cached snapshot is also the idempotency key of its request."""

    def get(self, order_id: str) -> Order | None: ...

    def put(self, order: Order) -> None: ...

    def count_miss(self, order_id: str) -> int | None:
        """Count one more "venue cannot find it" answer; None when the count is unavailable."""


class EventPublisher(Protocol):
    def publish_events(self, events: Sequence[dict[str, Any]]) -> int:
        """Publish in order; returns how many (from the first) were accepted by the bus."""

    def publish_notice(self, payload: dict[str, Any]) -> None:
        """A message that is not an order's transition (a rejected signal, a dead man's switch firing)."""


class Scheduler(Protocol):
    def submit(self, order_id: str, attempt: int, delay_s: float, key: str = "", *, venue: str) -> None:
        """A submission task, named by order id and attempt (and `key`, for a second task at one attempt: the
        sweep's resubmission of a lost one), so a repeated schedule makes no second task; on the venue's own
        queue (a slow venue delays only its own orders)."""

    def sync(self, order_id: str, attempt: int, delay_s: float, chain: int | None = None) -> None:
        """A sync task. `chain`: the generation of the order's one self-rescheduling chain it belongs to (named
        by it, so a repeat is refused); None: a one-off check that never reschedules itself."""

    def reconcile(self, task: ReconcileTask, delay_s: float = 0) -> None:
        """A reconciliation task of the sweep's fan-out, named by ``task.name`` (a repeat is refused)."""

    def slice(self, order_id: str, slice_index: int, delay_s: float, key: str = "") -> None:
        """Run slice `slice_index` of a parent. Tasks are named by order id and index (and `key`, for a second
        task at one index: a resume, a poll of a closed parent), so a repeated schedule makes no second task."""


class Metrics(Protocol):
    def order_event(self, status: str, venue: str, strategy: str) -> None: ...

    def observe(self, name: str, value: float, **labels: str) -> None: ...

    def count(self, name: str, amount: int = 1, **labels: str) -> None: ...
