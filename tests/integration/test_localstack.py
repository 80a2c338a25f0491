"""The local stack manager behind ./emulator.sh: start, start again, status, stop leaves nothing behind."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK = [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/localstack.py")]


def run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    return subprocess.run([*LOCALSTACK, *args], env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pgids(state: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")}


def alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


ONE_VENUE = {"SIMULATED_VENUES": "binance"}  # a lighter second stack: one simulated venue


@pytest.mark.timeout(600)  # two starts of a whole stack and a stop: minutes on a loaded 2-core machine
def test_start_twice_status_and_stop_leave_no_process(stack, tmp_path):
    state = tmp_path / "stack"
    try:
        first = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE)
        assert first.returncode == 0, first.stderr
        started = pgids(state)
        assert set(started) >= {"pubsub", "firestore", "tasks", "redis", "api", "signals", "sim-binance",
                                "adapter-binance"}
        env_file = (state / "env").read_text()
        for var in ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                    "CLOUD_TASKS_EMULATOR_HOST", "REDIS_URL", "API_URL", "API_KEY", "SIGNALS_TOPIC",
                    "ORDER_EVENTS_TOPIC", "SIGNALS_SUBSCRIPTION", "SUBMIT_QUEUE", "ADAPTER_ENDPOINTS",
                    "SIMULATED_EXCHANGES"):
            assert f"export {var}=" in env_file, var
        # Without --with-prometheus nothing of the local Prometheus runs or is written.
        assert "PROMETHEUS_URL" not in env_file and not set(started) & {"prometheus", "prometheus-proxy"}
        assert not (state / "prometheus").exists()

        again = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE)
        assert again.returncode == 0, again.stderr
        assert pgids(state) == started  # nothing restarted, nothing duplicated

        status = run("status", "--state-dir", str(state))
        assert status.returncode == 0
        assert "DEAD" not in status.stdout and "api" in status.stdout
    finally:
        stop = run("stop", "--state-dir", str(state))
    assert stop.returncode == 0
    assert not [name for name, pgid in started.items() if alive(pgid)]
    assert run("status", "--state-dir", str(state)).returncode == 1


def test_a_taken_port_is_reported_not_waited_on(stack, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {var: str(free_port()) for var in ("PUBSUB_PORT", "FIRESTORE_PORT", "TASKS_PORT", "SIGNALS_PORT",
                                                   "SIM_BINANCE_PORT", "ADAPTER_BINANCE_PORT")}
        ports.update(ONE_VENUE)
        result = run("start", "--state-dir", str(tmp_path / "s"), env={**ports, "API_PORT": str(port)}, timeout=30)
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "API_PORT" in result.stderr
    assert not list((tmp_path / "s").glob("pids/*.pid"))  # refused before starting anything


@pytest.mark.timeout(900)  # three starts of a second stack, slow on a busy machine
def test_a_restarted_component_keeps_its_port(stack, tmp_path):
    """With --free-ports the ports are chosen once and recorded: a component that stopped comes back on its
    port (the running functions keep calling it there); a recorded port someone else took is an error naming it."""
    state = tmp_path / "stack"
    try:
        first = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE, timeout=400)
        assert first.returncode == 0, first.stderr
        ports = json.loads((state / "state.json").read_text())["ports"]
        started = pgids(state)
        for name in ("tasks", "api", "redis"):  # they crash
            os.killpg(started[name], signal.SIGKILL)
        eventually(lambda: not any(alive(started[n]) for n in ("tasks", "api", "redis")), "the killed parts to end")

        again = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE, timeout=400)
        assert again.returncode == 0, again.stderr
        restarted = pgids(state)
        assert all(restarted[n] != started[n] for n in ("tasks", "api", "redis"))
        assert json.loads((state / "state.json").read_text())["ports"] == ports
        env_file = (state / "env").read_text()
        assert f"CLOUD_TASKS_EMULATOR_HOST=127.0.0.1:{ports['tasks']}" in env_file
        assert f"REDIS_URL=redis://127.0.0.1:{ports['redis']}/0" in env_file
        with socket.create_connection(("127.0.0.1", ports["tasks"]), timeout=5):
            pass

        os.killpg(restarted["api"], signal.SIGKILL)
        eventually(lambda: not alive(restarted["api"]), "api to end")
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the killed api's connections linger
            squatter.bind(("127.0.0.1", ports["api"]))
            squatter.listen()
            refused = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE, timeout=400)
        assert refused.returncode == 1
        assert f"port {ports['api']} of api" in refused.stderr and "taken" in refused.stderr
    finally:
        run("stop", "--state-dir", str(state))


class Recorder:
    """An HTTP server recording each request's arrival (monotonic) and headers, answering `statuses` in turn
    (then 200)."""

    def __init__(self, port: int, statuses: list[int] = ()) -> None:
        self.hits: list[tuple[float, Message, bytes]] = []
        self._statuses = list(statuses)
        rec = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.hits.append((time.monotonic(), self.headers, body))  # names case-insensitive
                code = rec._statuses.pop(0) if rec._statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[bytes]:
        return [b for _, _, b in self.hits]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def retry_queue(stack):
    """A queue of our own on the stack's Cloud Tasks emulator, retrying quickly: 0.2 s doubling up to 3.2 s."""
    from google.cloud import tasks_v2

    from shared.infra import clients

    client = clients.tasks()
    name = (f"projects/{stack.project}/locations/{stack.env['TASKS_LOCATION']}/queues/"
            f"retry-test-{uuid.uuid4().hex[:8]}")
    client.create_queue(parent=name.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(
        name=name, retry_config=tasks_v2.RetryConfig(
            max_attempts=-1, min_backoff=timedelta(seconds=0.2), max_backoff=timedelta(seconds=3.2), max_doublings=5)))

    def enqueue(url: str, body: bytes) -> None:
        client.create_task(parent=name, task={"http_request": {"http_method": tasks_v2.HttpMethod.POST, "url": url,
                                                               "body": body}})

    def dispatch_counts() -> list[int]:
        return [t.dispatch_count for t in client.list_tasks(parent=name)]

    yield enqueue, dispatch_counts
    client.delete_queue(name=name)


