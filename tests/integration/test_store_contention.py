"""Writers that meet on one order all get through, on the real Firestore emulator.

Thirty writers at once on one order (three store instances, as three function instances, of ten threads each)
must all commit. Before the store queued an instance's writers to one order and paused between aborted attempts,
the emulator (which aborts the lock holder for each newcomer) let 2 of 30 commit in 120 s: a DELETE among
concurrent PUTs was answered 503 for its client's whole patience and the order kept working.
"""

import threading
import time
import uuid
from dataclasses import replace
from decimal import Decimal as D

import pytest
from google.cloud import firestore

from shared.app.ports import Contended
from shared.domain.orders import Order, OrderType, S, Side, TimeInForce
from shared.infra.store import FirestoreOrderStore

INSTANCES, THREADS = 3, 10
PATIENCE_S = 240  # per writer, retrying Contended as a client retries a 503 (a loaded machine is slow, not stuck)


@pytest.mark.timeout(600)
def test_thirty_writers_on_one_order_all_commit(stack):
    stores = [FirestoreOrderStore(firestore.Client(project=stack.project)) for _ in range(INSTANCES)]
    now = int(time.time() * 1000)
    order_id = f"ord_contention_{uuid.uuid4().hex[:12]}"
    # a closed order: no sweep, sync or reconcile of the stack's ever looks at it
    stores[0].create(Order(order_id=order_id, client_order_id=order_id, strategy_id="contention-test",
                           exchange="binance", symbol="BTC/USDT", side=Side.BUY, quantity=D("1"),
                           order_type=OrderType.LIMIT, price=D("1"), time_in_force=TimeInForce.GTC,
                           status=S.CANCELED, created_at=now, updated_at=now, terminal_at=now), [])
    committed: list[str] = []
    gave_up: list[str] = []
    start = threading.Barrier(INSTANCES * THREADS)

    def writer(store: FirestoreOrderStore, name: str) -> None:
        start.wait(timeout=60)
        deadline = time.monotonic() + PATIENCE_S
        while True:
            try:
                store.update(order_id, lambda o: (replace(o, version=o.version + 1), []))
                committed.append(name)
                return
            except Contended:
                if time.monotonic() > deadline:
                    gave_up.append(name)
                    return
                time.sleep(1)  # the API's Retry-After

    threads = [threading.Thread(target=writer, args=(store, f"{i}.{t}"))
               for i, store in enumerate(stores) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = stores[0].get(order_id)
    assert final is not None
    assert not gave_up, f"{len(gave_up)} of {len(threads)} writers never committed in {PATIENCE_S} s"
    assert len(committed) == len(threads) and final.version == len(threads), (len(committed), final.version)
