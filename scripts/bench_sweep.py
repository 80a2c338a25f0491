"""The reconciliation sweep over N resting orders on the running local stack, beside baselines from the same run.

    .venv/bin/python scripts/localstack.py start --state-dir .local/sweepbench --free-ports --own-redis
    set -a; source .local/sweepbench/env; set +a
    .venv/bin/python scripts/bench_sweep.py [--orders 1000,10000] [--concurrency 16] [--sample 1000] [--keep]

Use a stack that runs no periodic sweep (``--free-ports`` runs no local scheduler; ``./emulator.sh`` sweeps every
60 s unless SWEEP_INTERVAL_S=0): a second sweep would race this one's counters.

For each N:
1. creates N real orders through ``POST /api/v1/orders`` (concurrent clients): GTD buy limits at 60% of the
   market, so they rest and neither fill nor meet EXECUTION_TIMEOUT (a GTD order keeps its own expiry, set hours
   ahead), spread round-robin over the configured venues and both symbols; waits until every record is
   ``accepted`` (the venue acknowledged it; counted with Firestore count() queries);
2. baselines: one ``GET /open-orders`` listing per venue through the adapter (also checks the orders rest
   there); a per-order venue check (adapter ``GET /order`` + ``GET /fills``, what one order's sync costs at
   the venue) done sequentially for a sample, scaled to N; reading every open order record once (paged query);
3. triggers the sweep (``trigger_sweep``: the only function that knows how) and measures, until the work is done:
   wall time (the trigger's answer, then until venue calls and Firestore operations stop: a fanned-out sweep
   answers before its tasks finish), the orders it reports reconciled, adapter calls per venue (the service's
   own per-adapter counters in Redis, ``AdapterStats``) and Firestore reads/writes (``/metrics`` counters);
   if order records carry a check time (a field in ``CHECK_FIELDS``), also how many were checked after the
   trigger;
4. cancels the orders (``DELETE /api/v1/orders/{id}``), unless ``--keep``.

The per-order sync queue is paused while it runs (and resumed at the end): each working order is otherwise
polled every 30 s by its own sync task, which would blur what the sweep itself costs and, at 10,000 orders,
saturate a local stack. ``--no-pause-sync`` leaves it running (needed if a sweep fans out through that queue).
Asserts nothing about speed.

At 10,000 orders expect minutes: creation is bounded by the Firestore emulator and the API's per-key rate limit
(a 429 is retried), and the Pub/Sub emulator keeps a thread per ordering key (one per order) on the unread
ordered subscription ``order-events-local``. The sweep before the fan-out redesign reads at most 1,000 open
orders (``OrderService.sweep(limit=1000)``): past that it reports fewer reconciled than N ("NOT ALL") and lists
the venue orders it did not read as unknown.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: E402

from shared.domain.orders import OPEN, order_id_for, venue_client_id_for  # noqa: E402
from shared.infra import clients  # noqa: E402
from shared.infra.config import settings  # noqa: E402
from shared.infra.venues import VenueCallError, VenueClient, session  # noqa: E402

SYMBOLS = {"BTC/USDT": (Decimal("0.001"), Decimal("30000")), "ETH/USDT": (Decimal("0.01"), Decimal("1800"))}
# Fields an order record may carry to say when it was last reconciled (none exists before the redesign).
CHECK_FIELDS = ("reconciled_at", "checked_at", "last_checked_at", "swept_at", "synced_at", "last_synced_at")
QUIET_S = 60.0  # the sweep's work is over when nothing moves for this long (once its tasks have started): a
# loaded queue may take tens of seconds to start a follow-up task
START_TIMEOUT_S = 300.0  # how long its first task may take to report


# ---- the sweep trigger (adapt here when the sweep changes) ------------------------------------------------
def trigger_sweep(http: requests.Session) -> list[dict[str, Any]]:
    """Start one reconciliation sweep, as Cloud Scheduler does; returns the answer(s). If an answer carries a
    cursor (a paging design answered by page), asks for the next page until there is none."""
    url = os.environ["SWEEP_FUNCTION_URL"].rstrip("/") + "/"
    answers: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    while True:
        resp = http.post(url, json=body, timeout=1800)
        resp.raise_for_status()
        answer = resp.json()
        answers.append(answer)
        cursor = answer.get("next_cursor") or answer.get("cursor")
        if not cursor or len(answers) > 10_000:
            return answers
        body = {"cursor": cursor}


def reported(answers: list[dict[str, Any]]) -> dict[str, int]:
    """What the sweep's answers say it did, summed over pages (unknown keys of a new design: counted if int)."""
    out: dict[str, int] = {}
    for a in answers:
        for k, v in a.items():
            if isinstance(v, bool):
                continue
            if isinstance(v, int):
                out[k] = out.get(k, 0) + v
            elif isinstance(v, list):
                out[k] = out.get(k, 0) + len(v)
    return out


