"""The dead man's switch on the running stack: heartbeats over HTTP and Pub/Sub, the check firing, working orders
cancelled with the reason, the strategy halted until it heartbeats again or an operator re-enables it, and the
venues' own cancel-all-after kept armed while heartbeats flow."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.infra.venues import VenueClient, session

LIMIT = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01", "order_type": "limit",
         "price": "40000"}




@pytest.fixture
def check(stack, http):
    def run() -> dict:
        resp = http.post(stack.env["DMS_FUNCTION_URL"], json={"for_s": 0}, timeout=60)
        assert resp.status_code == 200, resp.text
        return resp.json()
    return run


@pytest.fixture(autouse=True)
def disarm_venues(stack):
    yield
    for name, url in stack.adapters.items():
        VenueClient(name, url, session()).cancel_all_after(0)  # leave no venue switch ticking for later tests


def strategy() -> str:
    return f"dms-{uuid.uuid4().hex[:10]}"


def place(api, strategy_id: str) -> dict:
    resp = api("POST", "/orders", {**LIMIT, "strategy_id": strategy_id, "client_order_id": f"dms-{uuid.uuid4().hex[:20]}"})
    assert resp.status_code == 201, resp.text
    order = resp.json()
    deadline = time.monotonic() + 15
    while order["status"] != "accepted" and time.monotonic() < deadline:
        time.sleep(0.1)
        order = api("GET", f"/orders/{order['order_id']}").json()
    return order


def fired_by(check) -> set[str]:
    return {f["strategy_id"] for f in check()["fired"]}


def halted(api, check, strategy_id: str, timeout_s: float = 60) -> dict:
    """The strategy's switch once it is halted. The stack's own scheduled check (every second, waking at
    deadlines) may fire it before this test's check does: whoever fired it, it must end halted."""
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        switch = next((w for w in api("GET", "/heartbeat").json()["switches"] if w["strategy_id"] == strategy_id),
                      None)
        if switch is not None and switch["halted_at_ms"] is not None:
            return switch
        assert time.monotonic() < deadline, f"the switch of {strategy_id} never fired: {switch}"
        time.sleep(0.2)


