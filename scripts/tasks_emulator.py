"""Launch gcloud-tasks-emulator (run with .venv-tasks/bin/python), dispatching and retrying like Cloud Tasks does.

Emulator artefacts corrected here, none of which production Cloud Tasks has:
- it looks at each queue every 100 ms, so every task waited ~50 ms on average before dispatch; here every 10 ms
  (TASKS_EMULATOR_POLL_S sets it);
- it dispatches one task per queue at a time, waiting for each answer, so one slow task delays every other task
  of its queue (concurrent algorithms' slices queued behind each other). Cloud Tasks dispatches due tasks
  concurrently (up to the queue's max_concurrent_dispatches); here up to TASKS_EMULATOR_CONCURRENCY (32) at once;
- it ignores the queue's retry_config and retries a failed task every poll (against a dead function it gave a
  task up after ~100 ms). Here a failed attempt (connection refused, no answer within the dispatch deadline, any
  status but 2xx) is retried as Cloud Tasks does: after min_backoff, doubling max_doublings times, then growing
  linearly up to max_backoff, until max_attempts (-1: no limit) and max_retry_duration (0: none) are both
  reached. Unset fields take Cloud Tasks' defaults (100 attempts, 0.1 s, 3600 s, 16 doublings). A task waiting
  for its retry stays in the queue (ListTasks shows it, schedule_time is its next attempt) and holds no dispatch
  worker. The emulator's own `-r` option is ignored;
- it sends X-CloudTasks-TaskExecutionCount equal to the retry count and the queue's full resource name as
  X-CloudTasks-QueueName. Here, as in production: QueueName is the queue id, TaskRetryCount the attempts before
  this one, TaskExecutionCount those that got an answer other than 5xx, TaskPreviousResponse the previous
  attempt's HTTP status (when it had one);
- it waits for an answer forever. Here an attempt ends at the task's dispatch_deadline (Cloud Tasks' default for
  HTTP targets, 10 min, when unset; TASKS_EMULATOR_DISPATCH_DEADLINE_S overrides that default);
- it accepts a second task with a name already used. Cloud Tasks refuses it (ALREADY_EXISTS) while the task
  exists and for about an hour after it ran or was deleted; here too, for TASKS_EMULATOR_NAME_TTL_S (3600 s),
  so named tasks (an order's sync chain, the sweep's reconcile tasks) deduplicate locally as in the cloud.
Arguments go to the emulator.
"""

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib import error, request

import gcloud_tasks_emulator.server as server
from google.api_core.exceptions import AlreadyExists
from gcloud_tasks_emulator.__main__ import main
from google.cloud.tasks_v2.types import Attempt, Queue, Task

logger = logging.getLogger("gcloud-tasks-emulator")
POLL_S = float(os.environ.get("TASKS_EMULATOR_POLL_S", "0.01"))
DISPATCH_DEADLINE_S = float(os.environ.get("TASKS_EMULATOR_DISPATCH_DEADLINE_S", "600"))
NAME_TTL_S = float(os.environ.get("TASKS_EMULATOR_NAME_TTL_S", "3600"))
NAMES: dict[str, float] = {}  # task name -> when it was created (a name is not reused within NAME_TTL_S)
POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("TASKS_EMULATOR_CONCURRENCY", "32")),
                          thread_name_prefix="dispatch")
# Every change to a queue's task list (the API threads create and purge, the pollers take due tasks off, the
# dispatchers put failed ones back) happens under this lock.
LOCK = threading.Lock()

server._LOOP_SLEEP_TIME = POLL_S


