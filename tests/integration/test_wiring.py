"""The wiring of the stack with real clients: publish -> emulator push -> function -> Firestore -> event."""

import json
import uuid

from google.api_core.exceptions import DeadlineExceeded
from google.cloud import firestore


def _publish(publisher, stack, data: bytes) -> None:
    publisher.publish(f"projects/{stack.project}/topics/{stack.env['SIGNALS_TOPIC']}", data).result(timeout=10)


def test_signal_flows_through_push_function_firestore_and_back_as_an_event(stack, publisher, tap):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal_id = f"sig-{uuid.uuid4().hex}"
    _publish(publisher, stack, json.dumps({"signal_id": signal_id, "symbol": "BTC/USDT"}).encode())

    got = events.collect(lambda ms: any(m["data"].get("signal_id") == signal_id for m in ms))
    mine = [m for m in got if m["data"].get("signal_id") == signal_id]
    assert [m["data"]["status"] for m in mine] == ["received"]
    assert mine[0]["attributes"]["signal_id"] == signal_id

    doc = firestore.Client(project=stack.project).collection("signals").document(signal_id).get()
    assert doc.exists
    assert doc.to_dict()["signal"]["symbol"] == "BTC/USDT"


def test_a_signal_delivered_three_times_is_recorded_once(stack, publisher, tap):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal_id = f"sig-{uuid.uuid4().hex}"
    marker = f"sig-{uuid.uuid4().hex}"
    for _ in range(3):
        _publish(publisher, stack, json.dumps({"signal_id": signal_id}).encode())
    # A later signal marks the point by which the three deliveries have all been handled.
    _publish(publisher, stack, json.dumps({"signal_id": marker}).encode())
    got = events.collect(lambda ms: any(m["data"].get("signal_id") == marker for m in ms))
    got += events.collect(lambda ms: False, timeout=1.5)  # and nothing late
    assert [m["data"]["status"] for m in got if m["data"].get("signal_id") == signal_id] == ["received"]


def test_malformed_message_is_acknowledged_with_a_rejected_event(stack, publisher, tap, subscriber):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    token = uuid.uuid4().hex
    _publish(publisher, stack, f"not json {token}".encode())
    got = events.collect(lambda ms: any(m["data"].get("status") == "rejected" for m in ms))
    rejected = [m["data"] for m in got if m["data"]["status"] == "rejected"]
    assert rejected and "not JSON" in rejected[0]["reason"]
    # Acknowledged: nothing reaches the dead-letter topic for it (it would after repeated failures).
    dl_sub = subscriber.subscription_path(stack.project, f"{stack.env['SIGNALS_TOPIC_DEAD_LETTER']}-sub")
    try:
        dead = subscriber.pull(request={"subscription": dl_sub, "max_messages": 10}, timeout=2).received_messages
    except DeadlineExceeded:
        dead = []
    assert all(token.encode() not in m.message.data for m in dead)
