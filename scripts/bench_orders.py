"""End-to-end latency of the order paths on the running local stack, each beside its baseline from the same run.

    ./emulator.sh && source .local/env
    .venv/bin/python scripts/bench_orders.py [--signals 100] [--signal-rate 5] [--requests 300] [--http-rate 20]

Measures, at a steady rate:
1. signal published -> `accepted` event (venue ack) and -> `filled` event, pulled from order-events;
   baseline: a bare Pub/Sub push round trip (publish -> push -> an empty function publishes -> pull);
2. `POST /api/v1/orders` (a marketable limit order) request -> response;
   baseline: the same POST to an empty functions-framework HTTP function; and, for reference, to one that
   writes one Firestore document first (the floor of any answer that must be durable);
3. Firestore reads and writes per simple filled order (the service's own counters in /metrics).
Prints p50/p99 in ms and the ratio to the baseline. Targets (issue 4): <= 2x at p50, <= 3x at p99, <= 3 writes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings, PushConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from localstack import VENV_BIN, free_port, tcp_open  # noqa: E402

from shared.infra.venues import percentile  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    return percentile(sorted(xs), q) if xs else float("nan")


class Arrivals:
    """Streaming-pull subscriber recording when each (key, status) first arrives."""

    def __init__(self, subscriber: pubsub_v1.SubscriberClient, project: str, topic: str, key: str) -> None:
        self.path = subscriber.subscription_path(project, f"bench-{topic}-{uuid.uuid4().hex[:8]}")
        subscriber.create_subscription(request={"name": self.path, "topic": f"projects/{project}/topics/{topic}",
                                                "enable_message_ordering": True})
        self.seen: dict[tuple[str, str], float] = {}
        self._key = key
        self._sub = subscriber
        self._cond = threading.Condition()
        self._future = subscriber.subscribe(self.path, self._on)

    def _on(self, message) -> None:
        now = time.perf_counter()
        message.ack()
        try:
            body = json.loads(message.data)
        except ValueError:
            return
        with self._cond:
            self.seen.setdefault((str(body.get(self._key)), str(body.get("status", ""))), now)
            self._cond.notify_all()

    def wait(self, keys: list[tuple[str, str]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(k in self.seen for k in keys) and time.monotonic() < deadline:
                self._cond.wait(0.2)

    def close(self) -> None:
        self._future.cancel()
        self._sub.delete_subscription(request={"subscription": self.path})


def paced(n: int, rate: float, send) -> dict[int, float]:
    """Call send(i) for i in range(n) at `rate` per second; returns each send's start time."""
    start = time.perf_counter()
    sent: dict[int, float] = {}
    for i in range(n):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[i] = time.perf_counter()
        send(i)
    return sent


def counters(api_url: str, key: str) -> dict[str, int]:
    data = requests.get(f"{api_url}/metrics", headers={"X-API-Key": key}, timeout=10).json()["counters"]
    # the order path's own (the TCA pipeline's are counted apart, caller="tca": scripts/bench_tca.py)
    return {name: sum(r["value"] for r in data.get(name, []) if r["labels"].get("caller") == "orders")
            for name in ("firestore_reads", "firestore_writes")}