@dataclass
class Retry:
    max_attempts: int
    min_backoff_s: float
    max_backoff_s: float
    max_doublings: int
    max_retry_duration_s: float

    @classmethod
    def of(cls, queue: Queue) -> "Retry":
        """The queue's retry_config, with Cloud Tasks' defaults for what it leaves unset."""
        rc = queue.retry_config
        return cls(max_attempts=rc.max_attempts or 100,
                   min_backoff_s=rc.min_backoff.total_seconds() or 0.1,
                   max_backoff_s=rc.max_backoff.total_seconds() or 3600.0,
                   max_doublings=rc.max_doublings or 16,
                   max_retry_duration_s=rc.max_retry_duration.total_seconds())

    def backoff_s(self, retry: int) -> float:
        """The wait before retry number `retry` (0: the first retry): 10, 20, 40, 80, 160, 240, 300, 300 s for
        min 10 s, max 300 s, 3 doublings (Cloud Tasks' own example)."""
        if retry <= self.max_doublings:
            wait = self.min_backoff_s * 2 ** retry
        else:
            wait = self.min_backoff_s * 2 ** self.max_doublings * (retry - self.max_doublings + 1)
        return min(wait, self.max_backoff_s)

    def exhausted(self, attempts: int, since_first_s: float) -> bool:
        attempts_done = 0 <= self.max_attempts <= attempts
        time_done = self.max_retry_duration_s <= 0 or since_first_s >= self.max_retry_duration_s
        return attempts_done and time_done


@dataclass
class Meta:
    """What the emulator's Task message does not keep: when the task is due, and its attempts so far."""

    task: Task  # held, so id(task) stays unique while this entry lives
    queue: str
    due: float  # epoch seconds
    first_attempt: float | None = None
    executions: int = 0  # attempts answered with anything but 5xx
    previous_status: int | None = None


META: dict[int, Meta] = {}


def _meta(task: Task, queue: str) -> Meta:
    m = META.get(id(task))
    if m is None or m.task is not task:
        when = task.schedule_time
        if not when or when.timestamp() <= 0:
            when = datetime.now(timezone.utc)
            task.schedule_time = when  # as Cloud Tasks sets it: the creation time
        m = META[id(task)] = Meta(task, queue, when.timestamp())
    return m


def _forget(queue: str) -> None:
    for key in [k for k, m in META.items() if m.queue == queue]:
        del META[key]


def _request(queue: str, task: Task, meta: Meta, state: server.QueueState):
    if not task.http_request.url:  # App Engine tasks: the emulator's own request
        return server._make_task_request(queue, task, state._target_host, state._target_port)
    http = task.http_request
    headers = dict(http.headers)
    headers.update({
        "X-CloudTasks-QueueName": queue.rsplit("/", 1)[-1],
        "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[-1],
        "X-CloudTasks-TaskRetryCount": str(task.dispatch_count - 1),
        "X-CloudTasks-TaskExecutionCount": str(meta.executions),
        "X-CloudTasks-TaskETA": f"{task.schedule_time.timestamp():.6f}",
    })
    if meta.previous_status is not None:
        headers["X-CloudTasks-TaskPreviousResponse"] = str(meta.previous_status)
    req = request.Request(http.url, method=http.http_method.name, data=http.body or None, headers=headers)
    deadline = task.dispatch_deadline.total_seconds() if task.dispatch_deadline else 0
    return request.urlopen(req, timeout=deadline or DISPATCH_DEADLINE_S)


