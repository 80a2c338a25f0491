"""Scoped keys and roles on the stack: a trader key outside its strategies meets another strategy's order as an
unknown one (the same 404), is refused creating one (403 naming strategy_id) and cannot re-enable a strategy
(403); an operator key can; a rotated key file is picked up within its TTL without a restart."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from google.cloud.pubsub_v1.types import PushConfig

from shared.domain.access import ALL, Role, new_key, record_for
from shared.infra.access_keys import write_key_file

TTL_S = 1


@pytest.fixture
def scoped_api(spawn_function, tmp_path, http):
    """An api of its own reading its own key file (TTL 1 s): a trader of strategy A, an operator of every
    strategy; and a strategy B only the operator covers."""
    mine, theirs = f"acc-a-{uuid.uuid4().hex[:8]}", f"acc-b-{uuid.uuid4().hex[:8]}"
    trader, operator = new_key(), new_key()
    path = tmp_path / "api-keys.json"
    records = [record_for(trader, "desk-a", Role.TRADER, [mine]), record_for(operator, "ops", Role.OPERATOR, ALL)]
    write_key_file(path, records)
    url = spawn_function("api", API_KEYS_FILE=str(path), API_KEYS_TTL_S=str(TTL_S)) + "/api/v1"

    def call(key, method, path_, body=None, **kw):
        return http.request(method, f"{url}{path_}", json=body, headers={"X-API-Key": key}, timeout=30, **kw)

    return {"call": call, "trader": trader, "operator": operator, "mine": mine, "theirs": theirs, "path": path,
            "records": records}


def order(strategy_id: str) -> dict:
    return {"strategy_id": strategy_id, "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
            "quantity": "0.01", "order_type": "limit", "price": "40000",  # far below the market: it rests
            "client_order_id": f"acc-{uuid.uuid4().hex[:16]}"}


def anonymised(resp, order_id: str) -> tuple[int, str]:
    return resp.status_code, resp.text.replace(order_id, "ID")


def test_a_trader_key_meets_other_strategies_as_unknown_and_an_operator_key_acts(scoped_api):
    call, trader, operator = scoped_api["call"], scoped_api["trader"], scoped_api["operator"]
    theirs = call(operator, "POST", "/orders", order(scoped_api["theirs"]))
    assert theirs.status_code == 201, theirs.text
    other_id = theirs.json()["order_id"]
    own = call(trader, "POST", "/orders", order(scoped_api["mine"]))
    assert own.status_code == 201, own.text
    unknown_id = "ord_" + "0" * 24

    # Another strategy's order answers exactly as an order that does not exist, whatever is asked of it.
    for method, suffix, body in (("GET", "", None), ("DELETE", "", None), ("PUT", "", {"price": "39000"}),
                                 ("GET", "/tca", None), ("POST", "/pause", None)):
        hidden = call(trader, method, f"/orders/{other_id}{suffix}", body)
        missing = call(trader, method, f"/orders/{unknown_id}{suffix}", body)
        assert hidden.status_code == 404, (method, suffix, hidden.text)
        assert anonymised(hidden, other_id) == anonymised(missing, unknown_id), (method, suffix)
    still = call(operator, "GET", f"/orders/{other_id}").json()
    assert still["status"] != "canceled" and still["price"] == "40000"  # nothing was done to it

    listed = call(trader, "GET", "/orders", params={"limit": 500}).json()["orders"]
    assert {o["strategy_id"] for o in listed} == {scoped_api["mine"]}
    assert call(trader, "GET", "/orders", params={"strategy_id": scoped_api["theirs"]}).json()["orders"] == []
    assert other_id in {o["order_id"] for o in call(operator, "GET", "/orders",
                                                     params={"strategy_id": scoped_api["theirs"]}).json()["orders"]}

    refused = call(trader, "POST", "/orders", order(scoped_api["theirs"]))
    assert refused.status_code == 403, refused.text
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["strategy_id"]
    assert call(trader, "POST", "/execute", {"order": order(scoped_api["theirs"])}).status_code == 403

    # Operator routes: a trader is refused (even for its own strategy), an operator re-enables.
    beat = call(operator, "POST", "/heartbeat", {"strategy_id": scoped_api["theirs"], "timeout_ms": 1000})
    assert beat.status_code == 200, beat.text
    for strategy in (scoped_api["theirs"], scoped_api["mine"]):
        denied = call(trader, "POST", f"/strategies/{strategy}/enable")
        assert denied.status_code == 403, denied.text
    assert call(trader, "GET", "/heartbeat").status_code == 403
    enabled = call(operator, "POST", f"/strategies/{scoped_api['theirs']}/enable")
    assert enabled.status_code == 200, enabled.text
    assert "ops" in enabled.json()["reason"]  # the record says which key lifted it
    assert call(operator, "GET", "/heartbeat").status_code == 200

    for order_id in (other_id, own.json()["order_id"]):
        assert call(operator, "DELETE", f"/orders/{order_id}").status_code == 200


def test_a_rotated_key_file_is_picked_up_within_the_ttl_without_a_restart(scoped_api):
    call, path = scoped_api["call"], scoped_api["path"]
    old = scoped_api["trader"]
    assert call(old, "GET", "/orders").status_code == 200
    new = new_key()
    rotated = [record_for(new, "desk-a", Role.TRADER, [scoped_api["mine"]]), scoped_api["records"][1]]
    write_key_file(path, rotated)  # the old key is gone, a new one in its place
    deadline = time.monotonic() + TTL_S + 60  # generous: a loaded machine; the TTL itself is 1 s
    while call(old, "GET", "/orders").status_code != 401:
        assert time.monotonic() < deadline, "the old key still works"
        time.sleep(0.2)
    assert call(new, "GET", "/orders").status_code == 200
    assert call("ek_not-a-key", "GET", "/orders").status_code == 401

    path.write_text("{not json")  # a broken write refuses everyone (fail closed), with a reason
    while (resp := call(new, "GET", "/orders")).status_code != 503:
        assert time.monotonic() < deadline + 60, resp.text
        time.sleep(0.2)
    assert resp.json()["error"]["details"][0]["field"] == "X-API-Key"


@contextmanager
def pushed_topic(stack, publisher, subscriber, url: str, topic: str) -> Iterator[Callable[[dict], None]]:
    """A new topic pushed to the function at `url` (as Eventarc would); yields publish(message). The push
    subscription is deleted afterwards."""
    path = f"projects/{stack.project}/topics/{topic}"
    publisher.create_topic(name=path)
    push = subscriber.subscription_path(stack.project, f"{topic}-push")
    subscriber.create_subscription(request={"name": push, "topic": path,
                                            "push_config": PushConfig(push_endpoint=f"{url}/{path}")})
    try:
        yield lambda message: publisher.publish(path, json.dumps(message).encode()).result(30)
    finally:
        subscriber.delete_subscription(request={"subscription": push})


def test_a_signal_for_a_strategy_outside_its_topics_set_is_rejected_with_a_reason(stack, publisher, subscriber,
                                                                                  spawn_function, tap, api):
    """A publisher's topic is its identity: SIGNAL_STRATEGIES lets topic desk-a-... trade strategy A only."""
    tag = uuid.uuid4().hex[:10]
    topic, allowed, other = f"desk-a-{tag}", f"acc-a-{tag}", f"acc-b-{tag}"
    url = spawn_function("signals", SIGNAL_STRATEGIES=f"{topic}={allowed}")
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    with pushed_topic(stack, publisher, subscriber, url, topic) as publish:
        for strategy in (allowed, other):
            publish({"signal_id": f"sig-{strategy}", "strategy_id": strategy, "exchange": "binance",
                     "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01", "order_type": "limit",
                     "price": "40000"})

        def seen(ms: list[dict]) -> bool:
            ids = {m["data"].get("signal_id"): m["data"] for m in ms}
            return f"sig-{other}" in ids and ids.get(f"sig-{allowed}", {}).get("order_id") is not None

        got = [m["data"] for m in events.collect(seen, timeout=120)]
        rejected = [e for e in got if e.get("signal_id") == f"sig-{other}"]
        assert rejected and rejected[0]["status"] == "rejected", got
        assert other in rejected[0]["reason"] and topic in rejected[0]["reason"]
        assert [d["field"] for d in rejected[0]["details"]] == ["strategy_id"]
        accepted = [e for e in got if e.get("signal_id") == f"sig-{allowed}"]
        assert accepted and accepted[0]["status"] != "rejected" and accepted[0]["order_id"].startswith("ord_")
        assert not [e for e in got if e.get("signal_id") == f"sig-{other}" and e.get("order_id")]
        assert api("DELETE", f"/orders/{accepted[0]['order_id']}").status_code == 200


