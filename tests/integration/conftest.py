"""Integration fixtures: the private local stack that scripts/test.sh started, and helpers to talk to it.

These tests need real emulators, Redis and function processes. Without the stack (pytest run directly) the
whole run stops with a message saying how to get it, rather than skipping.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared.domain.access import ALL, Role, record_for
from shared.infra import exact_json
from shared.infra.access_keys import write_key_file
from shared.infra.venues import resend_dropped

REQUIRED = ("LOCALSTACK_STATE", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST",
            "REDIS_URL", "API_URL")


@dataclass(frozen=True)
class StackInfo:
    state: Path
    project: str
    api_url: str
    env: dict[str, str]

    def _pairs(self, var: str) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.env[var].split(",") if item)

    @property
    def adapters(self) -> dict[str, str]:
        """ADAPTER_ENDPOINTS as {venue: url}."""
        return self._pairs("ADAPTER_ENDPOINTS")

    @property
    def simulators(self) -> dict[str, str]:
        """SIMULATED_EXCHANGES as {venue: the simulator's base URL}."""
        return self._pairs("SIMULATED_EXCHANGES")


@pytest.fixture(scope="session")
def stack() -> StackInfo:
    missing = [v for v in REQUIRED if not os.environ.get(v)]
    if missing:
        pytest.exit(
            f"integration tests need the local stack (missing {', '.join(missing)}): run ./scripts/test.sh",
            returncode=4,
        )
    return StackInfo(Path(os.environ["LOCALSTACK_STATE"]), os.environ["GOOGLE_CLOUD_PROJECT"],
                     os.environ["API_URL"], dict(os.environ))


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    """One keep-alive session for the tests. functions-framework's gunicorn closes a connection idle for 2 s,
    and that close can race a request sent on it: a safe request (GET, DELETE, ...) whose connection is dropped
    before any answer is sent again, as HTTP/1.1 allows. POSTs, timeouts and statuses are never re-sent."""
    with requests.Session() as s:
        s.mount("http://", HTTPAdapter(max_retries=resend_dropped(Retry.DEFAULT_ALLOWED_METHODS, times=2)))
        yield s


@pytest.fixture(scope="session")
def publisher(stack: StackInfo) -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient()


@pytest.fixture(scope="session")
def subscriber(stack: StackInfo) -> pubsub_v1.SubscriberClient:
    return pubsub_v1.SubscriberClient()


class TopicTap:
    """A private pull subscription on a topic: sees every message published after it was created."""

    def __init__(self, subscriber: pubsub_v1.SubscriberClient, project: str, topic: str) -> None:
        self._sub = subscriber
        self.path = subscriber.subscription_path(project, f"tap-{topic}-{uuid.uuid4().hex[:8]}")
        subscriber.create_subscription(request={"name": self.path, "topic": f"projects/{project}/topics/{topic}",
                                                "enable_message_ordering": True})

    def collect(self, until: Callable[[list[dict]], bool], timeout: float = 60.0) -> list[dict]:
        """Pull until `until(messages)` holds or the timeout passes; returns the decoded JSON bodies (numbers with a
        fraction as Decimal, exactly as sent) with attributes and the raw bytes."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(got):
            resp = self._sub.pull(request={"subscription": self.path, "max_messages": 100}, timeout=5)
            if resp.received_messages:
                self._sub.acknowledge(request={"subscription": self.path,
                                               "ack_ids": [m.ack_id for m in resp.received_messages]})
            for m in resp.received_messages:
                got.append({"data": exact_json.loads(m.message.data), "attributes": dict(m.message.attributes),
                            "raw": m.message.data})
        return got

    def close(self) -> None:
        self._sub.delete_subscription(request={"subscription": self.path})


@pytest.fixture
def tap(subscriber: pubsub_v1.SubscriberClient, stack: StackInfo) -> Iterator[Callable[[str], TopicTap]]:
    taps: list[TopicTap] = []

    def make(topic: str) -> TopicTap:
        t = TopicTap(subscriber, stack.project, topic)
        taps.append(t)
        return t

    yield make
    for t in taps:
        t.close()


@pytest.fixture
def spawn_function(stack: StackInfo, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start an extra functions-framework process with environment overrides (on `port`, else a free one);
    returns its base URL."""
    import subprocess
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from localstack import ROOT, VENV_BIN, free_port, tcp_open

    procs: list[subprocess.Popen] = []

    def spawn(target: str, port: int | None = None, **env: str) -> str:
        port = port or free_port()
        log = open(tmp_path / f"{target}-{port}.log", "wb")
        proc = subprocess.Popen(
            [str(VENV_BIN / "functions-framework"), "--source", str(ROOT / "functions/main.py"),
             "--target", target, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(proc)
        deadline = time.monotonic() + 90  # generous: a loaded 2-core machine imports slowly
        while not tcp_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{target} did not start: {(tmp_path / f'{target}-{port}.log').read_text()}")
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield spawn
    import signal

    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # gunicorn's graceful stop can outlast a loaded machine: end it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def key_file_env(directory: Path, key: str, role: Role = Role.ADMIN, strategies: list[str] | str = ALL) -> dict[str, str]:
    """The environment of an extra api process that accepts `key` alone (its own key file in `directory`)."""
    path = directory / f"api-keys-{uuid.uuid4().hex[:8]}.json"
    write_key_file(path, [record_for(key, "test", role, strategies)])
    return {"API_KEYS_FILE": str(path)}


@pytest.fixture(scope="session")
def api(stack: StackInfo, http: requests.Session) -> Callable[..., requests.Response]:
    """Call the REST API: api(method, path, body=None, key="default" | None | "other-key", **requests kwargs)."""

    def call(method: str, path: str, body=None, key: str | None = "default", **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if key is not None:
            headers["X-API-Key"] = stack.env["API_KEY"] if key == "default" else key
        if isinstance(body, (bytes, str)):
            headers.setdefault("Content-Type", "application/json")
            return http.request(method, f"{stack.api_url}{path}", data=body, headers=headers, timeout=30, **kw)
        return http.request(method, f"{stack.api_url}{path}", json=body, headers=headers, timeout=30, **kw)

    return call


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0, pause: float = 0.1) -> Any:
    """Re-run `check` until it returns something truthy, and return that; else fail after `timeout` seconds naming
    `what` and the last value seen. The one way these tests wait (a loaded machine is slow, never wrong)."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} (last seen: {last!r})")
        time.sleep(pause)


def wait_for(api: Callable[..., requests.Response], order_id: str, done: Callable[[dict], bool],
             timeout: float = 30) -> dict:
    """Poll GET /orders/{order_id} until done(order) or the timeout; returns the last order seen."""
    deadline = time.monotonic() + timeout
    while True:
        order = api("GET", f"/orders/{order_id}").json()
        if done(order) or time.monotonic() > deadline:
            return order
        time.sleep(0.1)


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return exact_json.loads(self.stdout)


@pytest.fixture(scope="session")
def execctl(stack: StackInfo) -> Callable[..., CliResult]:
    """Run execctl in this process (typer's CliRunner) against the suite's stack, found as a user's would be:
    through the stack's env file (EXECCTL_STACK_DIR). execctl("orders", "list", "-o", "json", expect=0) fails the
    test, showing the output, unless the exit code is `expect` (None: any)."""
    from typer.testing import CliRunner

    from execctl.main import app

    runner = CliRunner()
    env = {"EXECCTL_STACK_DIR": str(stack.state), "EXECCTL_URL": None, "EXECCTL_API_KEY": None,
           "EXECCTL_API_KEY_FILE": None, "EXECCTL_PROFILE": None, "API_URL": None, "API_KEY": None,
           "COLUMNS": "200"}

    def run(*args: str, expect: int | None = 0, input: str | None = None, **more_env: str | None) -> CliResult:
        result = runner.invoke(app, list(args), env={**env, **more_env}, input=input, catch_exceptions=False)
        out = CliResult(result.exit_code, result.stdout, result.stderr)
        assert expect is None or out.exit_code == expect, (
            f"execctl {' '.join(args)}: exit {out.exit_code}, expected {expect}\nstdout:\n{out.stdout}\n"
            f"stderr:\n{out.stderr}")
        return out

    return run
