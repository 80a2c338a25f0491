"""What the simulated venues say, read straight from their REST API as the service's own account, and how a
record is compared with it. The venue is the truth: these helpers never read the record to decide what the venue
holds.

The stack's adapters trade on the simulators with the API key ``sim-<venue>-key`` (scripts/localstack.py), so
``allOrders`` and ``myTrades`` for that key list every venue order the service ever made there (the simulator
keeps the last 10,000 closed orders per account and symbol).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from shared.domain.orders import replacement_client_order_id, venue_client_id_for
from shared.infra.venues import resend_dropped

D = Decimal
WORKING = {"accepted", "partially_filled", "triggered"}
TERMINAL = {"filled", "canceled", "expired", "rejected"}
VENUE_OPEN = {"NEW", "PARTIALLY_FILLED"}
# the record's status for a venue order that is done (a single venue order, nothing left working elsewhere)
RECORD_STATUS = {"FILLED": "filled", "CANCELED": "canceled", "EXPIRED": "expired", "REJECTED": "rejected",
                 "EXPIRED_IN_MATCH": "expired"}


def symbol_id(symbol: str) -> str:
    return symbol.replace("/", "")


class Venue:
    """One simulated venue, as the service's account there sees it."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url, self.key = name, url.rstrip("/"), f"sim-{name}-key"

    def _get(self, path: str, **params: object) -> object:
        params = {**params, "timestamp": time.time_ns() // 1_000_000, "signature": "integration-test"}
        resp = requests.get(f"{self.url}{path}", params=params, headers={"X-MBX-APIKEY": self.key}, timeout=30)
        assert resp.status_code == 200, f"{self.name} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def all_orders(self, symbol: str = "BTC/USDT") -> list[dict]:
        """Every venue order of the account on the symbol, oldest first (paged by order id to the end)."""
        out: list[dict] = []
        next_id = 0
        while True:
            page = self._get("/api/v3/allOrders", symbol=symbol_id(symbol), orderId=next_id, limit=1000)
            out += page
            if len(page) < 1000:
                return out
            next_id = page[-1]["orderId"] + 1

    def by_client_id(self, client_ids: Iterable[str], symbol: str = "BTC/USDT") -> dict[str, list[dict]]:
        """The venue orders carrying each of these client order ids (a list: more than one is a defect)."""
        wanted = set(client_ids)
        found: dict[str, list[dict]] = defaultdict(list)
        for vo in self.all_orders(symbol):
            if vo["clientOrderId"] in wanted:
                found[vo["clientOrderId"]].append(vo)
        return found

    def trades(self, venue_order_id: int | str, symbol: str = "BTC/USDT") -> list[dict]:
        return self._get("/api/v3/myTrades", symbol=symbol_id(symbol), orderId=int(venue_order_id), limit=1000)

    def admin(self, path: str, body: dict) -> dict:
        resp = requests.post(f"{self.url}/admin/{path}", json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def touch(self, symbol: str = "BTC/USDT") -> tuple[Decimal, Decimal]:
        """Best bid and best ask now."""
        resp = requests.get(f"{self.url}/api/v3/ticker/bookTicker", params={"symbol": symbol_id(symbol)},
                            timeout=10)
        resp.raise_for_status()
        return D(resp.json()["bidPrice"]), D(resp.json()["askPrice"])


def venue_ids(strategy_id: str, client_order_id: str, replacements: int = 0) -> list[str]:
    """Every venue client id an order may use: its own, then one per cancel/replace (the n-th modify's)."""
    first = venue_client_id_for(strategy_id, client_order_id)
    return [first, *(replacement_client_order_id(first, n) for n in range(1, replacements + 1))]


def disagreement(record: dict, at_venue: list[dict]) -> str | None:
    """Why the record is not what its venue orders say (None when it agrees). `at_venue`: every venue order of
    the record (original and replacements). The record must track the one that works, if any, count every fill
    the venue counted, and be terminal exactly when nothing works."""
    oid = record["order_id"]
    working = [vo for vo in at_venue if vo["status"] in VENUE_OPEN]
    filled = sum((D(vo["executedQty"]) for vo in at_venue), D(0))
    if len(working) > 1:
        return f"{oid}: {len(working)} venue orders work at once: {[vo['clientOrderId'] for vo in working]}"
    if D(record["filled_quantity"]) != filled:
        return f"{oid}: record filled {record['filled_quantity']}, venue {filled} ({record['status']})"
    if working:
        vo = working[0]
        if record["status"] not in WORKING:
            return f"{oid}: record {record['status']} while {vo['clientOrderId']} works at the venue ({vo['status']})"
        if record["venue_client_order_id"] != vo["clientOrderId"]:
            return f"{oid}: record tracks {record['venue_client_order_id']}, the venue works {vo['clientOrderId']}"
        if record["price"] is not None and D(record["price"]) != D(vo["price"]):
            return f"{oid}: record price {record['price']}, working venue order {vo['price']}"
        if D(record["quantity"]) - filled != D(vo["origQty"]) - D(vo["executedQty"]):
            return f"{oid}: record leaves {D(record['quantity']) - filled}, the venue order {vo['origQty']} - " \
                   f"{vo['executedQty']}"
        return None
    if not at_venue:
        return None if record["status"] in ("rejected", "canceled") else f"{oid}: {record['status']}, no venue order"
    if record["status"] not in TERMINAL:
        return f"{oid}: record {record['status']} while no venue order works"
    if filled == D(record["quantity"]):
        expected = "filled"
    else:
        expected = RECORD_STATUS.get(max(at_venue, key=lambda vo: vo["orderId"])["status"], "?")
    if record["status"] != expected:
        return f"{oid}: record {record['status']}, venue says {expected} (filled {filled} of {record['quantity']})"
    return None


def until(check: Callable[[], list[str]], timeout: float, what: str, pause: float = 0.5) -> None:
    """Re-run `check` (it returns what is still wrong) until nothing is, or fail after `timeout` with the rest."""
    deadline = time.monotonic() + timeout
    while True:
        wrong = check()
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}; {len(wrong)} still wrong, e.g. {wrong[:8]}")
        time.sleep(pause)


# ---- a private API function with a rate limit of its own ------------------------------------------------
class FastApi:
    """An extra functions-framework `api` process on the stack (same Firestore, queues, adapters) with its own
    API key and no practical rate limit, so tests can send thousands of concurrent requests; and a thread-safe
    pooled session to call it. A POST whose connection is dropped before any answer (gunicorn closing a
    keep-alive connection as a request arrives) is sent again: every POST here carries a client order id, so a
    resend is the same order (which is what these tests check)."""

    def __init__(self, url: str, key: str) -> None:
        self.base = f"{url}/api/v1"
        self.key = key
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = requests.Session()
            s.mount("http://", HTTPAdapter(pool_maxsize=4, max_retries=resend_dropped(
                {"GET", "PUT", "DELETE"}, times=2)))
            self._local.s = s
        return s

    def __call__(self, method: str, path: str, body: dict | None = None, **kw: object) -> requests.Response:
        for attempt in (0, 1):
            try:
                return self._session().request(method, f"{self.base}{path}", json=body,
                                               headers={"X-API-Key": self.key}, timeout=120, **kw)
            except requests.ConnectionError:
                if method != "POST" or attempt:
                    raise
        raise AssertionError("unreachable")

    def records(self, strategy_id: str) -> dict[str, dict]:
        """Every record of a strategy (the list endpoint, paged to the end), by order id."""
        out: dict[str, dict] = {}
        cursor = None
        while True:
            params = {"strategy_id": strategy_id, "limit": 500, **({"cursor": cursor} if cursor else {})}
            resp = self("GET", "/orders", params=params)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            out.update({o["order_id"]: o for o in page["orders"]})
            cursor = page["next_cursor"]
            if not cursor:
                return out


def spawn_api(log_dir: Path) -> Iterator[FastApi]:
    """Start the extra api process (a generator for a fixture: yields it, then stops it)."""
    import subprocess

    from tests.integration.conftest import key_file_env
    from tests.integration.sim_fixtures import kill_group

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from localstack import ROOT, VENV_BIN, free_port, tcp_open

    key = f"integrity-{uuid.uuid4().hex}"
    port = free_port()
    log_path = log_dir / f"api-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(VENV_BIN / "functions-framework"), "--source", str(ROOT / "functions/main.py"), "--target", "api",
             "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **key_file_env(log_dir, key), "API_RATE_LIMIT": "100000"}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine imports slowly
        while not tcp_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the extra api did not start: {log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        yield FastApi(f"http://127.0.0.1:{port}", key)
    finally:
        kill_group(proc)