def test_a_heartbeat_for_a_strategy_outside_its_topics_set_arms_nothing(stack, publisher, subscriber,
                                                                         spawn_function, api, tmp_path):
    """A signal publisher cannot keep another desk's strategy alive: on a topic allowed strategy A only, A's
    heartbeat arms A's switch and B's heartbeat arms nothing."""
    tag = uuid.uuid4().hex[:10]
    topic, allowed, other = f"beats-a-{tag}", f"hb-a-{tag}", f"hb-b-{tag}"
    url = spawn_function("heartbeats", SIGNAL_STRATEGIES=f"{topic}={allowed}")
    try:
        with pushed_topic(stack, publisher, subscriber, url, topic) as publish:
            for strategy in (other, allowed):
                publish({"strategy_id": strategy, "timeout_ms": 3_600_000})

            def switches() -> dict:
                return {s["strategy_id"]: s for s in api("GET", "/heartbeat").json()["switches"]}

            def refused() -> bool:  # the function's own word that it handled B's heartbeat (and how)
                return any(f"heartbeat ignored: strategy_id '{other}'" in p.read_text(errors="replace")
                           for p in tmp_path.glob("heartbeats-*.log"))

            deadline = time.monotonic() + 120
            while not (allowed in switches() and refused()) and time.monotonic() < deadline:
                time.sleep(0.5)
            seen = switches()
            assert allowed in seen, "the allowed strategy's heartbeat never armed its switch"
            assert refused(), "no word from the heartbeats function about the other strategy's heartbeat"
            assert other not in seen, seen[other]
    finally:
        api("POST", f"/strategies/{allowed}/enable")  # leave no armed switch behind


@pytest.mark.parametrize(("env", "named"), [({"API_KEYS_FILE": "/nonexistent/api-keys.json"}, "API_KEYS_FILE"),
                                             ({"API_KEYS": "plain-key-of-old-000000"}, "API_KEYS")])
def test_an_api_without_a_readable_key_file_or_with_plain_keys_refuses_to_start(stack, env, named):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [str(root / ".venv/bin/functions-framework"), "--source", str(root / "functions/main.py"), "--target", "api",
         "--host", "127.0.0.1", "--port", "0"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert named in proc.stderr and "plain-key-of-old" not in proc.stderr  # a secret never shown