# ---- counters -------------------------------------------------------------------------------------------
def firestore_ops(http: requests.Session) -> dict[str, int]:
    data = http.get(f"{os.environ['API_URL']}/metrics", headers={"X-API-Key": os.environ["API_KEY"]},
                    timeout=30).json()["counters"]
    ops = {n: sum(r["value"] for r in data.get(f"firestore_{n}", [])) for n in ("reads", "writes")}
    # what the fanned-out reconcile tasks did (execution_reconciled_orders_total{venue,outcome}) and reported
    for row in data.get("reconciled_orders", []):
        key = f"rec:{row['labels'].get('outcome', '')}"
        ops[key] = ops.get(key, 0) + row["value"]
    ops["orphans"] = sum(r["value"] for r in data.get("orphan_venue_orders", []))
    for key in ("rec:refreshed", "rec:resubmitted", "rec:in_step", "rec:failed"):
        ops.setdefault(key, 0)
    return ops


def venue_calls(venues: list[str]) -> dict[str, int]:
    """The service's calls to each adapter (AdapterStats in Redis: every function instance counts there)."""
    r = clients.cache()
    return {v: int(r.hget(f"venue:{v}:counts", "calls") or 0) for v in venues}


def snapshot(http: requests.Session, venues: list[str]) -> dict[str, int]:
    return {**firestore_ops(http), **{f"calls:{v}": n for v, n in venue_calls(venues).items()}}


def delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b[k] - a[k] for k in a}


# ---- orders ---------------------------------------------------------------------------------------------
class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.failed = label, total, 0, 0
        self.start = self._last = time.perf_counter()
        self._lock = threading.Lock()

    def tick(self, ok: bool = True) -> None:
        with self._lock:
            self.done += 1
            self.failed += not ok
            now = time.perf_counter()
            if now - self._last >= 5 or self.done == self.total:
                self._last = now
                el = now - self.start
                print(f"  {self.label}: {self.done}/{self.total} in {el:.0f}s ({self.done / el:.0f}/s)"
                      + (f", {self.failed} failed" if self.failed else ""), flush=True)


def call(http: requests.Session, method: str, url: str, **kw: Any) -> requests.Response:
    """One API request; a 429 (the API's per-key rate limit) waits its Retry-After and goes again."""
    while True:
        resp = http.request(method, url, headers={"X-API-Key": os.environ["API_KEY"]}, timeout=60, **kw)
        if resp.status_code != 429:
            return resp
        time.sleep(float(resp.headers.get("Retry-After") or 1) / 4)


def order_body(tag: str, i: int, venues: list[str], expire_at: int) -> dict[str, Any]:
    symbol = list(SYMBOLS)[(i // len(venues)) % len(SYMBOLS)]
    qty, price = SYMBOLS[symbol]
    return {"client_order_id": f"sw-{tag}-{i}", "strategy_id": f"bench-sweep-{tag}",
            "exchange": venues[i % len(venues)], "symbol": symbol, "side": "buy", "quantity": str(qty),
            "order_type": "limit", "price": str(price + i % 97), "time_in_force": "GTD", "expire_at": expire_at}


def create_orders(http: requests.Session, tag: str, n: int, venues: list[str], concurrency: int) -> list[str]:
    api = os.environ["API_URL"]
    expire_at = int(time.time() * 1000) + 6 * 3600 * 1000
    progress = Progress("created", n)
    errors: list[str] = []

    def one(i: int) -> None:
        resp = call(http, "POST", f"{api}/orders", json=order_body(tag, i, venues, expire_at))
        ok = resp.status_code in (200, 201)
        if not ok and len(errors) < 5:
            errors.append(f"{resp.status_code}: {resp.text[:200]}")
        progress.tick(ok)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    if errors:
        raise SystemExit(f"{progress.failed} orders refused, e.g. {errors}")
    return [order_id_for(f"bench-sweep-{tag}", f"sw-{tag}-{i}") for i in range(n)]


def count_status(tag: str) -> dict[str, int]:
    orders = clients.firestore_db().collection("orders")
    base = orders.where(filter=FieldFilter("strategy_id", "==", f"bench-sweep-{tag}"))
    out = {}
    for status in ("new", "pending_submit", "accepted", "rejected", "canceled", "filled", "partially_filled"):
        out[status] = int(base.where(filter=FieldFilter("status", "==", status)).count().get()[0][0].value)
    return out


def wait_accepted(tag: str, n: int, timeout_s: float) -> float:
    start = time.perf_counter()
    last = 0.0
    while True:
        counts = count_status(tag)
        el = time.perf_counter() - start
        if counts["accepted"] >= n:
            print(f"  all {n} accepted {el:.1f}s after the last create", flush=True)
            return el
        bad = {k: v for k, v in counts.items() if k not in ("new", "pending_submit", "accepted") and v}
        if bad:
            raise SystemExit(f"some orders did not come to rest: {bad}")
        if el > timeout_s:
            raise SystemExit(f"not all accepted after {timeout_s:g}s: {counts}")
        if el - last >= 5:
            last = el
            print(f"  waiting for acks: {counts}", flush=True)
        time.sleep(1)


def cancel_orders(http: requests.Session, ids: list[str], concurrency: int) -> None:
    api = os.environ["API_URL"]
    progress = Progress("cancelled", len(ids))

    def one(oid: str) -> None:
        try:
            resp = call(http, "DELETE", f"{api}/orders/{oid}")
            progress.tick(resp.status_code == 200)
        except requests.RequestException:
            progress.tick(False)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, ids))


