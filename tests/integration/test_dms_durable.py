"""The dead man's switch is durable and fails closed, on the running stack: Redis stopped mid-run and Redis flushed
leave every halt in force (Firestore is the record), heartbeats and the check keep answering without Redis, a
heartbeat replayed with an old publish time lifts nothing, and a signal older than SIGNAL_MAX_AGE_MS becomes a
`rejected` event naming its age, never an order.

Replays are pushed to the functions exactly as a push subscription delivers a message it kept for days (an old
``publishTime``); republishing from the dead-letter topic goes through the real Pub/Sub client with the
``original_publish_time`` attribute the README asks republishers to copy."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
import requests

from shared.infra.venues import VenueClient, session
from tests.integration.conftest import eventually

LIMIT = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01", "order_type": "limit",
         "price": "40000"}


def strategy() -> str:
    return f"dmsd-{uuid.uuid4().hex[:10]}"


def rfc3339(ago_s: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=ago_s)).isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def disarm_venues(stack):
    """A check refreshes the venues' own switches while any heartbeat lives: leave none ticking for later tests
    (a venue switch that runs out cancels every order on the account)."""
    yield
    for name, url in stack.adapters.items():
        VenueClient(name, url, session()).cancel_all_after(0)


@pytest.fixture
def check(stack, http):
    def run(expect: int = 200) -> dict:
        resp = http.post(stack.env["DMS_FUNCTION_URL"], json={"for_s": 0}, timeout=60)
        assert resp.status_code == expect, resp.text
        return resp.json()
    return run


def fire(api, check, s: str) -> None:
    assert api("POST", "/heartbeat", {"strategy_id": s, "timeout_ms": 1000}).status_code == 200
    # whoever fires it: this check, or the stack's scheduled one (every second, waking at deadlines)
    def fired() -> bool:
        check()
        return any(w["strategy_id"] == s and w["halted_at_ms"] is not None
                   for w in api("GET", "/heartbeat").json()["switches"])

    eventually(fired, f"the switch of {s} to fire", timeout=60)


def push(http, url: str, topic: str, project: str, body: dict, publish_time: str, **attributes: str):
    """POST one message to a function exactly as a push subscription delivers it."""
    envelope = {"message": {"data": base64.b64encode(json.dumps(body).encode()).decode(),
                            "messageId": uuid.uuid4().hex, "publishTime": publish_time, "attributes": attributes},
                "subscription": f"projects/{project}/subscriptions/replay"}
    resp = http.post(f"{url}/projects/{project}/topics/{topic}", json=envelope, timeout=60)
    assert resp.status_code < 300, resp.text  # acknowledged: a stale message is answered, not redelivered


@pytest.fixture
def redis_server(stack):
    """Stop the stack's own Redis (and start a fresh, empty one again: what a restarted Memorystore holds)."""
    pid_file = stack.state / "pids" / "redis.pid"
    port = int(stack.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])

    class Control:
        def stop(self) -> None:
            pgid = int(pid_file.read_text())
            os.killpg(pgid, signal.SIGTERM)
            eventually(lambda: not _alive(pgid), "redis to stop", timeout=30)

        def start(self) -> None:
            proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            pid_file.write_text(str(proc.pid))  # so the stack's stop ends it
            eventually(lambda: _pings(stack.env["REDIS_URL"]), "redis to answer", timeout=30)

    control = Control()
    yield control
    if not _pings(stack.env["REDIS_URL"]):
        control.start()


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_with_redis_stopped_a_halted_strategy_is_refused_and_heartbeats_and_checks_answer(api, check, redis_server):
    halted, alive = strategy(), strategy()
    fire(api, check, halted)
    redis_server.stop()

    refused = api("POST", "/orders", {**LIMIT, "strategy_id": halted})
    assert refused.status_code == 409, refused.text  # was 201: the halt lived in Redis only
    assert "halted" in refused.json()["error"]["message"]
    beat = api("POST", "/heartbeat", {"strategy_id": alive, "timeout_ms": 60000})
    assert beat.status_code == 200, beat.text  # was 503
    assert check()["unavailable"] is None  # was a 500
    switches = {s["strategy_id"]: s for s in api("GET", "/heartbeat").json()["switches"]}
    assert switches[halted]["halted_at_ms"] and not switches[alive]["halted_at_ms"]
    placed = api("POST", "/orders", {**LIMIT, "strategy_id": alive})
    assert placed.status_code == 201, placed.text  # a live switch, read from Firestore, lets it trade

    redis_server.start()  # back, and empty
    again = api("POST", "/orders", {**LIMIT, "strategy_id": halted})
    assert again.status_code == 409, again.text
    api("DELETE", f"/orders/{placed.json()['order_id']}")


