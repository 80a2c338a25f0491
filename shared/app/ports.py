"""The ports the use cases talk through. Infrastructure adapters implement them; unit tests may fake them.

The use cases never import a client library: they see these protocols only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.domain.orders import Order, OrderEvent

Change = Callable[[Order], tuple[Order, list[OrderEvent]]]


class OrderNotFound(LookupError):
    pass


class Contended(RuntimeError):
    """A store transaction on one order could not commit in its attempts: other writers kept the order busy.
    Nothing of that change was written; the caller may try again (work already sent to a venue is completed
    by whoever next finds its intent)."""


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
    def submit(self, order_id: str, attempt: int, delay_s: float) -> None: ...

    def sync(self, order_id: str, attempt: int, delay_s: float) -> None: ...

    def slice(self, order_id: str, slice_index: int, delay_s: float, key: str = "") -> None:
        """Run slice `slice_index` of a parent. Tasks are named by order id and index (and `key`, for a second
        task at one index: a resume, a poll of a closed parent), so a repeated schedule makes no second task."""


class Metrics(Protocol):
    def order_event(self, status: str, venue: str, strategy: str) -> None: ...

    def observe(self, name: str, value: float, **labels: str) -> None: ...

    def count(self, name: str, amount: int = 1, **labels: str) -> None: ...
