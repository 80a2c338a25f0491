"""Cloud Tasks: the submission, sync and slice work of one order, as named HTTP tasks.

Task names carry the order id and the attempt, so Cloud Tasks refuses a duplicate (ALREADY_EXISTS, taken as
success here; the local emulator refuses it too, scripts/tasks_emulator.py). A sync task of an order's
self-rescheduling chain is named by the chain's generation and attempt (``sync-ID-cGEN-N``); a one-off sync
(a user's action, the sweep) is named by the moment it was asked for and never reschedules itself. The sweep's
reconcile tasks are named by venue, shard and sweep run (shared/domain/reconcile.py). Every handler is
idempotent anyway and checks the order's state before acting. Retries of venue errors are scheduled explicitly as new attempts with their own
backoff; a handler that crashes (or cannot be reached) is retried by the queue itself, with its retry_config
(topology.QUEUE_RETRY; the local emulator applies it too).
"""

from __future__ import annotations

import json
import time
from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import tasks_v2
from google.protobuf import timestamp_pb2

from shared.domain.reconcile import ReconcileTask
from shared.infra.config import Settings


class TasksScheduler:
    def __init__(self, client: tasks_v2.CloudTasksClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def _enqueue(self, queue: str, url: str | None, name: str, payload: dict[str, Any], delay_s: float) -> None:
        if not url:
            raise RuntimeError(f"no function URL configured for queue {queue}")
        request: dict[str, Any] = {
            "http_method": tasks_v2.HttpMethod.POST,
            "url": url,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(payload).encode(),
        }
        if self._settings.tasks_service_account:
            request["oidc_token"] = {"service_account_email": self._settings.tasks_service_account, "audience": url}
        task: dict[str, Any] = {"name": f"{self._settings.queue_path(queue)}/tasks/{name}", "http_request": request}
        if delay_s > 0:
            ts = timestamp_pb2.Timestamp()
            ts.FromNanoseconds(time.time_ns() + int(delay_s * 1e9))
            task["schedule_time"] = ts
        try:
            self._client.create_task(parent=self._settings.queue_path(queue), task=task, timeout=10)
        except AlreadyExists:
            pass  # this attempt is scheduled already

    def submit(self, order_id: str, attempt: int, delay_s: float, key: str = "", *, venue: str) -> None:
        if not venue:
            raise ValueError(f"submit of {order_id}: no venue to choose its queue by")
        self._enqueue(self._settings.submit_queue_for(venue), self._settings.submit_function_url,
                      f"submit-{order_id}-{attempt}" + (f"-{key}" if key else ""),
                      {"order_id": order_id, "attempt": attempt}, delay_s)

    def slice(self, order_id: str, slice_index: int, delay_s: float, key: str = "") -> None:
        self._enqueue(self._settings.slices_queue, self._settings.slices_function_url,
                      f"slice-{order_id}-{slice_index}" + (f"-{key}" if key else ""),
                      {"order_id": order_id, "slice_index": slice_index}, delay_s)

    def sync(self, order_id: str, attempt: int, delay_s: float, chain: int | None = None) -> None:
        if chain is None:
            name = f"sync-{order_id}-once-{time.time_ns()}"
        else:
            name = f"sync-{order_id}-c{chain}-{attempt}".replace("--", "-m")  # late checks have attempts < 0
        self._enqueue(self._settings.sync_queue, self._settings.sync_function_url, name,
                      {"order_id": order_id, "attempt": attempt, "chain": chain}, delay_s)

    def markout(self, name: str, body: dict[str, Any], delay_s: float) -> None:
        """A TCA markout task (shared/app/tca_pipeline.py names it: one per venue, symbol and second)."""
        self._enqueue(self._settings.tca_queue, self._settings.markouts_function_url, name, body, delay_s)

    def reconcile(self, task: ReconcileTask, delay_s: float = 0) -> None:
        self._enqueue(self._settings.reconcile_queue, self._settings.sync_function_url, task.name,
                      task.as_body(), delay_s)
