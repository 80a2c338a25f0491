"""The TCA pipeline's documents in Firestore: ``tca/{order_id}``, one per order (shared/app/tca_pipeline.py
``TcaDoc``; a top-level order's also holds its row), changed only in transactions.

Indexed fields Firestore keeps by itself (single-field indexes, no composite index needed): ``pending`` (an array:
the markout tasks find their documents with ``array-contains``) and ``row_at`` (the order's end once its row is
published: the aggregates read a time range of rows, ordered by it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.app.ports import Contended
from shared.app.tca_pipeline import DOC, TcaDoc
from shared.infra.store import GET_MANY_BATCH, TXN_ATTEMPTS, TXN_BUDGET_S, Usage, contended_as_such

TCA = "tca"
PAGE = 300


class FirestoreTcaStore:
    def __init__(self, db: firestore.Client, usage: Usage | None = None) -> None:
        self._db = db
        self._docs = db.collection(TCA)
        self._usage = usage or (lambda kind, n: None)

    def get(self, order_id: str) -> TcaDoc | None:
        snap = self._docs.document(order_id).get()
        self._usage("reads", 1)
        return DOC.validate_python(snap.to_dict()) if snap.exists else None

    def get_many(self, order_ids: Sequence[str]) -> list[TcaDoc]:
        docs: list[TcaDoc] = []
        ids = list(dict.fromkeys(order_ids))
        for start in range(0, len(ids), GET_MANY_BATCH):
            refs = [self._docs.document(i) for i in ids[start:start + GET_MANY_BATCH]]
            docs += [DOC.validate_python(snap.to_dict()) for snap in self._db.get_all(refs) if snap.exists]
            self._usage("reads", len(refs))
        return docs

    def update(self, order_id: str, change: Callable[[TcaDoc | None], TcaDoc | None]) -> TcaDoc | None:
        ref = self._docs.document(order_id)
        started, attempts = time.monotonic(), [0]

        @firestore.transactional
        def run(txn: firestore.Transaction) -> TcaDoc | None:
            attempts[0] += 1
            if attempts[0] > 1 and time.monotonic() - started > TXN_BUDGET_S:
                raise Contended(f"tca {order_id}: transaction aborted by concurrent writers for {TXN_BUDGET_S:.0f} s")
            snap = ref.get(transaction=txn)
            self._usage("reads", 1)
            current = DOC.validate_python(snap.to_dict()) if snap.exists else None
            updated = change(current)
            if updated is None:
                return current
            txn.set(ref, DOC.dump_python(updated, mode="json"))
            self._usage("writes", 1)
            return updated

        return contended_as_such(order_id, lambda: run(self._db.transaction(max_attempts=TXN_ATTEMPTS)))

    def due(self, key: str) -> Iterator[TcaDoc]:
        query = self._docs.where(filter=FieldFilter("pending", "array_contains", key)).order_by(
            FieldPath.document_id())
        last = None
        while True:
            q = query.limit(PAGE) if last is None else query.start_after(last).limit(PAGE)
            docs = list(q.stream())
            self._usage("reads", max(1, len(docs)))
            for d in docs:
                yield DOC.validate_python(d.to_dict())
            if len(docs) < PAGE:
                return
            last = docs[-1]

    def rows(self, since_ms: int, until_ms: int, limit: int) -> list[dict[str, Any]]:
        """The published rows of the orders that ended in [since_ms, until_ms), oldest first, at most `limit`
        (the caller asks for one more than it accepts, to know the window holds too many)."""
        query = (self._docs.where(filter=FieldFilter("row_at", ">=", since_ms))
                 .where(filter=FieldFilter("row_at", "<", until_ms)).order_by("row_at")
                 .order_by(FieldPath.document_id()).select(["row", "row_at"]))
        rows: list[dict[str, Any]] = []
        last = None
        while len(rows) < limit:
            size = min(PAGE * 3, limit - len(rows))
            q = query.limit(size) if last is None else query.start_after(last).limit(size)
            docs = list(q.stream())
            self._usage("reads", max(1, len(docs)))
            rows += [row for d in docs if (row := (d.to_dict() or {}).get("row"))]
            if len(docs) < size:
                break
            last = docs[-1]
        return rows
