"""The dead man's switches in Firestore, the durable record: one document per strategy (and the global switch)
in collection ``dms_switches``, changed only in transactions (a firing and a heartbeat racing on one switch
cannot lose either).

Document ids are ``s:`` plus the percent-encoded strategy id (a strategy id may hold ``/`` or look like a
reserved ``__x__`` id); the document keeps the id itself in ``strategy_id``. Every call is bounded (a few
seconds) and any failure is raised as SwitchStateUnavailable, so callers fail closed and fast rather than
waiting out the client's default retry deadline.
"""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import quote

from google.api_core import retry as retries
from google.api_core.exceptions import GoogleAPIError
from google.cloud import firestore

from shared.app.dms import SwitchChange, SwitchStateUnavailable
from shared.domain.dms import Switch

SWITCHES = "dms_switches"
TIMEOUT_S = 3.0
_RETRY = retries.Retry(initial=0.05, maximum=0.5, multiplier=2, timeout=TIMEOUT_S)
FIELDS = ("strategy_id", "timeout_ms", "last_heartbeat_ms", "halted_at_ms", "reason", "sweep_before_ms")


def doc_id(strategy_id: str) -> str:
    return "s:" + quote(strategy_id, safe="")


def _switch(data: dict) -> Switch:
    return Switch(**{k: data.get(k) for k in FIELDS})


class FirestoreSwitches:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db
        self._col = db.collection(SWITCHES)

    def all(self) -> dict[str, Switch]:
        try:
            docs = list(self._col.stream(timeout=TIMEOUT_S, retry=_RETRY))
        except (GoogleAPIError, ValueError) as exc:
            raise SwitchStateUnavailable(f"dead man's switch state unreadable (Firestore: {exc})") from exc
        return {s.strategy_id: s for s in (_switch(d.to_dict()) for d in docs)}

    def many(self, strategy_ids: list[str]) -> dict[str, Switch]:
        refs = [self._col.document(doc_id(i)) for i in dict.fromkeys(strategy_ids)]
        try:
            snaps = list(self._db.get_all(refs, timeout=TIMEOUT_S, retry=_RETRY))
        except (GoogleAPIError, ValueError) as exc:
            raise SwitchStateUnavailable(f"dead man's switch state unreadable (Firestore: {exc})") from exc
        return {s.strategy_id: s for s in (_switch(snap.to_dict()) for snap in snaps if snap.exists)}

    def update(self, strategy_id: str, change: SwitchChange) -> Switch | None:
        ref = self._col.document(doc_id(strategy_id))

        @firestore.transactional
        def run(txn: firestore.Transaction) -> Switch | None:
            snap = ref.get(transaction=txn, timeout=TIMEOUT_S)
            current = _switch(snap.to_dict()) if snap.exists else None
            updated = change(current)
            if updated is None or updated == current:
                return current
            txn.set(ref, asdict(updated))
            return updated

        try:
            return run(self._db.transaction(max_attempts=20))
        except (GoogleAPIError, ValueError) as exc:
            raise SwitchStateUnavailable(f"dead man's switch state not written (Firestore: {exc})") from exc