# ---- baselines ------------------------------------------------------------------------------------------
def baseline_listings(adapters: dict[str, VenueClient]) -> tuple[float, dict[str, tuple[float, int]]]:
    per: dict[str, tuple[float, int]] = {}
    t_all = time.perf_counter()
    for name, client in adapters.items():
        t0 = time.perf_counter()
        n = len(client.open_orders())
        per[name] = (time.perf_counter() - t0, n)
    return time.perf_counter() - t_all, per


def baseline_gets(adapters: dict[str, VenueClient], tag: str, n: int, venues: list[str],
                  sample: int) -> tuple[float, int]:
    """Sequential adapter GET /order + GET /fills for `sample` of the orders (every venue in turn)."""
    k = min(n, sample)
    t0 = time.perf_counter()
    for i in range(k):
        body = order_body(tag, i, venues, 0)
        client = adapters[body["exchange"]]
        vo = client.get(body["symbol"], client_order_id=venue_client_id_for(body["strategy_id"],
                                                                            body["client_order_id"]))
        client.fills(body["symbol"], venue_order_id=vo.venue_order_id)
    return time.perf_counter() - t0, k


def baseline_read_all(page: int = 500) -> tuple[float, int]:
    """Read every open order record once: a paged query (the floor of any sweep that looks at each order)."""
    orders = clients.firestore_db().collection("orders")
    query = orders.where(filter=FieldFilter("status", "in", sorted(s.value for s in OPEN))).order_by("__name__")
    t0 = time.perf_counter()
    total, last = 0, None
    while True:
        q = query.start_after(last) if last is not None else query
        docs = list(q.limit(page).stream())
        total += len(docs)
        if len(docs) < page:
            return time.perf_counter() - t0, total
        last = docs[-1]


def checked_after(tag: str, since_ms: int) -> tuple[str, int] | None:
    """How many of the bench's records show a check at or after `since_ms`, if records carry a check time."""
    orders = clients.firestore_db().collection("orders")
    sample = next(iter(orders.where(filter=FieldFilter("strategy_id", "==", f"bench-sweep-{tag}"))
                       .limit(1).stream()), None)
    data = sample.to_dict() if sample else {}
    for name in CHECK_FIELDS:
        if name in data:
            q = (orders.where(filter=FieldFilter("strategy_id", "==", f"bench-sweep-{tag}"))
                 .where(filter=FieldFilter(name, ">=", since_ms)))
            return name, int(q.count().get()[0][0].value)
    return None


# ---- the sync queue -------------------------------------------------------------------------------------
def set_sync_paused(paused: bool) -> None:
    cfg = settings()
    name = cfg.queue_path(cfg.sync_queue)
    tasks = clients.tasks()
    (tasks.pause_queue if paused else tasks.resume_queue)(name=name)


# ---- one run --------------------------------------------------------------------------------------------
def open_ids(tag: str) -> list[str]:
    """The ids of the tag's orders still resting (``--reuse``: a kept run, or one whose cleanup was stopped)."""
    orders = clients.firestore_db().collection("orders")
    query = (orders.where(filter=FieldFilter("strategy_id", "==", f"bench-sweep-{tag}"))
             .where(filter=FieldFilter("status", "==", "accepted")))
    return [doc.id for doc in query.select([]).stream()]


