"""The sweep reconciles more than 1,000 open orders, every one of them, on the local stack.

1,050 resting orders are placed through the API; with the per-order sync queue paused (so only the sweep can
notice anything), a tenth of them are cancelled directly at the venue, behind the service's back. One sweep
later (its reconcile tasks fanned out over venue and shard, each paging to the end) every record must agree
with the venue: the cancelled ones `canceled`, the rest `accepted` and open there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from shared.adapters.ccxt_venue import build_exchange
from shared.infra import clients
from shared.infra.config import settings
from tests.integration.venue_truth import TERMINAL, until

N = 1_050
CHANGED_AT_VENUE = N // 10


def _call(api, method: str, path: str, body: dict | None = None) -> requests.Response:
    """An API call, retried on 429 (the per-key rate limit), 503 (contention) and a dropped connection (gunicorn
    closing an idle keep-alive connection as a request goes out on it), never on anything else. Safe for every
    call here: the POSTs carry a client_order_id, so a repeat is the same order (200), never a second one."""
    deadline = time.monotonic() + 120
    while True:
        try:
            resp = api(method, path, body)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            continue
        if resp.status_code not in (429, 503) or time.monotonic() > deadline:
            return resp
        time.sleep(float(resp.headers.get("Retry-After", "0.5")))


def _records(api, strategy: str) -> list[dict[str, Any]]:
    """Every order of the strategy, paged to the end."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = f"/orders?strategy_id={strategy}&limit=500" + (f"&cursor={cursor}" if cursor else "")
        page = _call(api, "GET", q).json()
        out += page["orders"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def _set_sync_paused(paused: bool) -> None:
    cfg = settings()
    name = cfg.queue_path(cfg.sync_queue)
    (clients.tasks().pause_queue if paused else clients.tasks().resume_queue)(name=name)


@pytest.mark.timeout(900)
def test_a_sweep_reconciles_every_one_of_more_than_a_thousand_open_orders(stack, http, api):
    strategy = f"scale-{uuid.uuid4().hex[:8]}"
    expire_at = int(time.time() * 1000) + 2 * 3_600_000  # GTD: no execution timeout while the test runs
    venue = build_exchange("binance", api_url=stack.simulators["binance"], api_key="sim-binance-key", secret="x",
                           rate_limit_ms=0)

    def place(i: int) -> str:
        resp = _call(api, "POST", "/orders", {
            "strategy_id": strategy, "client_order_id": f"s-{i}", "exchange": "binance", "symbol": "BTC/USDT",
            "side": "buy", "quantity": "0.001", "order_type": "limit", "price": "30000", "time_in_force": "GTD",
            "expire_at": expire_at})
        assert resp.status_code in (200, 201), resp.text  # 200: the repeat of one whose answer was lost
        return resp.json()["order_id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(place, range(N)))
    records: list[dict[str, Any]] = []

    def still(wrong: Callable[[dict[str, Any]], bool]) -> Callable[[], list[str]]:
        """A check for `until`: re-reads every record, keeps them in `records`, names those `wrong` holds for."""
        def check() -> list[str]:
            records[:] = _records(api, strategy)
            return [f"{r['order_id']}: {r['status']}" for r in records if wrong(r)]
        return check

    try:
        until(still(lambda r: r["status"] != "accepted"), 420, f"all {N} orders accepted", pause=2)

        _set_sync_paused(True)  # from here on only the sweep looks at these orders
        try:
            behind_its_back = records[:CHANGED_AT_VENUE]
            for r in behind_its_back:
                venue.cancel_order(r["venue_order_id"], "BTC/USDT")
            assert http.post(stack.env["SWEEP_FUNCTION_URL"], timeout=120).status_code == 200

            cancelled = {r["order_id"] for r in behind_its_back}
            until(still(lambda r: r["status"] != ("canceled" if r["order_id"] in cancelled else "accepted")),
                  420, "every record agrees with the venue after one sweep", pause=3)
        finally:
            _set_sync_paused(False)

        open_at_venue = {o["clientOrderId"] for o in venue.fetch_open_orders("BTC/USDT")}
        for r in records:
            assert (r["venue_client_order_id"] in open_at_venue) is (r["status"] == "accepted"), r["order_id"]
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda oid: _call(api, "DELETE", f"/orders/{oid}"), ids))
        # Wait for the cancels to finish: a thousand queued cancel tasks would otherwise stand in front of the
        # next test's orders on the same queues.
        until(still(lambda r: r["status"] not in TERMINAL), 420, "every order closed after the cleanup", pause=3)
