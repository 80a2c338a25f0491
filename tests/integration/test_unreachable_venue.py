"""A venue whose adapter refuses connections, over the real functions: the API answers (degraded or a clear
503), never a 500, and the submit and sync tasks keep rescheduling themselves until the adapter is back, with no
sweep (the test stack runs none).

The stack's own functions know only its simulated venues, so these tests start their own api, submit and sync
functions (``spawn_function``) with one more venue, ``flaky``, at a port of ours. While nothing listens there,
every connection is refused; ``Relay`` then opens that port and relays it to the stack's binance adapter: the
adapter is back.
"""

from __future__ import annotations

import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from localstack import ensure_queue, free_port  # noqa: E402

from shared.infra.config import load_settings  # noqa: E402
from tests.integration.conftest import eventually  # noqa: E402

VENUE = "flaky"
LIMIT = {"strategy_id": "unreachable-test", "exchange": VENUE, "symbol": "BTC/USDT", "side": "buy",
         "quantity": "0.01", "order_type": "limit", "price": "40000"}  # far below the market: it rests


class Relay:
    """A TCP relay from 127.0.0.1:`port` to `upstream` that can be opened and closed again. Closed, nothing
    listens on the port (connections are refused) and every relayed connection is cut."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port, self.upstream = port, upstream
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def open(self) -> None:
        self._stop.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # the accept loop notices close() within this
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


@pytest.fixture
def relay(stack) -> Iterator[Relay]:
    upstream = stack.adapters["binance"].removeprefix("http://").split(":")
    r = Relay(free_port(), (upstream[0], int(upstream[1])))
    yield r
    r.close()


def _env(stack, relay: Relay, **more: str) -> dict[str, str]:
    return {"ADAPTER_ENDPOINTS": f"{stack.env['ADAPTER_ENDPOINTS']},{VENUE}=http://127.0.0.1:{relay.port}", **more}


def _caller(base: str, key: str) -> Callable[..., requests.Response]:
    def call(method: str, path: str, body=None) -> requests.Response:
        return requests.request(method, f"{base}/api/v1{path}", json=body, headers={"X-API-Key": key}, timeout=30)

    return call


def _errors(stack) -> int:
    """Failed calls to the flaky venue's adapter so far (the venue client's statistics in Redis)."""
    r = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    return int(r.hget(f"venue:{VENUE}:counts", "errors") or 0)


def _submit_retries(api: Callable[..., requests.Response]) -> int:
    """Submissions to the flaky venue that failed and were rescheduled (the service's submit_retries counter)."""
    rows = api("GET", "/metrics").json()["counters"].get("submit_retries", [])
    return sum(r["value"] for r in rows if r["labels"].get("venue") == VENUE)


def test_the_api_answers_with_an_adapter_that_refuses_connections(stack, spawn_function, relay):
    api = _caller(spawn_function("api", **_env(stack, relay)), stack.env["API_KEY"])

    adapters = api("GET", "/adapters")
    assert adapters.status_code == 200, adapters.text
    health = {a["name"]: a for a in adapters.json()["adapters"]}
    assert health[VENUE]["healthy"] is False and "no connection" in health[VENUE]["error"]
    assert health["binance"]["healthy"] is True

    routes = api("GET", "/routes")
    assert routes.status_code == 200, routes.text
    assert [u["venue"] for u in routes.json()["unavailable"]] == [VENUE]
    assert {r["venue"] for r in routes.json()["routes"]} >= {"binance"} and VENUE not in {
        r["venue"] for r in routes.json()["routes"]}

    plan = api("POST", "/routes/optimize", {"side": "buy", "symbol": "BTC/USDT", "quantity": "0.5"})
    assert plan.status_code == 200, plan.text
    assert VENUE not in plan.json()["venues"] and [u["venue"] for u in plan.json()["unavailable"]] == [VENUE]


def test_orders_on_an_unreachable_venue_go_through_once_its_adapter_is_back(stack, spawn_function, relay):
    cfg = load_settings()
    ensure_queue(cfg, "submit_queue", cfg.submit_queue_for(VENUE))  # each venue has its own submit queue
    submit_port, sync_port = free_port(), free_port()
    env = _env(stack, relay, SUBMIT_FUNCTION_URL=f"http://127.0.0.1:{submit_port}",
               SYNC_FUNCTION_URL=f"http://127.0.0.1:{sync_port}")
    spawn_function("submit", port=submit_port, **env)
    spawn_function("sync", port=sync_port, **env)
    api = _caller(spawn_function("api", **env), stack.env["API_KEY"])

    def status(order_id: str) -> str:
        return api("GET", f"/orders/{order_id}").json()["status"]

    # A cancel while the adapter is down: the order waits in pending_cancel, the sync task retries it.
    relay.open()
    working = api("POST", "/orders", {**LIMIT, "client_order_id": f"it-{uuid.uuid4().hex[:24]}"}).json()
    eventually(lambda: status(working["order_id"]) == "accepted", "the order works at the venue", timeout=30)
    relay.close()
    errors = _errors(stack)
    cancel = api("DELETE", f"/orders/{working['order_id']}")
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "pending_cancel"
    eventually(lambda: _errors(stack) > errors + 1, "a sync task tried the cancel again and failed", timeout=30)
    assert status(working["order_id"]) == "pending_cancel"

    # A new order while the adapter is down: its submission fails and is rescheduled.
    retries = _submit_retries(api)
    new = api("POST", "/orders", {**LIMIT, "client_order_id": f"it-{uuid.uuid4().hex[:24]}"})
    assert new.status_code == 201, new.text
    eventually(lambda: _submit_retries(api) > retries, "the submit task failed and rescheduled itself", timeout=30)
    # sent once (pending_submit), refused before it reached the venue: the next attempt may send it at once
    assert status(new.json()["order_id"]) == "pending_submit"

    relay.open()  # the adapter is back
    eventually(lambda: status(working["order_id"]) == "canceled", "the cancel went through", timeout=60)
    eventually(lambda: status(new.json()["order_id"]) == "accepted", "the new order was submitted", timeout=60)
    api("DELETE", f"/orders/{new.json()['order_id']}")
