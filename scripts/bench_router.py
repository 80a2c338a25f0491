"""Benchmark of the SmartRouter's allocation, beside a baseline measured in the same run.

    .venv/bin/python scripts/bench_router.py [--runs 2000]

Books: 5 venues x 50 levels a side (deterministic, seeded), different lots (0.00001 to 0.001), taker fees
(5 to 10 bps) and a minimum notional, so lot rounding and the repair pass run as they do in production.
Measures `allocate` for an order that takes about half of the consolidated ask side (~125 levels: the headline
figure), and for reference a small order (a few levels) and one larger than every book (all 250 levels);
baseline: merely sorting the 250 ask levels by price (`sorted(..., key=price)`). Prints the median and p99 in
microseconds and the ratio to the baseline. Target: allocate < 1 ms (1000 us).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from decimal import Decimal
from operator import attrgetter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.domain.market import Book, Level, VenueTerms  # noqa: E402
from shared.domain.orders import Side  # noqa: E402
from shared.domain.router import allocate  # noqa: E402
from shared.infra.venues import percentile  # noqa: E402

SYMBOL = "BTC/USDT"
TARGET_US = 1000.0


def market(seed: int = 7, venues: int = 5, levels: int = 50) -> tuple[dict[str, Book], dict[str, VenueTerms]]:
    rng = random.Random(seed)
    lots = ["0.00001", "0.0001", "0.001", "0.00001", "0.0001"]
    fees = ["0.001", "0.0008", "0.0005", "0.00075", "0.001"]
    books: dict[str, Book] = {}
    terms: dict[str, VenueTerms] = {}
    for v in range(venues):
        name = f"venue{v}"
        lot = Decimal(lots[v % len(lots)])
        mid = 50_000 + rng.uniform(-20, 20)
        ask, bid = Decimal(f"{mid + 0.5:.2f}"), Decimal(f"{mid - 0.5:.2f}")
        asks, bids = [], []
        for _ in range(levels):
            asks.append(Level(ask, lot * rng.randint(10, 2000)))
            bids.append(Level(bid, lot * rng.randint(10, 2000)))
            ask += Decimal(rng.randint(1, 300)) / 100
            bid -= Decimal(rng.randint(1, 300)) / 100
        books[name] = Book(name, SYMBOL, tuple(bids), tuple(asks), at_ms=0)
        terms[name] = VenueTerms(name, SYMBOL, Decimal("0.01"), lot, lot, Decimal("5"), Decimal("0.0002"),
                                 Decimal(fees[v % len(fees)]))
    return books, terms


def timed(fn, n: int) -> dict[str, float]:
    for _ in range(min(50, n)):  # warm up
        fn()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        samples.append((clock() - t0) / 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p99": percentile(samples, 99), "n": n}


def run(n: int = 2000) -> dict:
    """Time `allocate` (5 venues x 50 levels) and the sort baseline; microseconds."""
    books, terms = market()
    all_asks = [lv for b in books.values() for lv in b.asks]
    depth = sum((lv.quantity for lv in all_asks), Decimal(0))
    half = (depth / 2).quantize(Decimal("0.00001"))
    small = Decimal("0.05")
    price = attrgetter("price")
    results = {
        "levels": len(all_asks),
        "half_book_quantity": str(half),
        "allocate_half_book_us": timed(lambda: allocate(Side.BUY, half, books, terms), n),
        "allocate_small_us": timed(lambda: allocate(Side.BUY, small, books, terms), n),
        "allocate_sweep_all_us": timed(lambda: allocate(Side.BUY, depth * 2, books, terms), n),
        "sort_baseline_us": timed(lambda: sorted(all_asks, key=price), n),
    }
    base = results["sort_baseline_us"]["p50"]
    head = results["allocate_half_book_us"]
    results["ratio_p50"] = head["p50"] / base
    results["ratio_p99"] = head["p99"] / results["sort_baseline_us"]["p99"]
    results["target_met"] = head["p99"] < TARGET_US
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    r = run(args.runs)
    print(f"allocate, 5 venues x 50 levels ({r['levels']} ask levels), {args.runs} runs each, microseconds")
    for key, label in (("allocate_half_book_us", f"allocate {r['half_book_quantity']} (~half the book)"),
                       ("allocate_small_us", "allocate 0.05 (a few levels)"),
                       ("allocate_sweep_all_us", "allocate more than every book"),
                       ("sort_baseline_us", "baseline: sort the 250 levels by price")):
        print(f"  {label:<44} p50 {r[key]['p50']:8.1f}   p99 {r[key]['p99']:8.1f}")
    print(f"  ratio (half book / sort)                     p50 {r['ratio_p50']:8.1f}x  p99 {r['ratio_p99']:8.1f}x")
    print(f"  target < {TARGET_US:.0f} us at p99: {'OK' if r['target_met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
