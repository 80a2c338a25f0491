"""The durable record in Firestore: one document per order (its fills inside), changed only in transactions.

Document ``orders/{order_id}``: the order's fields (see shared/infra/codec.py), ``version``, and an embedded
outbox: ``outbox`` (events not yet confirmed published, oldest first) and ``pending_events`` (their count,
indexed, so the sweep can find leftovers). A transition writes the order and its events in one transaction, so
an event can be published late (by the sweep) but never lost. After publishing, ``mark_published`` removes the
events in a transaction that recomputes ``pending_events`` from what is left, so two writers publishing the same
events never count them twice (the counter can never go negative).

Cost of one simple filled order: writes 3 (create, the placement intent, the venue's answer; the publish mark
of the answer's events adds a fourth write when they are published), reads: one per transaction. ``usage`` counts reads and writes for the benchmark.

Reconciliation: ``venue_keys`` (an indexed array, shared/domain/reconcile.py ``venue_keys``) names every venue
order of the order by exchange and client id or venue order id, so a venue order or trade is mapped to its record
with ``array-contains-any`` queries. Shards are ranges of document ids (no field). Collection ``reconcile`` holds
small watermark documents (each venue's account-trades cursors).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from google.api_core.exceptions import Aborted, AlreadyExists
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.app.ports import Change, Contended, OrderNotFound, Page
from shared.domain.orders import OPEN, Order, OrderEvent
from shared.domain.reconcile import record_keys as keys_of
from shared.infra.codec import jsonable, order_from_dict, order_to_dict

ORDERS = "orders"
WATERMARKS = "reconcile"
KEYS_PER_QUERY = 30  # Firestore's limit of values in one array-contains-any filter
# Attempts of one transaction before its abort reaches the caller (the client's default is 5; the emulator
# locks pessimistically, so contention on one order is common in tests and under load).
TXN_ATTEMPTS = 20
# A transaction that keeps being aborted gives up after this long (Contended: a 503 the client retries), so one
# hot order cannot hold a request, or a worker thread, for minutes.
TXN_BUDGET_S = 10.0
# Between attempts of an aborted transaction, a random pause up to 10 ms doubling to 1 s ("full jitter"), and one
# transaction per order at a time in a process (_transact). The client retries at once, which is right for
# Firestore (a retry keeps its place in line) but not for the emulator, which aborts the lock holder for each
# newcomer: 30 writers on one order at once committed 2 in 129 s (livelocked; in CI a DELETE among 20 PUTs was
# answered 503 for its client's whole 120 s patience), and all 30 in 42 s from three processes with both
# (tests/integration/test_store_contention.py).
TXN_PAUSE_FIRST_S, TXN_PAUSE_CAP_S = 0.01, 1.0

OPEN_STATUSES = sorted(s.value for s in OPEN)  # the `in` filter of every open-orders query
GET_MANY_BATCH = 100  # documents per batched read (get_all)
LOCK_STRIPES = 256  # in-process locks an order's transactions take by hash of its id
Usage = Callable[[str, int], None]  # ("reads" | "writes", n)


def retry_pause(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait before attempt number `attempt` (1 is the first: no wait) of an aborted transaction."""
    if attempt <= 1:
        return 0.0
    return draw() * min(TXN_PAUSE_CAP_S, TXN_PAUSE_FIRST_S * 2 ** (attempt - 2))


def _event_dicts(events: Sequence[OrderEvent]) -> list[dict[str, Any]]:
    return [jsonable(e.as_message()) for e in events]