def test_a_redis_flush_loses_no_halt(api, check, stack):
    s = strategy()
    fire(api, check, s)
    redis.Redis.from_url(stack.env["REDIS_URL"]).flushall()
    assert api("POST", "/orders", {**LIMIT, "strategy_id": s}).status_code == 409
    assert any(w["strategy_id"] == s and w["halted_at_ms"] for w in api("GET", "/heartbeat").json()["switches"])


def test_a_heartbeat_replayed_with_an_old_publish_time_does_not_lift_a_halt(api, check, stack, http, spawn_function):
    s = strategy()
    fire(api, check, s)
    # Unlatched, a fresh heartbeat lifts a halt: so only its age can keep the replayed one from doing so.
    url = spawn_function("heartbeats", DMS_LATCH="false")
    topic = stack.env["HEARTBEATS_TOPIC"]
    push(http, url, topic, stack.project, {"strategy_id": s, "timeout_ms": 60000}, rfc3339(3600))
    assert api("POST", "/orders", {**LIMIT, "strategy_id": s}).status_code == 409
    push(http, url, topic, stack.project, {"strategy_id": s, "timeout_ms": 60000}, rfc3339(0))
    placed = api("POST", "/orders", {**LIMIT, "strategy_id": s})
    assert placed.status_code == 201, placed.text  # the fresh one lifted it: the replay was refused for its age
    api("DELETE", f"/orders/{placed.json()['order_id']}")


def test_a_heartbeat_republished_with_its_old_time_arms_nothing(api, publisher, stack):
    s = strategy()
    old = rfc3339(600)
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['HEARTBEATS_TOPIC']}",
                      json.dumps({"strategy_id": s, "timeout_ms": 45000}).encode(),
                      original_publish_time=old).result(timeout=30)
    log = stack.state / "logs" / "heartbeats.log"
    eventually(lambda: any(s in line and "ignored" in line for line in log.read_text(errors="replace").splitlines()),
               "the heartbeats function to log the republished heartbeat as ignored", timeout=60)
    assert s not in {w["strategy_id"] for w in api("GET", "/heartbeat").json()["switches"]}
    stale = api("POST", "/heartbeat", {"strategy_id": s, "timeout_ms": 45000,
                                       "sent_at_ms": int(time.time() * 1000) - 3_600_000})
    assert stale.status_code == 409 and stale.json()["error"]["details"][0]["field"] == "sent_at_ms"


def _signal(signal_id: str) -> dict:
    return {"signal_id": signal_id, "strategy_id": strategy(), **LIMIT}


def test_a_stale_signal_becomes_a_rejected_event_naming_its_age(api, http, stack, tap, publisher):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    redelivered, republished = f"stale-{uuid.uuid4().hex[:8]}", f"stale-{uuid.uuid4().hex[:8]}"
    # A push subscription redelivering, an hour after an outage, what was published then:
    push(http, stack.env["SIGNALS_FUNCTION_URL"], stack.env["SIGNALS_TOPIC"], stack.project,
         _signal(redelivered), rfc3339(3600))
    # An operator republishing a dead letter with the real client, keeping its first publish time:
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}",
                      json.dumps(_signal(republished)).encode(), original_publish_time=rfc3339(120)).result(timeout=30)

    wanted = {redelivered, republished}
    got = events.collect(lambda ms: wanted <= {m["data"].get("signal_id") for m in ms
                                               if m["data"].get("status") == "rejected"}, timeout=90)
    rejected = {m["data"]["signal_id"]: m["data"] for m in got
                if m["data"].get("status") == "rejected" and m["data"].get("signal_id") in wanted}
    assert set(rejected) == wanted
    for event in rejected.values():
        assert "too old" in event["reason"] and "ms ago" in event["reason"], event
        assert event["details"][0]["field"] == "publish_time"
    for signal_id in wanted:
        assert api("GET", f"/orders?signal_id={signal_id}").json()["orders"] == []  # never traded


def test_with_redis_and_firestore_both_unreachable_orders_are_refused_with_503_naming_the_reason(stack,
                                                                                                 spawn_function):
    """An api function whose Redis and Firestore are both unreachable: no order gets through, and heartbeats and
    the switch list answer 503 with the reason, never a 500."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from localstack import free_port

    url = spawn_function("api", FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}",
                         REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    headers = {"X-API-Key": stack.env["API_KEY"]}
    for method, path, body in (("POST", "/orders", {**LIMIT, "strategy_id": strategy()}),
                               ("POST", "/heartbeat", {"strategy_id": strategy(), "timeout_ms": 30000}),
                               ("GET", "/heartbeat", None)):
        resp = requests.request(method, f"{url}/api/v1{path}", json=body, headers=headers, timeout=90)
        assert resp.status_code == 503, (path, resp.status_code, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "dms_unavailable" and "Firestore" in error["message"], error
        assert error["details"][0]["field"] == "strategy_id"
