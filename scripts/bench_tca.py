"""What transaction cost analysis costs, each figure beside a baseline measured in the same run.

    .venv/bin/python scripts/bench_tca.py                 # the pure parts only (no stack)
    ./emulator.sh && source .local/env
    .venv/bin/python scripts/bench_tca.py --stack 40      # and 40 real orders on the running local stack

1. ``analyze`` of one order with 1, 10 and 100 fills (us per order); baseline: the order record's own codec round
   trip (order_to_dict + order_from_dict), which every read of an order already pays;
2. ``aggregate`` over 10,000 TCA rows in 3 groups with its bootstrap (ms); baseline: decoding those rows from JSON
   (what reading them costs before any arithmetic);
3. with ``--stack N``: N marketable direct orders through the API; once every row is complete (the +300 s markout
   is in: this takes about six minutes), the Firestore reads and writes TCA added per order (the service counts
   them apart, ``execution_firestore_{reads,writes}_total{caller="tca"}``) beside the order path's own
   (caller="orders"), the markout tasks per order, and what TCA adds per 1M orders at list prices (below).
Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.app.tca_pipeline import tca_row  # noqa: E402
from shared.domain.orders import Order, OrderType, Side, Status, TimeInForce  # noqa: E402
from shared.domain.tca import Quote, TapeTrade, TcaFill, TcaInput, Times, analyze  # noqa: E402
from shared.domain.tca_aggregate import aggregate  # noqa: E402
from shared.infra.codec import order_from_dict, order_to_dict  # noqa: E402

D = Decimal
# List prices (USD, Firestore Standard edition and Cloud Tasks, December 2026 price pages): per operation.
FIRESTORE_READ = D("0.06") / 100_000
FIRESTORE_WRITE = D("0.18") / 100_000
CLOUD_TASK = D("0.40") / 1_000_000
PUSH_DELIVERY = D("0.40") / 1_000_000  # a Cloud Run request (the tca function's invocation), CPU time apart


def _order(i: int = 0) -> Order:
    return Order(order_id=f"o{i}", client_order_id=f"c{i}", strategy_id="s", exchange="binance",
                 symbol="BTC/USDT", side=Side.BUY, quantity=D("1"), order_type=OrderType.LIMIT,
                 time_in_force=TimeInForce.GTC, created_at=1_000, price=D("50100"))


def _input(fills: int) -> TcaInput:
    q = D(1) / fills
    tca_fills = tuple(TcaFill(q, D(50000) + i, 2_000 + i * 10, D("0.05") * q, "taker" if i % 2 else "maker",
                              Quote(D(49990) + i, D(50010) + i), {1: D(50005), 10: D(50001), 60: D(49999)})
                      for i in range(fills))
    tape = tuple(TapeTrade(1_500 + i * 7, D(49995) + i % 13, D("0.3"), ours=i % 5 == 0) for i in range(200))
    return TcaInput(side=Side.BUY, quantity=D(1), fills=tca_fills, decision_price=D(49998), arrival_mid=D(50000),
                    end_mid=D(50003), tape=tape, window=(1_500, 2_000 + fills * 10),
                    mids=tuple((1_500 + i * 100, D(50000) + i) for i in range(20)),
                    times=Times(decided=1_000, submitted=1_200, acknowledged=1_400, first_fill=2_000))


def _per_call_us(fn, repeat: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(runs)


def bench_analyze() -> None:
    order = _order()
    base = _per_call_us(lambda: order_from_dict(order_to_dict(order)), 300)
    print(f"baseline: order record codec round trip          {base:9.1f} us")
    for fills in (1, 10, 100):
        data = _input(fills)
        took = _per_call_us(lambda data=data: analyze(data), max(10, 300 // fills))
        print(f"analyze, {fills:3d} fills                              {took:9.1f} us  ({took / base:5.1f}x)")


def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        venue = ("binance", "coinbase", "kraken")[i % 3]
        filled = replace(_order(i), exchange=venue, status=Status.FILLED, terminal_at=3_000)
        record = analyze(replace(_input(1), arrival_mid=D(50000) - (i % 17), decision_price=D(49990) + i % 11))
        rows.append(tca_row(filled, record, version=2, complete=True))
    return rows


def bench_aggregate(n: int = 10_000) -> None:
    rows = _rows(n)
    text = [json.dumps(r) for r in rows]
    start = time.perf_counter()
    decoded = [json.loads(t) for t in text]
    base = (time.perf_counter() - start) * 1000
    print(f"baseline: decode {n} rows from JSON              {base:9.1f} ms")
    start = time.perf_counter()
    groups = aggregate(decoded, ("venue",), seed=0)
    took = (time.perf_counter() - start) * 1000
    print(f"aggregate {n} rows, 3 groups, bootstrap          {took:9.1f} ms  ({took / base:5.1f}x)  "
          f"({len(groups)} groups)")


def _counters(api: str, key: str) -> dict[tuple[str, str], int]:
    import requests

    data = requests.get(f"{api}/metrics", headers={"X-API-Key": key}, timeout=10).json()["counters"]
    out: dict[tuple[str, str], int] = {}
    for name in ("firestore_reads", "firestore_writes"):
        for row in data.get(name, []):
            key_ = (name, row["labels"].get("caller", ""))
            out[key_] = out.get(key_, 0) + row["value"]
    return out


def bench_stack(n: int) -> None:
    import requests

    api, key = os.environ["API_URL"], os.environ["API_KEY"]
    headers = {"X-API-Key": key}

    def get(path: str) -> dict:
        return requests.get(f"{api}{path}", headers=headers, timeout=30).json()

    # Completion is watched on the tca-records topic (a private pull subscription), not by polling the API: a
    # poll of GET /orders/{id}/tca reads Firestore under caller=tca too and would be counted as TCA's own cost.
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    sub = subscriber.subscription_path(project, f"bench-tca-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(request={"name": sub, "topic": f"projects/{project}/topics/tca-records"})
    before = _counters(api, key)
    ids = []
    for i in range(n):
        body = {"strategy_id": "bench-tca", "client_order_id": f"btca-{uuid.uuid4().hex[:12]}", "exchange": "binance",
                "symbol": "BTC/USDT", "side": "buy" if i % 2 else "sell", "quantity": "0.001",
                "order_type": "market"}
        resp = requests.post(f"{api}/orders", json=body, headers=headers, timeout=30)
        resp.raise_for_status()
        ids.append(resp.json()["order_id"])
        time.sleep(0.25)  # a steady trickle: fills fall in different seconds, as in production
    print(f"{n} market orders sent; waiting for every complete TCA row on tca-records (+300 s markouts)...")
    deadline = time.monotonic() + 900
    pending = set(ids)
    try:
        while pending and time.monotonic() < deadline:
            got = subscriber.pull(request={"subscription": sub, "max_messages": 100}, timeout=10)
            if got.received_messages:
                subscriber.acknowledge(request={"subscription": sub,
                                                "ack_ids": [m.ack_id for m in got.received_messages]})
            for m in got.received_messages:
                row = json.loads(m.message.data)
                if row.get("complete"):
                    pending.discard(row["order_id"])
    finally:
        subscriber.delete_subscription(request={"subscription": sub})
    time.sleep(5)  # the last row's write and the metrics' writer
    after = _counters(api, key)
    done = n - len(pending)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    tca_r, tca_w = delta.get(("firestore_reads", "tca"), 0) / n, delta.get(("firestore_writes", "tca"), 0) / n
    ord_r, ord_w = delta.get(("firestore_reads", "orders"), 0) / n, delta.get(("firestore_writes", "orders"), 0) / n
    print(f"complete rows: {done}/{n}")
    print(f"baseline: the order path per order               reads {ord_r:6.2f}  writes {ord_w:6.2f}")
    print(f"TCA per order                                    reads {tca_r:6.2f}  writes {tca_w:6.2f}")
    # order events pushed to the tca function: each order's event sequence number counts them
    events = sum(D(str(get(f"/orders/{order_id}")["sequence"])) for order_id in ids) / n
    # markout tasks: at most 4 per fill (an upper bound: fills sharing a venue, symbol and second share them)
    tasks = D(4)
    cost = (D(str(tca_r)) * FIRESTORE_READ + D(str(tca_w)) * FIRESTORE_WRITE + D(str(tasks)) * CLOUD_TASK
            + D(str(events + tasks)) * PUSH_DELIVERY) * 1_000_000
    base = (D(str(ord_r)) * FIRESTORE_READ + D(str(ord_w)) * FIRESTORE_WRITE) * 1_000_000
    print(f"order events per order (counted): {events:.2f}")
    print(f"per 1M orders: TCA adds <=${cost:.2f} (Firestore, <={tasks:.0f} tasks and {events + tasks:.1f} invocations "
          f"per order, CPU apart) beside the order path's Firestore ${base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", type=int, default=0, metavar="N", help="also N real orders on the local stack")
    args = parser.parse_args()
    bench_analyze()
    bench_aggregate()
    if args.stack:
        bench_stack(args.stack)


if __name__ == "__main__":
    main()
