"""Reconciliation planning, pure: shards of the order id space, the sweep's fan-out plan, and which venue orders
and trades belong to no record.

A shard is a stable bucket of the order id. Order ids are ``ord_`` + a SHA-256 hex digest (``order_id_for``),
so their first eight hex digits are uniform: shard k of n covers the ids from ``ord_`` + hex8(ceil(k * 16^8 / n))
up to the next shard's lower bound. The first shard has no lower bound and the last no upper bound, so every
string (an id of any form) falls in exactly one shard: a range of document ids is what the store queries, so no
shard field is needed on the documents and documents written before sharding existed are covered as they are.

No I/O, no clock: the run (the sweep's minute) and every input are parameters.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.domain.orders import Order

ID_PREFIX = "ord_"
_SPACE = 16 ** 8  # the first eight hex digits of an order id's digest
MAX_SHARDS = 4096


def _bound(k: int, shards: int) -> str:
    return f"{ID_PREFIX}{-(-k * _SPACE // shards):08x}"


def shard_bounds(shard: int, shards: int) -> tuple[str | None, str | None]:
    """The document ids of shard `shard` of `shards`: lower (inclusive, None: unbounded) and upper (exclusive,
    None: unbounded)."""
    if not 1 <= shards <= MAX_SHARDS or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: want 0 <= shard < shards <= {MAX_SHARDS}")
    low = None if shard == 0 else _bound(shard, shards)
    high = None if shard == shards - 1 else _bound(shard + 1, shards)
    return low, high


def shard_of(order_id: str, shards: int) -> int:
    """The shard an order id falls in (the same ranges the store queries)."""
    lows = [_bound(k, shards) for k in range(1, shards)]
    return bisect.bisect_right(lows, order_id)


@dataclass(frozen=True)
class ReconcileTask:
    """One unit of the sweep's fan-out. kind "shard": the open orders of `venue` in shard `shard` of `shards`,
    from `cursor` (the last order id done; None: from the start), part `part` of that shard's work this run.
    kind "orphans": the venue orders and trades of `venue` that belong to no record."""

    kind: str
    venue: str
    run: int
    shard: int = 0
    shards: int = 1
    cursor: str | None = None
    part: int = 0

    @property
    def name(self) -> str:
        """Deterministic per sweep run: a duplicated sweep delivery (or a retried enqueue) makes no second task."""
        if self.kind == "orphans":
            return f"orphans-{self.venue}-{self.run}" + (f"-p{self.part}" if self.part else "")
        return f"reconcile-{self.venue}-{self.shards}-{self.shard}-{self.run}-p{self.part}"

    def follow_up(self, cursor: str) -> ReconcileTask:
        """The task that carries on from `cursor` when this one runs out of time."""
        return ReconcileTask(self.kind, self.venue, self.run, self.shard, self.shards, cursor, self.part + 1)

    def as_body(self) -> dict[str, object]:
        return {"kind": self.kind, "venue": self.venue, "run": self.run, "shard": self.shard,
                "shards": self.shards, "cursor": self.cursor, "part": self.part}


def plan_sweep(venues: Iterable[str], shards: int, run: int, orphan_venues: Iterable[str] = ()) -> list[ReconcileTask]:
    """Every task of one sweep run: one per venue and shard, and one orphan search per venue that can be asked."""
    tasks = [ReconcileTask("shard", venue, run, shard, shards) for venue in sorted(set(venues))
             for shard in range(shards)]
    tasks += [ReconcileTask("orphans", venue, run) for venue in sorted(set(orphan_venues))]
    return tasks


@dataclass(frozen=True)
class Orphan:
    """A venue order that belongs to no record: open at the venue, or known only by its trades."""

    exchange: str
    venue_order_id: str
    client_order_id: str | None
    symbol: str
    status: str  # the venue's status ("open", "filled", ...) or "traded" when only its trades are known
    trades: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"exchange": self.exchange, "venue_order_id": self.venue_order_id,
                "client_order_id": self.client_order_id, "symbol": self.symbol, "status": self.status,
                "trades": self.trades}


def venue_keys(exchange: str, client_ids: Iterable[str], venue_order_ids: Iterable[str | None]) -> list[str]:
    """The keys by which a record is found from a venue order: ``exchange:c:<client id>`` and
    ``exchange:o:<venue order id>`` (the store indexes them as one array)."""
    keys = {f"{exchange}:c:{c}" for c in client_ids if c}
    keys |= {f"{exchange}:o:{v}" for v in venue_order_ids if v}
    return sorted(keys)


def record_keys(order: Order) -> list[str]:
    """The venue keys of a record: its current venue client id and every leg's client id and venue order id."""
    return venue_keys(order.exchange, [order.venue_id, *(leg.venue_client_id for leg in order.legs)],
                      [order.venue_order_id, *(leg.venue_order_id for leg in order.legs)])


def unmatched(candidates: Mapping[str, str], known: set[str]) -> list[str]:
    """The candidates (id -> its key) whose key no record holds, in id order."""
    return sorted(i for i, key in candidates.items() if key not in known)
