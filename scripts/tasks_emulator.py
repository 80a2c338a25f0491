"""Launch gcloud-tasks-emulator (run with .venv-tasks/bin/python), dispatching like Cloud Tasks does.

Two emulator artefacts are corrected, both of which production Cloud Tasks does not have:
- it looks at each queue every 100 ms, so every task waited ~50 ms on average before dispatch; here every 10 ms
  (TASKS_EMULATOR_POLL_S sets it);
- it dispatches one task per queue at a time, waiting for each answer, so one slow task delays every other task
  of its queue (concurrent algorithms' slices queued behind each other). Cloud Tasks dispatches due tasks
  concurrently (up to the queue's max_concurrent_dispatches); here up to TASKS_EMULATOR_CONCURRENCY (32) at once.
A task answered 4xx/5xx goes back to the queue, as the emulator does (the service schedules its own backoff).
Arguments go to the emulator.
"""

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from urllib import error

import gcloud_tasks_emulator.server as server
from gcloud_tasks_emulator.__main__ import main
from google.cloud.tasks_v2.types import Queue

logger = logging.getLogger("gcloud-tasks-emulator")
POLL_S = float(os.environ.get("TASKS_EMULATOR_POLL_S", "0.01"))
POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("TASKS_EMULATOR_CONCURRENCY", "32")),
                          thread_name_prefix="dispatch")
LOCK = threading.Lock()  # taking due tasks off a queue's list (the API threads append to it)

server._LOOP_SLEEP_TIME = POLL_S


def _dispatch(state: server.QueueState, queue: str, task) -> None:
    task.dispatch_count += 1
    try:
        status = server._make_task_request(queue, task, state._target_host, state._target_port).status
    except error.HTTPError as e:
        status = e.code
    except Exception as e:  # noqa: BLE001 (any failure to deliver is a failed attempt, as in the emulator)
        logger.error("[TASKS] Error submitting task %s: %s: %s", task.name, type(e).__name__, e)
        status = 500
    if 400 <= status < 600:
        if state._max_retries < 0 or task.dispatch_count <= state._max_retries:
            state._queue_tasks[queue].append(task)
        else:
            logger.info("[TASKS] Giving up failed task %s", task.name)


def _process_queue(self: server.Processor, queue: str) -> None:
    state = self._state
    while self._is_running.is_set():
        if queue not in state._queues or queue not in state._queue_tasks:
            break
        if state.queue(queue).state == Queue.State.RUNNING:
            now = datetime.now(timezone.utc)
            with LOCK:
                tasks = state._queue_tasks[queue]
                due = [t for t in tasks if not t.schedule_time or t.schedule_time < now]
                for t in due:
                    tasks.remove(t)
            for t in due:
                POOL.submit(_dispatch, state, queue, t)
        time.sleep(POLL_S)


server.Processor._process_queue = _process_queue

if __name__ == "__main__":
    main()
