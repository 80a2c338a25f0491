"""The durable record in Firestore: one document per order (its fills inside), changed only in transactions.

Document ``orders/{order_id}``: the order's fields (see shared/infra/codec.py), ``version``, and an embedded
outbox: ``outbox`` (events not yet confirmed published, oldest first) and ``pending_events`` (their count,
indexed, so the sweep can find leftovers). A transition writes the order and its events in one transaction, so
an event can be published late (by the sweep) but never lost. After publishing, ``mark_published`` removes the
events with ArrayRemove and Increment: no read, and safe beside a concurrent writer.

Cost of one simple filled order: writes 3 (create, the venue's answer, the publish mark), reads 1 (the
transaction's read). ``usage`` counts reads and writes for the benchmark.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.app.ports import Change, OrderNotFound, Page
from shared.domain.orders import OPEN, Order, OrderEvent
from shared.infra.codec import jsonable, order_from_dict, order_to_dict

ORDERS = "orders"
Usage = Callable[[str, int], None]  # ("reads" | "writes", n)


def _event_dicts(events: Sequence[OrderEvent]) -> list[dict[str, Any]]:
    return [jsonable(e.as_message()) for e in events]


class FirestoreOrderStore:
    def __init__(self, db: firestore.Client, usage: Usage | None = None) -> None:
        self._db = db
        self._orders = db.collection(ORDERS)
        self._usage = usage or (lambda kind, n: None)

    def _doc(self, order: Order, outbox: list[dict[str, Any]]) -> dict[str, Any]:
        return {**order_to_dict(order), "outbox": outbox, "pending_events": len(outbox)}

    def create(self, order: Order, events: Sequence[OrderEvent]) -> tuple[Order, bool]:
        ref = self._orders.document(order.order_id)
        try:
            ref.create(self._doc(order, _event_dicts(events)))
            self._usage("writes", 1)
            return order, True
        except AlreadyExists:
            existing = self.get(order.order_id)
            if existing is None:  # deleted in between: not something this service does
                raise
            return existing, False

    def get(self, order_id: str) -> Order | None:
        snap = self._orders.document(order_id).get()
        self._usage("reads", 1)
        return order_from_dict(snap.to_dict()) if snap.exists else None

    def update(self, order_id: str, change: Change) -> tuple[Order, list[dict[str, Any]]]:
        ref = self._orders.document(order_id)

        @firestore.transactional
        def run(txn: firestore.Transaction) -> tuple[Order, list[dict[str, Any]]]:
            snap = ref.get(transaction=txn)
            self._usage("reads", 1)
            if not snap.exists:
                raise OrderNotFound(order_id)
            data = snap.to_dict()
            current = order_from_dict(data)
            outbox = list(data.get("outbox") or [])
            updated, events = change(current)
            outbox += _event_dicts(events)
            if updated == current and len(outbox) == len(data.get("outbox") or []):
                return current, outbox  # nothing changed: no write
            txn.set(ref, self._doc(updated, outbox))
            self._usage("writes", 1)
            return updated, outbox

        return run(self._db.transaction())

    def mark_published(self, order_id: str, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        self._orders.document(order_id).update({
            "outbox": firestore.ArrayRemove(list(events)),
            "pending_events": firestore.Increment(-len(events)),
        })
        self._usage("writes", 1)

    def list(self, filters: dict[str, Any], limit: int, cursor: str | None) -> Page:
        query = self._orders
        for name in ("status", "strategy_id", "signal_id", "symbol", "exchange", "parent_id"):
            if filters.get(name) is not None:
                query = query.where(filter=FieldFilter(name, "==", filters[name]))
        if filters.get("created_after") is not None:
            query = query.where(filter=FieldFilter("created_at", ">", filters["created_after"]))
        if filters.get("created_before") is not None:
            query = query.where(filter=FieldFilter("created_at", "<", filters["created_before"]))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
            "order_id", direction=firestore.Query.DESCENDING)
        if cursor:
            created_at, order_id = _decode_cursor(cursor)
            query = query.start_after({"created_at": created_at, "order_id": order_id})
        docs = list(query.limit(limit + 1).stream())
        self._usage("reads", max(1, len(docs)))
        orders = [order_from_dict(d.to_dict()) for d in docs[:limit]]
        more = len(docs) > limit
        return Page(orders, _encode_cursor(orders[-1]) if more and orders else None)

    def with_pending_events(self, limit: int) -> list[tuple[Order, list[dict[str, Any]]]]:
        docs = list(self._orders.where(filter=FieldFilter("pending_events", ">", 0)).limit(limit).stream())
        self._usage("reads", max(1, len(docs)))
        return [(order_from_dict(d.to_dict()), d.to_dict().get("outbox") or []) for d in docs]

    def open_orders(self, limit: int) -> list[Order]:
        statuses = sorted(s.value for s in OPEN)
        docs = list(self._orders.where(filter=FieldFilter("status", "in", statuses)).limit(limit).stream())
        self._usage("reads", max(1, len(docs)))
        return [order_from_dict(d.to_dict()) for d in docs]


def _encode_cursor(order: Order) -> str:
    return base64.urlsafe_b64encode(json.dumps([order.created_at, order.order_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(created_at), str(order_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor this service returned") from exc
