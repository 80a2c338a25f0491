"""TWAP and VWAP execution quality on the running local stack: slice timing, deadline, slippage vs the market.

    ./emulator.sh && source .local/env
    .venv/bin/python scripts/bench_algos.py [--duration 30] [--slices 6] [--quantity 1] [--runs 2]

Each run starts one TWAP and one VWAP parent at the same time (buy, taker mode, on the simulated binance, whose
market keeps trading) and follows both to their end. Per algorithm it prints:
- slice timing error: when each child was created minus when the schedule said its slice runs (the planner's own
  ``Schedule``; a VWAP shares TWAP's slice times), p50 / p99 / max over every slice of every run;
- whether the parent traded inside its window: its last fill minus the window's deadline (negative is inside);
  the parent itself closes up to a second later, when its next check sees the last child's answer;
- slippage vs the market's interval VWAP: the parent's average price against the volume-weighted price of every
  trade on the venue's public tape between the parent's start and its end (bps, positive = paid more than the
  market did). That interval VWAP is the baseline a scheduled algorithm is judged against.
Target (issue 5): both finish inside their window; timing error and slippage printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.app.market_data import MarketData  # noqa: E402 (after the path setup)
from shared.domain.algorithms.twap import Schedule  # noqa: E402
from shared.domain.orders import TERMINAL  # noqa: E402
from shared.infra.venues import VenueClient, percentile, session  # noqa: E402

VENUE, SYMBOL = "binance", "BTC/USDT"
ENDED = {s.value for s in TERMINAL}


def tape_vwap(market: MarketData, start_ms: int, end_ms: int) -> tuple[Decimal, Decimal]:
    """(volume-weighted price, volume) of every public trade on the venue in [start_ms, end_ms]."""
    trades = market.tape(VENUE, SYMBOL, start_ms, end_ms)
    volume = sum((t.quantity for t in trades), Decimal(0))
    notional = sum((t.price * t.quantity for t in trades), Decimal(0))
    return (notional / volume if volume else Decimal(0)), volume


def pct(values: list[float], q: float) -> float:
    return percentile(sorted(values), q)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=30, help="window, seconds")
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--quantity", default="1")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    missing = [v for v in ("API_URL", "API_KEY", "ADAPTER_ENDPOINTS") if not os.environ.get(v)]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run ./emulator.sh and `source .local/env` first")
    api = os.environ["API_URL"]
    adapters = dict(item.split("=", 1) for item in os.environ["ADAPTER_ENDPOINTS"].split(","))
    market_data = MarketData({VENUE: VenueClient(VENUE, adapters[VENUE], session())})
    http = requests.Session()
    http.headers["X-API-Key"] = os.environ["API_KEY"]
    algos = ("twap", "vwap")
    timing: dict[str, list[float]] = {a: [] for a in algos}
    lateness: dict[str, list[int]] = {a: [] for a in algos}
    slippage: dict[str, list[Decimal]] = {a: [] for a in algos}

    print(f"== TWAP and VWAP: buy {args.quantity} {SYMBOL} on {VENUE} over {args.duration} s in {args.slices} "
          f"slices, {args.runs} run(s)")
    for run in range(args.runs):
        ids = {}
        for algo in algos:
            resp = http.post(f"{api}/orders", timeout=30, json={
                "client_order_id": f"bench-{algo}-{uuid.uuid4().hex[:16]}", "strategy_id": "bench-algos",
                "exchange": VENUE, "symbol": SYMBOL, "side": "buy", "quantity": args.quantity,
                "order_type": "limit", "price": "1000000", "algorithm": algo,
                "algorithm_params": {"duration_s": args.duration, "slices": args.slices}})
            resp.raise_for_status()
            ids[algo] = resp.json()["order_id"]
        deadline = time.monotonic() + args.duration + 60
        parents: dict[str, dict] = {}
        while len(parents) < len(ids) and time.monotonic() < deadline:
            for algo, order_id in ids.items():
                o = http.get(f"{api}/orders/{order_id}", timeout=30).json()
                if o["status"] in ENDED:
                    parents[algo] = o
            time.sleep(0.5)
        for algo in algos:
            p = parents.get(algo)
            if p is None:
                print(f"run {run} {algo}: did not end within the window + 60 s")
                continue
            start, end = p["created_at"], p["created_at"] + args.duration * 1000
            schedule = Schedule(p["client_order_id"], start, end, args.slices)
            errors = [c["created_at"] - schedule.at(c["slice"]) for c in p["progress"]["children"]
                      if c["slice"] < args.slices]
            timing[algo] += errors
            # a parent keeps its children's totals, not their fills: the last fill is on a child's record
            child_fills = [f["timestamp"] for c in p["progress"]["children"]
                           for f in http.get(f"{api}/orders/{c['order_id']}", timeout=30).json()["fills"]]
            last_fill = max(child_fills, default=p["terminal_at"])
            lateness[algo].append(last_fill - end)
            market, volume = tape_vwap(market_data, start, p["terminal_at"])
            avg = Decimal(p["average_price"] or 0)
            slip = (avg - market) / market * 10_000 if market and avg else None
            if slip is not None:
                slippage[algo].append(slip)
            print(f"run {run} {algo}: {p['status']} {p['filled_quantity']} at {avg:.2f}; market interval VWAP "
                  f"{market:.2f} over {volume:.4f} traded; slippage {slip:+.2f} bps; last fill "
                  f"{(last_fill - end) / 1000:+.2f} s vs the deadline (parent closed "
                  f"{(p['terminal_at'] - end) / 1000:+.2f} s); children {len(p['progress']['children'])}"
                  if slip is not None else f"run {run} {algo}: {p['status']}, nothing filled")
    print("== summary")
    for algo in algos:
        t = timing[algo]
        if not t:
            print(f"{algo}: no slices measured")
            continue
        s = slippage[algo]
        inside = sum(1 for x in lateness[algo] if x <= 0)
        print(f"{algo}: slice timing error p50 {pct(t, 50):.0f} ms, p99 {pct(t, 99):.0f} ms, max {max(t):.0f} ms "
              f"over {len(t)} slices; traded inside the window {inside}/{len(lateness[algo])} (last fill at the latest "
              f"{max(lateness[algo]) / 1000:+.2f} s); slippage vs interval VWAP mean "
              f"{statistics.fmean(float(x) for x in s):+.2f} bps (runs: {', '.join(f'{x:+.2f}' for x in s)})")


if __name__ == "__main__":
    main()