def _dispatch(state: server.QueueState, queue: str, task: Task) -> None:
    meta = _meta(task, queue)
    started = time.time()
    if meta.first_attempt is None:
        meta.first_attempt = started
    task.dispatch_count += 1
    status, reason = None, ""
    try:
        with _request(queue, task, meta, state) as resp:
            status = resp.status
            resp.read()
    except error.HTTPError as e:
        status, reason = e.code, str(e.reason)
        e.close()
    except Exception as e:  # noqa: BLE001 (no answer: refused, reset, timed out; a failed attempt all the same)
        reason = f"{type(e).__name__}: {e}"
    attempt = Attempt(
        schedule_time=datetime.fromtimestamp(meta.due, timezone.utc),
        dispatch_time=datetime.fromtimestamp(started, timezone.utc),
        response_time=datetime.now(timezone.utc),
        # google.rpc.Status: OK, UNAVAILABLE when nothing answered, else the HTTP status (as the emulator did).
        response_status={"code": 0 if status and 200 <= status < 300 else (status or 14), "message": reason},
    )
    if not task.first_attempt:
        task.first_attempt = attempt
    task.last_attempt = attempt
    if status is not None:
        task.response_count += 1
    if status is not None and 200 <= status < 300:
        META.pop(id(task), None)
        return
    if status is not None and status < 500:
        meta.executions += 1
    meta.previous_status = status
    try:
        retry = Retry.of(state.queue(queue))
    except KeyError:  # the queue was deleted meanwhile
        META.pop(id(task), None)
        return
    if retry.exhausted(task.dispatch_count, time.time() - meta.first_attempt):
        logger.info("[TASKS] Giving up task %s after %d attempts (last: %s)", task.name, task.dispatch_count,
                    status or reason)
        META.pop(id(task), None)
        return
    wait = retry.backoff_s(task.dispatch_count - 1)
    meta.due = time.time() + wait
    task.schedule_time = datetime.fromtimestamp(meta.due, timezone.utc)
    logger.info("[TASKS] Attempt %d of task %s failed (%s); next in %.2fs", task.dispatch_count, task.name,
                status or reason, wait)
    with LOCK:
        tasks = state._queue_tasks.get(queue)
        if tasks is not None:
            tasks.append(task)
        else:
            META.pop(id(task), None)


def _process_queue(self: server.Processor, queue: str) -> None:
    state = self._state
    while self._is_running.is_set():
        if queue not in state._queues or queue not in state._queue_tasks:
            break
        if state.queue(queue).state == Queue.State.RUNNING:
            now = time.time()
            with LOCK:
                tasks = state._queue_tasks[queue]
                due, waiting = [], []
                for t in tasks:
                    (due if _meta(t, queue).due <= now else waiting).append(t)
                if due:
                    tasks[:] = waiting
            for t in due:
                POOL.submit(_dispatch, state, queue, t)
        time.sleep(POLL_S)


def _locked(method, forget: bool = False):
    def wrapper(self, name, *args, **kwargs):
        with LOCK:
            result = method(self, name, *args, **kwargs)
            if forget:
                _forget(name)
        return result
    return wrapper


def _run_task(self: server.QueueState, task_name: str, force_run: bool = False) -> Task:
    """RunTask: dispatch the task now (through the same attempt and retry bookkeeping)."""
    queue = task_name.rsplit("/", 2)[0]
    with LOCK:
        tasks = self._queue_tasks.get(queue)
        task = next((t for t in tasks or [] if t.name == task_name), None)
        if task is None:
            raise server.NotFound(f"Task not found: {task_name}")
        tasks.remove(task)
    _dispatch(self, queue, task)
    return task


server.Processor._process_queue = _process_queue
def _create_once(method):
    """CreateTask refuses a name used within NAME_TTL_S (ALREADY_EXISTS), as Cloud Tasks does."""
    def create(self, queue, task):
        now = time.time()
        if task.name:
            if len(NAMES) > 100_000:
                for name in [n for n, at in NAMES.items() if now - at > NAME_TTL_S]:
                    del NAMES[name]
            used = NAMES.get(task.name)
            if used is not None and now - used <= NAME_TTL_S:
                raise AlreadyExists(f"Task {task.name} already exists (or existed within {NAME_TTL_S:.0f} s)")
        created = method(self, queue, task)
        NAMES[created.name] = now
        return created
    return create


server.QueueState.create_task = _locked(_create_once(server.QueueState.create_task))
server.QueueState.purge_queue = _locked(server.QueueState.purge_queue, forget=True)
server.QueueState.delete_queue = _locked(server.QueueState.delete_queue, forget=True)
server.QueueState.submit_task = _run_task

if __name__ == "__main__":
    main()