class FirestoreOrderStore:
    def __init__(self, db: firestore.Client, usage: Usage | None = None) -> None:
        self._db = db
        self._orders = db.collection(ORDERS)
        self._usage = usage or (lambda kind, n: None)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def _doc(self, order: Order, outbox: list[dict[str, Any]]) -> dict[str, Any]:
        return {**order_to_dict(order), "outbox": outbox, "pending_events": len(outbox),
                "venue_keys": keys_of(order)}

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

    def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        out: dict[str, Order] = {}
        ids = list(dict.fromkeys(order_ids))
        for start in range(0, len(ids), GET_MANY_BATCH):
            refs = [self._orders.document(i) for i in ids[start:start + GET_MANY_BATCH]]
            for snap in self._db.get_all(refs):
                if snap.exists:
                    out[snap.id] = order_from_dict(snap.to_dict())
            self._usage("reads", len(refs))
        return out

    def update(self, order_id: str, change: Change) -> tuple[Order, list[dict[str, Any]]]:
        ref = self._orders.document(order_id)

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

        return self._transact(order_id, run)

    def mark_published(self, order_id: str, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        ref = self._orders.document(order_id)
        sent = {(e.get("order_id"), e.get("sequence"), e.get("status")) for e in events}

        def run(txn: firestore.Transaction) -> None:
            snap = ref.get(transaction=txn, field_paths=["outbox"])
            self._usage("reads", 1)
            if not snap.exists:
                return
            outbox = list((snap.to_dict() or {}).get("outbox") or [])
            left = [e for e in outbox if (e.get("order_id"), e.get("sequence"), e.get("status")) not in sent]
            if len(left) == len(outbox):
                return  # another writer marked them already
            txn.update(ref, {"outbox": left, "pending_events": len(left)})
            self._usage("writes", 1)

        self._transact(order_id, run)

    def _transact(self, order_id: str, body: Callable[[firestore.Transaction], Any]) -> Any:
        """`body` in a transaction on one order: one at a time per order in this process (threads of one instance
        queue here instead of aborting each other at the database; other instances still meet there), a random
        pause before each retry, Contended once aborted for TXN_BUDGET_S."""
        started, attempts = time.monotonic(), [0]

        @firestore.transactional
        def run(txn: firestore.Transaction) -> Any:
            attempts[0] += 1
            if attempts[0] > 1 and time.monotonic() - started > TXN_BUDGET_S:  # aborted, and for too long
                raise Contended(f"order {order_id}: transaction aborted by concurrent writers for "
                                f"{TXN_BUDGET_S:.0f} s")
            time.sleep(retry_pause(attempts[0]))  # before the read: nothing is locked yet
            return body(txn)

        lock = self._locks[zlib.crc32(order_id.encode()) % len(self._locks)]
        if not lock.acquire(timeout=TXN_BUDGET_S):
            raise Contended(f"order {order_id}: {TXN_BUDGET_S:.0f} s behind this instance's other writers to it")
        try:
            return contended_as_such(order_id, lambda: run(self._db.transaction(max_attempts=TXN_ATTEMPTS)))
        finally:
            lock.release()

    def list(self, filters: dict[str, Any], limit: int, cursor: str | None) -> Page:
        query = self._orders
        for name in ("status", "strategy_id", "signal_id", "symbol", "exchange", "parent_id"):
            if filters.get(name) is not None:
                query = query.where(filter=FieldFilter(name, "==", filters[name]))
        if filters.get("strategy_ids") is not None:  # a scoped API key's strategies (at most 30: one `in`)
            query = query.where(filter=FieldFilter("strategy_id", "in", list(filters["strategy_ids"])))
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

    def _pages(self, query: firestore.Query, page: int) -> Iterator[firestore.DocumentSnapshot]:
        """Every document the query matches, `page` at a time, ordered by document id (a cursor, no cap)."""
        query = query.order_by(FieldPath.document_id())
        last = None
        while True:
            q = query.limit(page) if last is None else query.start_after(last).limit(page)
            docs = list(q.stream())
            self._usage("reads", max(1, len(docs)))
            yield from docs
            if len(docs) < page:
                return
            last = docs[-1]

    def with_pending_events(self, page: int = 500) -> Iterator[tuple[Order, list[dict[str, Any]]]]:
        query = self._orders.where(filter=FieldFilter("pending_events", ">", 0)).order_by("pending_events")
        for d in self._pages(query, page):
            data = d.to_dict()
            yield order_from_dict(data), data.get("outbox") or []

    def open_orders(self, page: int = 500) -> Iterator[Order]:
        for d in self._pages(self._orders.where(filter=FieldFilter("status", "in", OPEN_STATUSES)), page):
            yield order_from_dict(d.to_dict())

    def open_orders_page(self, exchange: str, low: str | None, high: str | None, after: str | None,
                         limit: int) -> Page:
        query = (self._orders.where(filter=FieldFilter("exchange", "==", exchange))
                 .where(filter=FieldFilter("status", "in", OPEN_STATUSES)))
        doc_id = FieldPath.document_id()
        start = max(x for x in (low, after) if x is not None) if (low or after) else None
        if start is not None:
            op = ">" if after is not None and start == after else ">="
            query = query.where(filter=FieldFilter(doc_id, op, self._orders.document(start)))
        if high is not None:
            query = query.where(filter=FieldFilter(doc_id, "<", self._orders.document(high)))
        docs = list(query.order_by(doc_id).limit(limit).stream())
        self._usage("reads", max(1, len(docs)))
        orders = []
        for d in docs:
            data = d.to_dict()
            order = order_from_dict(data)
            if "venue_keys" not in data:  # written before venue keys existed: add them (only ever adds)
                d.reference.update({"venue_keys": firestore.ArrayUnion(keys_of(order))})
                self._usage("writes", 1)
            orders.append(order)
        return Page(orders, orders[-1].order_id if len(docs) == limit and orders else None)

    def open_venue_keys(self, exchange: str, page: int = 500) -> set[str]:
        query = (self._orders.where(filter=FieldFilter("exchange", "==", exchange))
                 .where(filter=FieldFilter("status", "in", OPEN_STATUSES)).select(["venue_keys"]))
        return {k for d in self._pages(query, page) for k in (d.to_dict() or {}).get("venue_keys") or []}

    def known_venue_keys(self, keys: Sequence[str]) -> set[str]:
        wanted = sorted(set(keys))
        found: set[str] = set()
        for i in range(0, len(wanted), KEYS_PER_QUERY):
            batch = wanted[i:i + KEYS_PER_QUERY]
            query = self._orders.where(filter=FieldFilter("venue_keys", "array_contains_any", batch))
            docs = list(query.select(["venue_keys"]).stream())
            self._usage("reads", max(1, len(docs)))
            for d in docs:
                found.update(set((d.to_dict() or {}).get("venue_keys") or []) & set(batch))
        return found

    def watermark(self, name: str) -> dict[str, Any]:
        snap = self._db.collection(WATERMARKS).document(name).get()
        self._usage("reads", 1)
        return (snap.to_dict() or {}) if snap.exists else {}

    def save_watermark(self, name: str, value: dict[str, Any]) -> None:
        self._db.collection(WATERMARKS).document(name).set(value)
        self._usage("writes", 1)


def contended_as_such(order_id: str, attempt: Callable[[], Any]) -> Any:
    """The client gives up an aborted transaction with a bare ValueError (its cause the last Aborted): say what it
    is, so the caller can answer 503 / let the queue retry, and not mistake it for a defect."""
    try:
        return attempt()
    except ValueError as exc:
        if isinstance(exc.__cause__, Aborted):
            raise Contended(f"order {order_id}: transaction aborted {TXN_ATTEMPTS} times by concurrent writers") \
                from exc
        raise


def _encode_cursor(order: Order) -> str:
    return base64.urlsafe_b64encode(json.dumps([order.created_at, order.order_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(created_at), str(order_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor this service returned") from exc
