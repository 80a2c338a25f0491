"""Signal intake rules with in-memory fakes of the store and bus ports."""

import json

from shared.app.signals import intake


class MemoryStore:
    def __init__(self):
        self.signals = {}

    def create_signal(self, signal_id, record):
        if signal_id in self.signals:
            return False
        self.signals[signal_id] = record
        return True


class MemoryBus:
    def __init__(self):
        self.published = []

    def publish(self, topic, payload, **attributes):
        self.published.append((topic, payload, attributes))


def run(data: bytes, store=None, bus=None):
    store, bus = store or MemoryStore(), bus or MemoryBus()
    outcome = intake(data, "m-1", store=store, bus=bus, events_topic="order-events", now_ms=lambda: 1234)
    return outcome, store, bus


def test_first_delivery_is_recorded_and_announced():
    outcome, store, bus = run(json.dumps({"signal_id": "s-1", "symbol": "BTC/USDT"}).encode())
    assert outcome.status == "received"
    assert store.signals["s-1"]["signal"]["symbol"] == "BTC/USDT"
    assert bus.published == [("order-events", {"signal_id": "s-1", "status": "received", "timestamp": 1234},
                              {"signal_id": "s-1"})]


def test_repeated_delivery_announces_nothing_more():
    store, bus = MemoryStore(), MemoryBus()
    data = json.dumps({"signal_id": "s-1"}).encode()
    statuses = [run(data, store, bus)[0].status for _ in range(3)]
    assert statuses == ["received", "duplicate", "duplicate"]
    assert len(bus.published) == 1


def test_unreadable_messages_are_rejected_with_a_reason():
    for data, reason in [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "signal_id: required"),
        (b'{"signal_id": 5}', "signal_id: required"),
        (b'{"signal_id": "  "}', "signal_id: required"),
    ]:
        outcome, store, bus = run(data)
        assert outcome.status == "rejected" and reason in outcome.reason, data
        assert store.signals == {}
        assert bus.published[0][1]["status"] == "rejected" and reason in bus.published[0][1]["reason"]