def test_a_task_whose_target_is_down_is_retried_until_it_comes_up(stack, retry_queue):
    enqueue, dispatch_counts = retry_queue
    sys.path.insert(0, str(ROOT / "scripts"))
    from localstack import free_port as claimed_port

    down = claimed_port()  # claimed for this run, nothing listens: connections are refused
    enqueue(f"http://127.0.0.1:{down}/late", b"late")
    eventually(lambda: any(n >= 3 for n in dispatch_counts()), "three refused attempts of the task, still queued")

    # Meanwhile the queue goes on: a task waiting for its retry holds nobody up.
    other = Recorder(claimed_port())
    try:
        enqueue(f"http://127.0.0.1:{other._server.server_port}/now", b"now")
        eventually(lambda: other.bodies() == [b"now"], "the other task of the queue")
    finally:
        other.close()

    target = Recorder(down)
    try:
        eventually(lambda: target.bodies() == [b"late"], "the task, once its target is up")
        headers = target.hits[0][1]
        assert int(headers["X-CloudTasks-TaskRetryCount"]) >= 3
        assert headers["X-CloudTasks-TaskExecutionCount"] == "0"  # no attempt before got an answer
        eventually(lambda: dispatch_counts() == [], "the delivered task to leave the queue")
    finally:
        target.close()


def test_the_backoff_between_attempts_grows(stack, retry_queue):
    enqueue, _ = retry_queue
    sys.path.insert(0, str(ROOT / "scripts"))
    from localstack import free_port as claimed_port

    target = Recorder(claimed_port(), statuses=[503, 503, 404, 404])
    try:
        enqueue(f"http://127.0.0.1:{target._server.server_port}/flaky", b"flaky")
        eventually(lambda: len(target.hits) >= 5, "five attempts")
        times = [t for t, _, _ in target.hits]
        gaps = [b - a for a, b in zip(times, times[1:])]
        for i, gap in enumerate(gaps):
            assert gap >= 0.2 * 2 ** i * 0.95, (i, gaps)  # min_backoff 0.2 s, doubling
        headers = [h for _, h, _ in target.hits]
        assert [h["X-CloudTasks-TaskRetryCount"] for h in headers] == ["0", "1", "2", "3", "4"]
        # Answers other than 5xx count as executions (as in Cloud Tasks).
        assert [h["X-CloudTasks-TaskExecutionCount"] for h in headers] == ["0", "0", "0", "1", "2"]
        assert [h.get("X-CloudTasks-TaskPreviousResponse") for h in headers] == [None, "503", "503", "404", "404"]
    finally:
        target.close()


def _threads_of_group(pgid: int) -> int:
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
                total += int(fields[17])  # num_threads
        except (OSError, IndexError, ValueError):
            pass
    return total


def test_the_unpulled_local_events_subscription_grows_no_threads(stack, subscriber):
    """order-events-local is for people watching: unordered, so the Pub/Sub emulator keeps no thread per ordering
    key for it while nobody pulls it (an ordered one grew to ~5,800 threads under load). Its events still arrive."""
    from google.cloud import pubsub_v1

    pgid = pgids(stack.state)["pubsub"]
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    topic = publisher.topic_path(stack.project, stack.env["ORDER_EVENTS_TOPIC"])
    mark = uuid.uuid4().hex
    before = _threads_of_group(pgid)
    futures = [publisher.publish(topic, b"{}", ordering_key=f"{mark}-{i}", test_mark=mark) for i in range(300)]
    for f in futures:
        f.result(timeout=30)
    grown = _threads_of_group(pgid) - before
    assert grown < 150, f"the Pub/Sub emulator grew {grown} threads for 300 ordering keys"

    path = stack.env["ORDER_EVENTS_SUBSCRIPTION"]
    path = subscriber.subscription_path(stack.project, path)
    seen = False
    deadline = time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        resp = subscriber.pull(request={"subscription": path, "max_messages": 1000}, timeout=10)
        if resp.received_messages:
            subscriber.acknowledge(request={"subscription": path,
                                            "ack_ids": [m.ack_id for m in resp.received_messages]})
        seen = any(m.message.attributes.get("test_mark") == mark for m in resp.received_messages)
    assert seen, "order-events-local did not deliver the events published to order-events"