def report(label: str, xs: list[float], base: list[float]) -> None:
    p50, p99, b50, b99 = pct(xs, 50), pct(xs, 99), pct(base, 50), pct(base, 99)
    print(f"{label:<44} p50 {p50:8.1f}  p99 {p99:8.1f}   baseline p50 {b50:7.1f}  p99 {b99:7.1f}   "
          f"ratio p50 {p50 / b50:4.2f}x  p99 {p99 / b99:4.2f}x   (n={len(xs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--signal-rate", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--http-rate", type=float, default=20.0)
    args = parser.parse_args()
    missing = [v for v in ("API_URL", "API_KEY", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT") if not os.environ.get(v)]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run ./emulator.sh and `source .local/env` first")
    project, api_url, key = os.environ["GOOGLE_CLOUD_PROJECT"], os.environ["API_URL"], os.environ["API_KEY"]
    tag = uuid.uuid4().hex[:8]
    publisher = pubsub_v1.PublisherClient(batch_settings=BatchSettings(max_messages=1))
    subscriber = pubsub_v1.SubscriberClient()
    logdir = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    procs: list[subprocess.Popen] = []

    def spawn(target: str, port: int, env: dict[str, str]) -> None:
        procs.append(subprocess.Popen(
            [str(VENV_BIN / "functions-framework"), "--source", str(ROOT / "scripts/bench_functions.py"),
             "--target", target, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env}, stdout=open(logdir / f"{target}.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True))
        deadline = time.monotonic() + 30
        while not tcp_open(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"{target} did not start; see {logdir}")
            time.sleep(0.1)

    http_port, durable_port, relay_port = free_port(), free_port(), free_port()
    in_topic, relay_topic = f"bench-in-{tag}", f"bench-relay-{tag}"
    arrivals: list[Arrivals] = []
    try:
        for t in (in_topic, relay_topic):
            publisher.create_topic(name=publisher.topic_path(project, t))
        spawn("empty_http", http_port, {})
        spawn("durable_http", durable_port, {})
        spawn("empty_relay", relay_port, {"BENCH_RELAY_TOPIC": relay_topic})
        subscriber.create_subscription(request={
            "name": subscriber.subscription_path(project, f"{in_topic}-push"), "topic": publisher.topic_path(project, in_topic),
            "push_config": PushConfig(push_endpoint=f"http://127.0.0.1:{relay_port}/projects/{project}/topics/{in_topic}")})
        relay = Arrivals(subscriber, project, relay_topic, "id")
        events = Arrivals(subscriber, project, os.environ.get("ORDER_EVENTS_TOPIC", "order-events"), "signal_id")
        arrivals += [relay, events]
        time.sleep(1)  # subscriptions settle

        print(f"== 1. signal -> venue ack / filled ({args.signals} at {args.signal_rate}/s) vs a bare push round trip")
        sent_base = paced(args.signals, args.signal_rate, lambda i: publisher.publish(
            publisher.topic_path(project, in_topic), json.dumps({"id": f"b{i}"}).encode()).result())
        relay.wait([(f"b{i}", "") for i in range(args.signals)], 30)
        base = [(relay.seen[(f"b{i}", "")] - t) * 1000 for i, t in sent_base.items() if (f"b{i}", "") in relay.seen]

        before = counters(api_url, key)
        signals_topic = publisher.topic_path(project, os.environ.get("SIGNALS_TOPIC", "execution-signals"))
        ids = [f"bench-{tag}-{i}" for i in range(args.signals)]
        sent = paced(args.signals, args.signal_rate, lambda i: publisher.publish(signals_topic, json.dumps({
            "signal_id": ids[i], "strategy_id": "bench", "exchange": "binance", "symbol": "BTC/USDT", "side": "buy",
            "quantity": 0.001, "order_type": "limit", "price": 51000, "time_in_force": "GTC"}).encode()).result())
        events.wait([(s, "filled") for s in ids], 60)
        time.sleep(1.0)  # the publish marks land just after the last events
        after = counters(api_url, key)
        acked = [(events.seen[(s, "accepted")] - sent[i]) * 1000 for i, s in enumerate(ids) if (s, "accepted") in events.seen]
        filled = [(events.seen[(s, "filled")] - sent[i]) * 1000 for i, s in enumerate(ids) if (s, "filled") in events.seen]
        report("signal -> accepted (venue ack) event", acked, base)
        report("signal -> filled event", filled, base)
        if len(filled) < len(ids):
            print(f"  warning: {len(ids) - len(filled)} signals did not reach `filled` within the wait")

        print(f"\n== 2. POST /orders ({args.requests} at {args.http_rate}/s) vs an empty HTTP function")
        session = requests.Session()
        empty: list[float] = []
        durable: list[float] = []
        orders: list[float] = []

        def post_to(port: int, into: list[float]):
            def post(i: int) -> None:
                t0 = time.perf_counter()
                session.post(f"http://127.0.0.1:{port}/", json={"i": i}, timeout=10).raise_for_status()
                into.append((time.perf_counter() - t0) * 1000)
            return post

        def post_order(i: int) -> None:
            t0 = time.perf_counter()
            resp = session.post(f"{api_url}/orders", headers={"X-API-Key": key}, timeout=10, json={
                "client_order_id": f"bench-{tag}-{i}", "strategy_id": "bench", "exchange": "binance",
                "symbol": "BTC/USDT", "side": "buy", "quantity": "0.001", "order_type": "limit", "price": "51000"})
            if resp.status_code != 201:
                raise SystemExit(f"POST /orders answered {resp.status_code}: {resp.text[:200]}")
            orders.append((time.perf_counter() - t0) * 1000)

        paced(args.requests, args.http_rate, post_to(http_port, empty))
        paced(args.requests, args.http_rate, post_to(durable_port, durable))
        paced(args.requests, args.http_rate, post_order)
        report("POST /api/v1/orders", orders, empty)
        report("  reference: one Firestore create, vs empty", durable, empty)
        report("  POST /api/v1/orders vs that durable floor", orders, durable)

        n = len(filled) or 1
        writes = (after["firestore_writes"] - before["firestore_writes"]) / n
        reads = (after["firestore_reads"] - before["firestore_reads"]) / n
        print(f"\n== 3. Firestore per simple filled order (signal path): writes {writes:.2f}, reads {reads:.2f}"
              f"   target <= 3 writes: {'OK' if writes <= 3 else 'MISSED'}")
    finally:
        for a in arrivals:
            a.close()
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for t in (in_topic, relay_topic):
            try:
                publisher.delete_topic(topic=publisher.topic_path(project, t))
            except Exception:
                pass


if __name__ == "__main__":
    main()