def run(n: int, args: argparse.Namespace, http: requests.Session, adapters: dict[str, VenueClient]) -> dict:
    venues = list(adapters)
    if args.reuse:
        tag = args.reuse
        ids = open_ids(tag)
        n = len(ids)
        print(f"\n== {n} resting orders of an earlier run over {', '.join(venues)} (tag {tag}, reused)", flush=True)
        result: dict[str, Any] = {"n": n, "create_s": 0.0, "accepted_s": 0.0}
    else:
        tag = uuid.uuid4().hex[:8]
        print(f"\n== {n} resting orders over {', '.join(venues)} (tag {tag})", flush=True)
        t0 = time.perf_counter()
        ids = create_orders(http, tag, n, venues, args.concurrency)
        create_s = time.perf_counter() - t0
        wait_accepted(tag, n, timeout_s=max(120.0, n / 20))
        accepted_s = time.perf_counter() - t0
        print(f"  created {n} in {create_s:.1f}s ({n / create_s:.0f}/s); all accepted after {accepted_s:.1f}s",
              flush=True)
        result = {"n": n, "create_s": create_s, "accepted_s": accepted_s}
    try:
        list_s, per_venue = baseline_listings(adapters)
        gets_s, k = baseline_gets(adapters, tag, n, venues, args.sample)
        read_s, read_n = baseline_read_all()
        result.update(list_s=list_s, gets_s=gets_s, gets_k=k, read_s=read_s)
        for i in range(args.sweeps):
            label = f"sweep {i + 1} of {args.sweeps}" if args.sweeps > 1 else "sweep"
            result.update(measure_sweep(http, venues, n, tag, label))
            done_s = result["done_s"]
            rows = [
                ("  baseline: 1 open-orders listing/venue", f"{list_s:9.2f} s",
                 ", ".join(f"{v} {s * 1000:.0f} ms ({c} open)" for v, (s, c) in per_venue.items())),
                (f"  baseline: {k} sequential GET order+fills", f"{gets_s:9.2f} s",
                 f"{gets_s / k * 1000:.2f} ms/order; x{n / k:g} = {gets_s / k * n:.1f} s for all {n}"),
                ("  baseline: read every open record once", f"{read_s:9.2f} s", f"{read_n} records, pages of 500"),
            ]
            for row_label, value, note in rows:
                print(f"  {row_label:<42} {value:>15}   {note}")
            print(f"  ratio: sweep / (listings + {n} GETs + one read of every record) = "
                  f"{done_s / (list_s + gets_s / k * n + read_s):.2f}x", flush=True)
    finally:
        if not args.keep:
            cancel_orders(http, ids, args.concurrency)
    return result


