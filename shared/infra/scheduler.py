"""Cloud Tasks: the submission, sync and slice work of one order, as named HTTP tasks.

Task names carry the order id and the attempt, so production Cloud Tasks refuses a duplicate (ALREADY_EXISTS,
taken as success here). The local emulator accepts duplicates; every handler is idempotent anyway and checks the
order's state before acting. Retries of venue errors are scheduled explicitly as new attempts with their own
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

    def submit(self, order_id: str, attempt: int, delay_s: float) -> None:
        self._enqueue(self._settings.submit_queue, self._settings.submit_function_url, f"submit-{order_id}-{attempt}",
                      {"order_id": order_id, "attempt": attempt}, delay_s)

    def slice(self, order_id: str, slice_index: int, delay_s: float, key: str = "") -> None:
        self._enqueue(self._settings.slices_queue, self._settings.slices_function_url,
                      f"slice-{order_id}-{slice_index}" + (f"-{key}" if key else ""),
                      {"order_id": order_id, "slice_index": slice_index}, delay_s)

    def sync(self, order_id: str, attempt: int, delay_s: float) -> None:
        self._enqueue(self._settings.sync_queue, self._settings.sync_function_url, f"sync-{order_id}-{attempt}",
                      {"order_id": order_id, "attempt": attempt}, delay_s)