def until_status(api, order_id: str, status: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while (order := api("GET", f"/orders/{order_id}").json())["status"] != status:
        assert time.monotonic() < deadline, order
        time.sleep(0.2)
    return order


def test_missed_heartbeat_cancels_working_orders_and_halts_latched_until_an_operator_re_enables(api, check, tap,
                                                                                               stack):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    s = strategy()
    assert api("POST", "/heartbeat", {"strategy_id": s, "timeout_ms": 4000}).status_code == 200
    order = place(api, s)
    other = place(api, strategy())  # another strategy's order is not touched
    assert s not in fired_by(check)

    switch = halted(api, check, s)
    assert "missed" in switch["reason"], switch
    canceled = until_status(api, order["order_id"], "canceled")
    assert canceled["status"] == "canceled" and "dead man's switch" in canceled["reason"], canceled
    assert api("GET", f"/orders/{other['order_id']}").json()["status"] == "accepted"

    refused = api("POST", "/orders", {**LIMIT, "strategy_id": s})
    assert refused.status_code == 409 and "halted" in refused.json()["error"]["message"]
    def mine(m: dict) -> bool:  # other tests' switches may fire meanwhile
        return m["data"].get("type") == "dead_mans_switch" and m["data"].get("strategy_id") == s

    got = events.collect(lambda ms: any(mine(m) for m in ms))
    notice = next(m["data"] for m in got if mine(m))
    assert notice["status"] == "halted" and "missed" in notice["reason"]

    # Deliberately changed (DMS_LATCH, default latched): a heartbeat no longer lifts a fired switch.
    late = api("POST", "/heartbeat", {"strategy_id": s, "timeout_ms": 60000})
    assert late.status_code == 409 and late.json()["error"]["code"] == "heartbeat_ignored"
    assert "latched" in late.json()["error"]["message"]
    assert api("POST", "/orders", {**LIMIT, "strategy_id": s}).status_code == 409
    assert api("POST", f"/strategies/{s}/enable").status_code == 200
    assert api("POST", "/orders", {**LIMIT, "strategy_id": s}).status_code == 201
    assert api("POST", "/heartbeat", {"strategy_id": s, "timeout_ms": 60000}).status_code == 200
    api("DELETE", f"/orders/{other['order_id']}")
    assert s not in fired_by(check)  # a fresh heartbeat: nothing fires twice


def test_an_operator_can_re_enable_a_halted_strategy(api, check):
    s = strategy()
    api("POST", "/heartbeat", {"strategy_id": s, "timeout_ms": 1000})
    halted(api, check, s)
    assert api("POST", "/orders", {**LIMIT, "strategy_id": s}).status_code == 409
    enabled = api("POST", f"/strategies/{s}/enable")
    assert enabled.status_code == 200 and enabled.json()["halted_at_ms"] is None
    assert api("POST", "/orders", {**LIMIT, "strategy_id": s}).status_code == 201
    assert api("POST", "/strategies/never-seen/enable").status_code == 404


def test_while_heartbeats_flow_the_venue_switches_stay_armed(api, spawn_function, http):
    api("POST", "/heartbeat", {"strategy_id": strategy(), "timeout_ms": 30000})
    # A checker that has not refreshed the venues yet (each refreshes every quarter of the venue timeout).
    url = spawn_function("dms")
    assert http.post(url, json={"for_s": 0}, timeout=60).json()["venue_switch_refreshed"] is True
    adapters = api("GET", "/adapters").json()["adapters"]
    for adapter in adapters:
        switch = adapter["stats"]["dead_mans_switch"]
        assert switch["armed"] is True and switch["timeout_ms"] == 60000, adapter["name"]


def test_a_heartbeat_on_the_topic_arms_the_switch(api, publisher, stack):
    s = strategy()
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['HEARTBEATS_TOPIC']}",
                      json.dumps({"strategy_id": s, "timeout_ms": 45000}).encode()).result(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        switches = {w["strategy_id"]: w for w in api("GET", "/heartbeat").json()["switches"]}
        if s in switches:
            assert switches[s]["timeout_ms"] == 45000 and not switches[s]["halted_at_ms"]
            return
        time.sleep(0.2)
    pytest.fail("the heartbeat from the topic never arrived")


def test_bad_heartbeats_are_422(api):
    assert api("POST", "/heartbeat", {"timeout_ms": 5}).status_code == 422
    assert api("POST", "/heartbeat", {"strategy_id": "x", "colour": "red"}).status_code == 422


def test_an_order_the_venue_switch_cancelled_says_so_in_its_record_and_event(api, stack, http, tap):
    """The adapter's watchdog (binance has no native cancel-all-after) cancels everything on the account when it
    is not refreshed: the record and its event name the venue switch as the reason."""
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    order = place(api, strategy())
    assert order["status"] == "accepted"
    VenueClient("binance", stack.adapters["binance"], session()).cancel_all_after(1000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        http.post(stack.env["SYNC_FUNCTION_URL"], json={"order_id": order["order_id"]}, timeout=60)  # a one-off check
        got = api("GET", f"/orders/{order['order_id']}").json()
        if got["status"] == "canceled":
            break
        time.sleep(0.5)
    assert got["status"] == "canceled", got
    assert "cancel-all-after" in got["reason"] and "account-wide" in got["reason"]
    seen = events.collect(lambda ms: any(m["data"].get("order_id") == order["order_id"]
                                         and m["data"].get("status") == "canceled" for m in ms))
    event = next(m["data"] for m in seen if m["data"].get("order_id") == order["order_id"]
                 and m["data"].get("status") == "canceled")
    assert event["reason"] == got["reason"]
