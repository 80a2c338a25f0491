"""Benchmark of the dead man's switch on a running stack: how long after a missed deadline the venue has cancelled
every working order of the strategy, beside the time to cancel one order measured in the same run. Prints,
never asserts (target, issue 12: 100 working orders cancelled at the venue within 2 s of the deadline).

    ./emulator.sh && source .local/env && .venv/bin/python scripts/bench_dms.py [--orders 100] [--baseline 5]

(or a private stack: `localstack.py start --state-dir S`, then `set -a; source S/env; set +a`).

1. Baseline: `DELETE /orders/{id}` of one working order, until the answer says canceled (the service cancels at
   the venue before it answers): median of `--baseline` runs.
2. The switch: a heartbeat arms a strategy for 60 s while `--orders` limit orders are placed and acknowledged;
   a last heartbeat, sent with an explicit `sent_at_ms`, sets the deadline 1.5 s ahead; one dms check
   (`{"for_s": 6}`, as Cloud Scheduler calls it) wakes at the deadline, fires, and cancels in parallel. The
   figure is the time from the deadline until the venue (its adapter's open orders) lists none of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.infra.venues import VenueClient, session  # noqa: E402

ORDER = {"exchange": "binance", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01", "order_type": "limit",
         "price": "40000"}  # far below the market: it rests


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.http = url, requests.Session()
        self.http.headers["X-API-Key"] = key
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16))

    def __call__(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        while True:  # over the key's rate limit (API_RATE_LIMIT): wait as told and send it again
            resp = self.http.request(method, self.url + path, json=body, timeout=60)
            if resp.status_code != 429:
                return resp
            time.sleep(float(resp.headers.get("Retry-After") or 1) / 4)


def working(api: Api, strategy: str) -> dict:
    """Place one order and wait until the venue acknowledged it."""
    resp = api("POST", "/orders", {**ORDER, "strategy_id": strategy, "client_order_id": f"b-{uuid.uuid4().hex[:20]}"})
    resp.raise_for_status()
    order = resp.json()
    deadline = time.monotonic() + 120
    while order["status"] != "accepted":
        if time.monotonic() > deadline:
            raise SystemExit(f"order {order['order_id']} never accepted: {order['status']}")
        time.sleep(0.2)
        order = api("GET", f"/orders/{order['order_id']}").json()
    return order


def baseline(api: Api, runs: int) -> float:
    took = []
    for _ in range(runs):
        order = working(api, f"bench-dms-one-{uuid.uuid4().hex[:6]}")
        t0 = time.perf_counter()
        answer = api("DELETE", f"/orders/{order['order_id']}").json()
        took.append((time.perf_counter() - t0) * 1000)
        if answer["status"] != "canceled":
            print(f"  note: one cancel answered {answer['status']}")
    return statistics.median(took)


def switch(api: Api, venue: VenueClient, dms_url: str, n: int) -> None:
    strategy = f"bench-dms-{uuid.uuid4().hex[:8]}"
    assert api("POST", "/heartbeat", {"strategy_id": strategy, "timeout_ms": 60_000}).status_code == 200
    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        orders = list(pool.map(lambda _: working(api, strategy), range(n)))
    print(f"  {n} working orders placed and acknowledged in {time.perf_counter() - t0:.1f} s")
    ours = {o["venue_client_order_id"] for o in orders}
    beat = api("POST", "/heartbeat", {"strategy_id": strategy, "timeout_ms": 1_500, "sent_at_ms": now_ms()})
    beat.raise_for_status()
    deadline = beat.json()["deadline_ms"]

    result: dict = {}
    checker = threading.Thread(target=lambda: result.update(
        requests.post(dms_url, json={"for_s": 6}, timeout=120).json()), daemon=True)
    checker.start()
    open_at_deadline = None
    while True:
        still = ours & {o.client_order_id for o in venue.open_orders(ORDER["symbol"])}
        t = now_ms()
        if open_at_deadline is None and t >= deadline:
            open_at_deadline = len(still)
        if not still and t >= deadline:
            done = t
            break
        if t > deadline + 60_000:
            print(f"  {len(still)} orders still open at the venue 60 s after the deadline")
            return
        time.sleep(0.02)
    checker.join(timeout=120)
    records = [api("GET", f"/orders/{o['order_id']}").json() for o in orders[:5]]
    print(f"  deadline -> all {n} cancelled at the venue: {done - deadline} ms "
          f"(open at the deadline: {open_at_deadline}; target 2000 ms)")
    print(f"  the check: fired {[f['strategy_id'] for f in result.get('fired', [])]}, "
          f"cancelled {result.get('canceled_orders')} orders")
    print(f"  sample record: {records[0]['status']}, reason {records[0]['reason']!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--baseline", type=int, default=5)
    args = parser.parse_args()
    env = os.environ
    missing = [v for v in ("API_URL", "API_KEY", "DMS_FUNCTION_URL", "ADAPTER_ENDPOINTS") if not env.get(v)]
    if missing:
        raise SystemExit(f"needs a running stack's environment (missing {', '.join(missing)}): "
                         "./emulator.sh && source .local/env")
    api = Api(env["API_URL"], env["API_KEY"])
    adapters = dict(item.split("=", 1) for item in env["ADAPTER_ENDPOINTS"].split(",") if item)
    venue = VenueClient("binance", adapters["binance"], session())
    print(f"baseline: one DELETE /orders/{{id}} (cancelled at the venue), median of {args.baseline}: "
          f"{baseline(api, args.baseline):.0f} ms")
    print(f"dead man's switch, {args.orders} working orders:")
    switch(api, venue, env["DMS_FUNCTION_URL"], args.orders)


if __name__ == "__main__":
    main()