def measure_sweep(http: requests.Session, venues: list[str], n: int, tag: str, label: str) -> dict[str, Any]:
    """Trigger one sweep and follow its fanned-out tasks until every open order is counted or nothing moves."""
    time.sleep(1.5)  # the counters are written asynchronously: let what came before land first
    before = snapshot(http, venues)
    started_ms = int(time.time() * 1000)
    t_sweep = time.perf_counter()
    answers = trigger_sweep(http)
    answered_s = time.perf_counter() - t_sweep
    # Then until nothing moves: a fanned-out sweep's tasks keep working after its answer. The counters land
    # asynchronously (milliseconds): what has landed 0.3 s after the answer counts as done by the answer.
    # Its tasks may start late (a loaded queue): wait for the first of them, then until every open order is
    # counted or nothing has moved for QUIET_S (or START_TIMEOUT_S passes without a start: reported).
    time.sleep(0.3)
    last = at_answer = snapshot(http, venues)
    last_change = time.perf_counter()

    def counted(snap: dict[str, int]) -> int:
        return sum(snap[k] - before[k] for k in ("rec:refreshed", "rec:resubmitted", "rec:in_step"))

    started = counted(last) > 0
    while counted(last) < n:
        quiet = time.perf_counter() - last_change
        if (started and quiet >= QUIET_S) or (not started and quiet >= START_TIMEOUT_S):
            break
        time.sleep(0.5)
        now = snapshot(http, venues)
        if now != last:
            last, last_change = now, time.perf_counter()
            started = started or counted(now) > 0
    if not started:
        print(f"  no reconcile task reported within {START_TIMEOUT_S:.0f} s of the sweep's answer", flush=True)
    done_s = answered_s if last == at_answer else last_change - t_sweep  # +- one 0.5 s poll
    moved = delta(before, last)
    rep = reported(answers)
    check = checked_after(tag, started_ms)
    calls = {v: moved[f"calls:{v}"] for v in venues}
    # every open order the sweep compared with its venue: read one by one (refreshed), handed back to
    # submission (resubmitted), or found in step with the venue's open-orders listing (in_step)
    # (counted by the fanned-out reconcile tasks themselves; the sweep call only enqueues them)
    outcomes = {k: rep.get(k, 0) + moved[f"rec:{k}"] for k in ("refreshed", "resubmitted", "in_step")}
    reconciled = sum(outcomes.values())
    print(f"\n  {label} answered in {answered_s:.2f}s ({len(answers)} call(s)); activity ended at {done_s:.2f}s",
          flush=True)
    print(f"  its answer: {rep}")
    if check:
        print(f"  records checked after the trigger (field {check[0]}): {check[1]} of {n}")
    total_calls = sum(calls.values())
    rows = [
        (f"{label}: until all work done", f"{done_s:9.2f} s", f"reconciled {reconciled} of {n}"
         + ("" if reconciled >= n else "  <-- NOT ALL") + f" ({', '.join(f'{k} {v}' for k, v in outcomes.items())})"),
        ("  venue (adapter) calls", f"{total_calls:9d}", ", ".join(f"{v} {c}" for v, c in calls.items())
         + f"; {total_calls / max(reconciled, 1):.2f} per reconciled order"),
        ("  Firestore reads / writes", f"{moved['reads']:5d} / {moved['writes']}",
         f"{moved['reads'] / max(reconciled, 1):.2f} / {moved['writes'] / max(reconciled, 1):.2f}"
         " per reconciled order (a write: a dead sync chain replaced)"),
        ("  orphan venue orders reported", f"{moved['orphans']:9d}",
         "venue orders the orphan search says belong to no record (all belong to one)"),
    ]
    print()
    for row_label, value, note in rows:
        print(f"  {row_label:<42} {value:>15}   {note}")
    return {"answered_s": answered_s, "done_s": done_s, "reconciled": reconciled, "calls": calls,
            "reads": moved["reads"], "writes": moved["writes"], "orphans": moved["orphans"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", default="1000,10000", help="comma-separated order counts, one run each")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients creating/cancelling")
    parser.add_argument("--sample", type=int, default=1000, help="orders in the sequential-GET baseline")
    parser.add_argument("--keep", action="store_true", help="leave the orders resting (no cancel at the end)")
    parser.add_argument("--no-pause-sync", action="store_true", help="leave the per-order sync queue running")
    parser.add_argument("--reuse", metavar="TAG", help="measure the resting orders of an earlier run (its tag) "
                                                      "instead of creating new ones")
    parser.add_argument("--sweeps", type=int, default=1, help="sweeps in a row over the same orders (with the sync "
                                                             "queue paused, a chain's 60 s lease runs out unserved: "
                                                             "each sweep past it replaces the chain, a write each)")
    args = parser.parse_args()
    missing = [v for v in ("API_URL", "API_KEY", "SWEEP_FUNCTION_URL", "FIRESTORE_EMULATOR_HOST", "REDIS_URL",
                           "ADAPTER_ENDPOINTS") if not os.environ.get(v)]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: start a local stack and source its env file first")
    counts = [int(x) for x in args.orders.split(",") if x.strip()]
    if args.reuse:
        counts = [0]  # one run over what the tag left resting
    http = requests.Session()
    http.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(32, args.concurrency)))
    adapters = {name: VenueClient(name, url, session(), timeout_s=120)  # no stats: baselines are not counted
                for name, url in settings().adapter_endpoints.items()}
    print(f"bench_sweep: {', '.join(map(str, counts))} orders; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    paused = not args.no_pause_sync
    if paused:
        set_sync_paused(True)
        print("per-order sync queue paused for the run", flush=True)
    results = []
    try:
        for n in counts:
            try:
                results.append(run(n, args, http, adapters))
            except VenueCallError as err:
                print(f"  run of {n} failed at a venue: {err}", flush=True)
    finally:
        if paused:
            set_sync_paused(False)
            print("per-order sync queue resumed", flush=True)
    print("\n== summary")
    print(f"  {'orders':>7} {'sweep s':>9} {'reconciled':>10} {'venue calls':>11} {'fs reads':>9} {'fs writes':>9}"
          f" {'listings s':>10} {'N GETs s':>9} {'read all s':>10}")
    for r in results:
        print(f"  {r['n']:>7} {r['done_s']:>9.2f} {r['reconciled']:>10} {sum(r['calls'].values()):>11}"
              f" {r['reads']:>9} {r['writes']:>9} {r['list_s']:>10.2f} {r['gets_s'] / r['gets_k'] * r['n']:>9.1f}"
              f" {r['read_s']:>10.2f}")


if __name__ == "__main__":
    main()
