"""Durable record in Firestore (the store port's adapter)."""

from __future__ import annotations

from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

SIGNALS = "signals"


class FirestoreStore:
    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def create_signal(self, signal_id: str, record: dict[str, Any]) -> bool:
        try:
            self._db.collection(SIGNALS).document(signal_id).create(record)
        except AlreadyExists:
            return False
        return True
