"""Signals over the real path: Pub/Sub emulator push -> signals function -> Firestore -> Cloud Tasks -> submit
function -> ccxt adapter -> simulated exchange -> events on order-events."""

from __future__ import annotations

import json
import socket
import uuid
from decimal import Decimal

import pytest
from google.api_core.exceptions import DeadlineExceeded
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.pubsub_v1.types import DeadLetterPolicy, PushConfig

SEED = {
    "signal_id": "sig_123",
    "strategy_id": "momentum_1",
    "exchange": "binance",
    "symbol": "BTC/USDT",
    "side": "buy",
    "quantity": 0.1,
    "order_type": "limit",
    "price": 50000,
    "time_in_force": "GTC",
}
SEED_OUTPUT_FIELDS = {"order_id", "signal_id", "status", "filled_quantity", "average_price", "commission",
                      "timestamp"}


def publish(publisher, stack, payload, topic: str | None = None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    topic = topic or stack.env["SIGNALS_TOPIC"]
    publisher.publish(f"projects/{stack.project}/topics/{topic}", data).result(timeout=10)


def of_signal(events: list[dict], signal_id: str) -> list[dict]:
    return [m["data"] for m in events if m["data"].get("signal_id") == signal_id]


def marketable(stack) -> int:
    """A buy price above the simulated binance ask (around 50,000): the seed's price, made marketable."""
    return 51_000


def test_the_seed_signal_produces_the_seed_output_with_status_filled(stack, publisher, tap):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal = {**SEED, "signal_id": f"sig_{uuid.uuid4().hex[:12]}", "price": marketable(stack)}
    publish(publisher, stack, signal)
    got = events.collect(lambda ms: any(e["status"] == "filled" for e in of_signal(ms, signal["signal_id"])))
    mine = of_signal(got, signal["signal_id"])
    assert [e["status"] for e in mine] == ["new", "pending_submit", "accepted", "filled"]
    assert [e["sequence"] for e in mine] == [1, 2, 3, 4]
    filled = mine[-1]
    assert SEED_OUTPUT_FIELDS <= set(filled)
    assert filled["signal_id"] == signal["signal_id"] and filled["order_id"].startswith("ord_")
    # the event's numbers are JSON numbers, exact (the tap parses them as Decimals)
    assert filled["filled_quantity"] == Decimal("0.1") and filled["average_price"] > 0
    assert filled["commission"] > 0 and isinstance(filled["timestamp"], int)
    assert filled["remaining_quantity"] == 0 and filled["last_fill"]["trade_id"]
    assert filled["exchange"] == "binance" and filled["symbol"] == "BTC/USDT" and filled["side"] == "buy"


def test_the_seed_signal_verbatim_becomes_a_working_order_with_its_fields(stack, publisher, tap, http):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    publish(publisher, stack, json.dumps(SEED).encode())  # exactly the seed's message
    got = events.collect(lambda ms: any(e["status"] in ("accepted", "filled") for e in of_signal(ms, "sig_123")))
    mine = of_signal(got, "sig_123")
    assert mine and mine[0]["status"] == "new"
    assert any(e["status"] in ("accepted", "filled") for e in mine)
    order = http.get(f"{stack.api_url}/orders/{mine[0]['order_id']}", headers={"X-API-Key": stack.env["API_KEY"]},
                     timeout=10).json()
    assert (order["signal_id"], order["strategy_id"], order["exchange"], order["symbol"], order["side"]) == \
        ("sig_123", "momentum_1", "binance", "BTC/USDT", "buy")
    assert (order["quantity"], order["order_type"], order["price"], order["time_in_force"]) == \
        ("0.1", "limit", "50000", "GTC")
    http.delete(f"{stack.api_url}/orders/{order['order_id']}", headers={"X-API-Key": stack.env["API_KEY"]},
                timeout=10)


def test_a_signal_delivered_three_times_makes_one_order(stack, publisher, tap, http):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal = {**SEED, "signal_id": f"sig_{uuid.uuid4().hex[:12]}", "price": 40_000}  # rests: stays working
    for _ in range(3):
        publish(publisher, stack, signal)
    got = events.collect(lambda ms: any(e["status"] == "accepted" for e in of_signal(ms, signal["signal_id"])))
    got += events.collect(lambda ms: False, timeout=2)  # and nothing more arrives
    mine = of_signal(got, signal["signal_id"])
    # Consumers may see a duplicate event (at-least-once), never a gap: deduplicated by sequence it is one life.
    by_sequence = {e["sequence"]: e["status"] for e in mine}
    assert [by_sequence[k] for k in sorted(by_sequence)] == ["new", "pending_submit", "accepted"]
    assert len({e["order_id"] for e in mine}) == 1
    listed = http.get(f"{stack.api_url}/orders", params={"signal_id": signal["signal_id"]},
                      headers={"X-API-Key": stack.env["API_KEY"]}, timeout=10).json()["orders"]
    assert len(listed) == 1
    http.delete(f"{stack.api_url}/orders/{listed[0]['order_id']}", headers={"X-API-Key": stack.env["API_KEY"]},
                timeout=10)


BAD_SIGNALS = [
    (b"not json", "not JSON"),
    (b"\xff\xfe\x00", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b"{}", "signal_id"),
    (json.dumps({**SEED, "quantity": -1}).encode(), "quantity"),
    (json.dumps({**SEED, "quantity": "lots"}).encode(), "quantity"),
    (json.dumps({**SEED, "exchange": "nasdaq"}).encode(), "exchange"),
    (json.dumps({**SEED, "price": None}).encode(), "price"),
    (json.dumps({**SEED, "side": "hold"}).encode(), "side"),
    (json.dumps({**SEED, "symbol": "BTCUSDT"}).encode(), "symbol"),
    (json.dumps({**SEED, "leverage": 100}).encode(), "leverage"),
    (json.dumps({k: v for k, v in SEED.items() if k != "strategy_id"}).encode(), "strategy_id"),
]


@pytest.mark.parametrize(("data", "field"), BAD_SIGNALS, ids=[f for _, f in BAD_SIGNALS])
def test_a_bad_signal_is_rejected_with_its_reason_and_acknowledged(stack, publisher, tap, subscriber, data, field):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    marker = f"sig_{uuid.uuid4().hex[:12]}"
    try:  # give it a findable signal_id where the payload is an object
        payload = json.loads(data)
        if isinstance(payload, dict) and payload:
            payload["signal_id"] = marker
            data = json.dumps(payload).encode()
    except (ValueError, UnicodeDecodeError):
        pass
    publish(publisher, stack, data)
    got = events.collect(lambda ms: any(m["data"].get("status") == "rejected" for m in ms))
    rejected = [m["data"] for m in got if m["data"].get("status") == "rejected"]
    assert rejected, "no rejected event"
    assert field in rejected[0]["reason"]
    assert rejected[0]["order_id"] is None
    # Acknowledged: no redelivery produces a second rejection.
    later = events.collect(lambda ms: False, timeout=2.5)
    assert not [m for m in later if m["data"].get("status") == "rejected"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_crashing_signal_is_retried_and_ends_in_the_dead_letter_topic(stack, publisher, subscriber,
                                                                         spawn_function):
    # A signals function whose Cloud Tasks is unreachable fails every delivery after recording the order.
    tag = uuid.uuid4().hex[:10]
    topic, dead = f"crash-{tag}", f"crash-{tag}-dl"
    url = spawn_function("signals", CLOUD_TASKS_EMULATOR_HOST=f"127.0.0.1:{_closed_port()}",
                         SIGNAL_STRATEGIES=f"{topic}=*")  # a topic is a publisher: this one may trade anything
    for name in (topic, dead):
        publisher.create_topic(name=f"projects/{stack.project}/topics/{name}")
    dead_sub = subscriber.subscription_path(stack.project, f"{dead}-sub")
    subscriber.create_subscription(request={"name": dead_sub, "topic": f"projects/{stack.project}/topics/{dead}"})
    subscriber.create_subscription(request={
        "name": subscriber.subscription_path(stack.project, f"{topic}-push"),
        "topic": f"projects/{stack.project}/topics/{topic}",
        "push_config": PushConfig(push_endpoint=f"{url}/projects/{stack.project}/topics/{topic}"),
        "dead_letter_policy": DeadLetterPolicy(dead_letter_topic=f"projects/{stack.project}/topics/{dead}",
                                               max_delivery_attempts=5),
    })
    signal = {**SEED, "signal_id": f"sig_{tag}", "price": 40_000}
    publish(publisher, stack, signal, topic=topic)
    landed = []
    for _ in range(30):
        try:
            resp = subscriber.pull(request={"subscription": dead_sub, "max_messages": 5}, timeout=5)
        except DeadlineExceeded:
            continue
        landed += resp.received_messages
        if landed:
            break
    assert landed, "the message never reached the dead-letter topic"
    assert json.loads(landed[0].message.data)["signal_id"] == signal["signal_id"]
    assert int(landed[0].message.attributes.get("CloudPubSubDeadLetterSourceDeliveryCount", "5")) >= 5
    # Nothing was lost meanwhile: the order is recorded once (the sweep submits it).
    docs = list(firestore.Client(project=stack.project).collection("orders")
                .where(filter=FieldFilter("signal_id", "==", signal["signal_id"])).stream())
    assert len(docs) == 1 and docs[0].to_dict()["status"] == "new"


def test_a_signal_price_sent_as_a_json_number_keeps_every_digit(stack, publisher, tap, http):
    """12345.123456789012345678 as a float is 12345.123456789011: the message must never be parsed through one."""
    price, quantity = "12345.123456789012345678", "0.1000000000000000055511151231257827"
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    # A SmartRouter parent (its children fit the venue's lot and tick): the record keeps the numbers as sent.
    signal = {**SEED, "exchange": "smart", "signal_id": f"sig_{uuid.uuid4().hex[:12]}", "price": 0, "quantity": 1}
    data = json.dumps(signal).replace('"price": 0', f'"price": {price}').replace('"quantity": 1',
                                                                              f'"quantity": {quantity}')
    publish(publisher, stack, data.encode())
    got = events.collect(lambda ms: bool(of_signal(ms, signal["signal_id"])))
    mine = of_signal(got, signal["signal_id"])
    assert mine, "no event for the signal"
    order_id = mine[0]["order_id"]
    stored = firestore.Client(project=stack.project).collection("orders").document(order_id).get().to_dict()
    assert (stored["price"], stored["quantity"]) == (price, quantity)
    order = http.get(f"{stack.api_url}/orders/{order_id}", headers={"X-API-Key": stack.env["API_KEY"]},
                     timeout=10).json()
    assert (order["price"], order["quantity"]) == (price, quantity)
    http.delete(f"{stack.api_url}/orders/{order_id}", headers={"X-API-Key": stack.env["API_KEY"]}, timeout=10)


VENUE_MISFIT_SIGNALS = [
    ({"quantity": "0.000015"}, "quantity", "lot size 0.00001"),
    ({"price": "50000.005"}, "price", "tick size 0.01"),
    ({"quantity": "0.00005"}, "quantity", "minimum notional 5"),
]


@pytest.mark.parametrize(("change", "field", "rule"), VENUE_MISFIT_SIGNALS, ids=[r for _, _, r in VENUE_MISFIT_SIGNALS])
def test_a_signal_the_venue_cannot_take_gets_a_rejected_event_naming_the_rule(stack, publisher, tap, change, field,
                                                                              rule):
    events = tap(stack.env["ORDER_EVENTS_TOPIC"])
    signal = {**SEED, "signal_id": f"sig_{uuid.uuid4().hex[:12]}", **change}
    publish(publisher, stack, signal)
    got = events.collect(lambda ms: any(e.get("status") == "rejected" for e in of_signal(ms, signal["signal_id"])))
    (rejected,) = [e for e in of_signal(got, signal["signal_id"]) if e.get("status") == "rejected"]
    assert rule in rejected["reason"] and f"{field}:" in rejected["reason"]
    assert rejected["order_id"] is None  # refused at intake: no order was made, none went to the venue
