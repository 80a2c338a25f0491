"""The SmartRouter's allocation: how much of an order to send to which venue, and at what IOC limit.

Pure: no I/O, no clock. Prices and quantities are Decimal; fees are rates from each venue's terms.

``allocate`` builds the consolidated book from every venue that lists the symbol (a book and terms for the
same symbol) and walks it from the best ALL-IN price: for a buy ``price * (1 + taker_fee)``, for a sell
``price * (1 - taker_fee)``. That fractional walk is the exact cost minimum when quantities may be any
amount (``consolidated_optimum``: per-unit costs are constant within a level, so taking the cheapest units
first is optimal). Real orders must be lot multiples and meet each venue's minimum quantity and notional, so:

1. each venue's share of the walk is rounded DOWN to its lot, and a share below the venue's minimums is dropped;
2. a bounded repair pass re-allocates what was rounded off or dropped: at each step it takes the cheapest (per
   unit, all-in) of: the rest of a venue's current level (in whole lots), one lot across a level boundary, or
   opening an unused venue with its smallest order that meets the minimums; until nothing more fits. Every step
   consumes a level, crosses a level boundary, opens a venue or shrinks what is left below a venue's lot, so
   there are at most ``2 * levels + 2 * venues`` steps;
3. an exchange pass moves single lots between venues of the same lot size while that strictly lowers the cost:
   one more lot on one venue (its next lot) for one lot less on another (its last lot), the best such pair at
   each step, the quantity unchanged. The repair only adds, and rounding down can keep a lot the optimum does
   not: when levels are smaller than a lot, the lot straddling a venue's share of the walk (a few units at a
   good level, the rest at the walk's marginal price) can be worth more than a whole lot at a level the walk
   took entirely on another venue;
4. when rounding changed anything, the best single-venue allocation is computed as well and chosen if it
   fills more, or as much for less.

What it guarantees: every slice is a multiple of its venue's lot, at least its minimum quantity and its minimum
notional (checked at the lower of the expected average price and the limit price), within the limit price, and
within what the book shows; the slices sum to at most the quantity asked; the cost is never below the
fractional optimum for the same quantity (no allocation can be), and the allocation fills at least as much as
``best_single_venue`` and, when it fills the same, costs no more. With one lot size everywhere and no minimum
binding, the result is the cheapest lot-multiple allocation that fills the most (tested against brute force).
Why: a venue's levels are best first, so the all-in cost of its k-th lot never improves with k (each lot is the
same length of a monotone price ladder), and a sum of such per-venue costs under a fixed number of lots is
minimal exactly when no one-lot move between two venues lowers it, which is where the exchange pass stops. It
stops within one move per venue: every lot the rounding kept is made of units at least as good as the walk's
marginal price, every lot the greedy repair added was the best one left when added, so a lot worth moving to
must hold a unit strictly better than that marginal price without having been kept: a venue's straddling lot;
and a lot once moved to is never moved away. It is not an optimal solver when minimums bind (that is a
knapsack problem): the greedy can leave a little unfilled that a cleverer combination would fill.

``VenueSlice.limit_price`` is the worst level price taken at that venue: the IOC limit to send.
``best_single_venue`` and ``consolidated_optimum`` take the same optional ``limit_price`` as ``allocate``.

Speed: the walk is a heap merge of the venues' ladders that keys only the levels it takes (one Decimal
multiplication each), and the repair, exchange and single-venue checks run only when rounding changed something
(the exchange walks a lot only for a pair that a price bound lets through; the single-venue walks stop as soon
as they cannot win). 5 venues x 50 levels: ~25 us for an order taking a few levels, ~200 us for half the
consolidated book, of which the exchange ~7 us (scripts/bench_router.py).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any

from shared.domain.market import ZERO, Book, Level, VenueTerms, ceil_to, consolidated_mid, floor_to
from shared.domain.orders import Side

ONE = Decimal(1)
BPS = Decimal(10_000)
_PRICE = attrgetter("price")
_QUANTITY = attrgetter("quantity")


def _neg_price(level: Level) -> Decimal:
    return -level.price


@dataclass(frozen=True)
class VenueSlice:
    venue: str
    quantity: Decimal
    limit_price: Decimal  # the worst level price taken here: the IOC limit to send
    expected_average_price: Decimal  # fee-exclusive
    expected_fee: Decimal  # at the venue's taker rate


@dataclass(frozen=True)
class Allocation:
    side: Side
    requested: Decimal
    slices: tuple[VenueSlice, ...]  # best all-in first
    total_quantity: Decimal
    unallocated: Decimal  # requested - total_quantity: beyond the books within the limit, or lost to lots/minimums
    expected_average_price: Decimal | None  # fee-exclusive; None when nothing is allocated
    total_cost: Decimal  # fee-inclusive notional: what a buy pays, or what a sell receives, fees included
    cost_vs_mid_bps: Decimal | None  # signed; positive = worse than the consolidated mid, fees included
    mid: Decimal | None  # the consolidated mid of the venues considered

    def better_than(self, other: Allocation) -> bool:
        """Fills more, or as much at a better all-in cost."""
        if self.total_quantity != other.total_quantity:
            return self.total_quantity > other.total_quantity
        if self.side is Side.BUY:
            return self.total_cost < other.total_cost
        return self.total_cost > other.total_cost


class _Ladder:
    """One venue's far side (best first) and terms, as the walk needs them.

    Levels are read in place (no copies): the walk stops at the first level beyond the limit price, and what is
    within the limit (``n``, ``total``) is only counted when the repair pass or the single-venue check needs it.
    """

    __slots__ = ("venue", "terms", "factor", "levels", "lot", "rank", "limit", "buy", "_n", "_total")

    def __init__(self, venue: str, terms: VenueTerms, factor: Decimal, levels: tuple[Level, ...], rank: int,
                 limit: Decimal | None, buy: bool) -> None:
        self.venue = venue
        self.terms = terms
        self.factor = factor
        self.levels = levels
        self.lot = terms.lot_size
        self.rank = rank
        self.limit = limit
        self.buy = buy
        self._n: int | None = None
        self._total: Decimal | None = None

    def within(self, price: Decimal) -> bool:
        limit = self.limit
        return limit is None or (price <= limit if self.buy else price >= limit)

    @property
    def n(self) -> int:
        """How many leading levels are within the limit price."""
        if self._n is None:
            if self.limit is None:
                self._n = len(self.levels)
            elif self.buy:
                self._n = bisect.bisect_right(self.levels, self.limit, key=_PRICE)
            else:
                self._n = bisect.bisect_right(self.levels, -self.limit, key=_neg_price)
        return self._n

    @property
    def total(self) -> Decimal:
        """The quantity shown within the limit price."""
        if self._total is None:
            self._total = sum(map(_QUANTITY, self.levels[:self.n]), ZERO)
        return self._total

    def advance(self, j: int, used: Decimal, q: Decimal) -> tuple[int, Decimal, Decimal, Decimal | None]:
        """Take `q` more from level `j` (of which `used` is taken): the new (j, used), notional and worst price.
        Callers never ask for more than is shown within the limit."""
        notional = ZERO
        worst = None
        levels = self.levels
        while q > 0 and j < len(levels):
            lv = levels[j]
            left = lv.quantity - used
            if left > 0:
                take = q if q < left else left
                notional += take * lv.price
                worst = lv.price
                q -= take
                used += take
            if used >= lv.quantity:
                j, used = j + 1, ZERO
        return j, used, notional, worst

    def retreat(self, j: int, used: Decimal, notional: Decimal, d: Decimal) -> tuple[int, Decimal, Decimal,
                                                                                     Decimal | None]:
        """Give back `d` from position (j, used): the new (j, used), notional and worst price."""
        levels = self.levels
        while d > 0:
            if used <= 0:
                j -= 1
                used = levels[j].quantity
                continue
            back = d if d < used else used
            used -= back
            notional -= back * levels[j].price
            d -= back
        if used > 0:
            return j, used, notional, levels[j].price
        k = j - 1
        while k >= 0 and levels[k].quantity <= 0:
            k -= 1
        return j, ZERO, notional, levels[k].price if k >= 0 else None

    def feasible(self, q: Decimal, notional: Decimal, worst: Decimal | None) -> bool:
        t = self.terms
        if q <= 0 or q < t.min_quantity:
            return False
        if t.min_notional is None or worst is None:
            return True
        return min(notional, q * worst) >= t.min_notional  # at the lower of the average and the limit price

    def smallest_order(self) -> tuple[Decimal, Decimal, Decimal] | None:
        """A small lot multiple meeting the minimums (quantity, notional, worst); None if the book is too thin."""
        t = self.terms
        if not self.n:
            return None
        q = max(floor_to(t.min_quantity, self.lot), self.lot)
        if q < t.min_quantity:
            q += self.lot
        if t.min_notional is not None:
            q = max(q, ceil_to(t.min_notional / self.levels[0].price, self.lot))
        for _ in range(8):
            if q > self.total:
                return None
            _, _, notional, worst = self.advance(0, ZERO, q)
            if worst is not None and self.feasible(q, notional, worst):
                return q, notional, worst
            bump = ceil_to(t.min_notional / worst, self.lot) if t.min_notional is not None and worst else q
            q = max(q + self.lot, bump)
        return None


def _ladders(side: Side, books: Mapping[str, Book], terms: Mapping[str, VenueTerms],
             limit_price: Decimal | None) -> list[_Ladder]:
    symbols = {b.symbol for v, b in books.items() if v in terms}
    if len(symbols) > 1:
        raise ValueError(f"books for more than one symbol: {', '.join(sorted(symbols))}")
    out: list[_Ladder] = []
    buy = side is Side.BUY
    for venue in sorted(books):
        t = terms.get(venue)
        book = books[venue]
        if t is None or t.symbol != book.symbol:
            continue
        if t.lot_size <= 0 or t.tick_size <= 0:
            raise ValueError(f"{venue} terms for {t.symbol}: lot_size and tick_size must be greater than 0")
        factor = ONE + t.taker_fee if buy else ONE - t.taker_fee
        out.append(_Ladder(venue, t, factor, book.asks if buy else book.bids, len(out), limit_price, buy))
    return out


_State = list[Any]  # per venue: [share, next level j, used of level j, notional, worst price]


def _walk(side: Side, quantity: Decimal, ladders: list[_Ladder]) -> list[_State]:
    """The fractional, fee-aware walk of the consolidated book: each venue's share and where it stopped.

    A heap merge of the venues' ladders (each already best first) on (all-in key, venue rank, level): only the
    levels actually taken are keyed, one Decimal multiplication each; a buy's key is the all-in price, a sell's
    its negation (so the smallest key is always the best level).
    """
    sign = ONE if side is Side.BUY else -ONE
    heap = [(lad.levels[0].price * lad.factor * sign, lad.rank, 0)
            for lad in ladders if lad.levels and lad.within(lad.levels[0].price)]
    heapq.heapify(heap)
    # per venue: levels, signed fee factor, and the signed limit (key and limit compare as "smaller is better")
    runs = [(lad.levels, lad.factor * sign, None if lad.limit is None else lad.limit * sign) for lad in ladders]
    shares = [ZERO] * len(ladders)
    notionals = [ZERO] * len(ladders)
    nexts = [0] * len(ladders)
    partial: tuple[int, Decimal] | None = None
    heapreplace, heappop = heapq.heapreplace, heapq.heappop
    need = quantity
    while heap and need > 0:
        r, i = heap[0][1], heap[0][2]
        levels, factor, limit = runs[r]
        lv = levels[i]
        q = lv.quantity
        if q >= need:
            shares[r] += need
            notionals[r] += need * lv.price
            if q == need:
                nexts[r] = i + 1
            else:
                nexts[r] = i
                partial = (r, need)
            break
        if q > 0:
            shares[r] += q
            notionals[r] += q * lv.price
            need -= q
        i += 1
        nexts[r] = i
        if i < len(levels):
            price = levels[i].price
            if limit is None or price * sign <= limit:
                heapreplace(heap, (price * factor, r, i))
                continue
        heappop(heap)
    states: list[_State] = []
    for r, lad in enumerate(ladders):
        j, used = nexts[r], ZERO
        if partial is not None and partial[0] == r:
            used = partial[1]
        worst = None
        if shares[r] > 0:
            k = j if used else j - 1
            while lad.levels[k].quantity <= 0:
                k -= 1
            worst = lad.levels[k].price
        states.append([shares[r], j, used, notionals[r], worst])
    return states


_Fill = tuple[Decimal, Decimal, Decimal | None]  # quantity, notional, worst price


def _result(side: Side, requested: Decimal, ladders: list[_Ladder], fills: list[_Fill],
            mid: Decimal | None) -> Allocation:
    slices: list[tuple[Decimal, str, VenueSlice]] = []
    total_q = total_notional = total_cost = ZERO
    buy = side is Side.BUY
    for lad, (q, notional, worst) in zip(ladders, fills):
        if q <= 0 or worst is None:
            continue
        fee = notional * lad.terms.taker_fee
        top = lad.levels[0].price * lad.factor
        slices.append((top if buy else -top, lad.venue, VenueSlice(lad.venue, q, worst, notional / q, fee)))
        total_q += q
        total_notional += notional
        total_cost += notional + fee if buy else notional - fee
    slices.sort(key=lambda s: (s[0], s[1]))
    avg = total_notional / total_q if total_q else None
    bps = None
    if mid and total_q:
        unit = total_cost / total_q
        bps = ((unit - mid) if buy else (mid - unit)) / mid * BPS
    return Allocation(side=side, requested=requested, slices=tuple(s for _, _, s in slices), total_quantity=total_q,
                      unallocated=requested - total_q, expected_average_price=avg, total_cost=total_cost,
                      cost_vs_mid_bps=bps, mid=mid)


def _mid(ladders: list[_Ladder], books: Mapping[str, Book]) -> Decimal | None:
    return consolidated_mid({lad.venue: books[lad.venue] for lad in ladders})


def _check(side: Side, quantity: Decimal) -> Side:
    if quantity < 0:
        raise ValueError(f"quantity: must not be negative, got {quantity}")
    return Side(side)


def consolidated_optimum(side: Side, quantity: Decimal, books: Mapping[str, Book],
                         terms: Mapping[str, VenueTerms], limit_price: Decimal | None = None) -> Allocation:
    """The fee-aware walk without lots or minimums: the lower bound a router can approach, never beat."""
    side = _check(side, quantity)
    ladders = _ladders(side, books, terms, limit_price)
    walked = _walk(side, quantity, ladders)
    return _result(side, quantity, ladders, [(w[0], w[3], w[4]) for w in walked], _mid(ladders, books))


def _single(side: Side, quantity: Decimal, ladders: list[_Ladder], mid: Decimal | None,
            rival: Allocation | None = None) -> Allocation | None:
    """The best one-venue allocation; with `rival`, only one that beats it (None if none does)."""
    best = rival
    buy = side is Side.BUY
    for lad in ladders:
        q = floor_to(min(quantity, lad.total), lad.lot)
        if q <= 0 or (best is not None and q < best.total_quantity):
            continue
        if best is not None and q == best.total_quantity:
            walked = _cheaper_than(lad, q, best.total_cost, buy)  # stops as soon as it cannot win
            if walked is None:
                continue
            notional, worst = walked
        else:
            _, _, notional, worst = lad.advance(0, ZERO, q)
        if not lad.feasible(q, notional, worst):
            continue
        fills: list[_Fill] = [(q, notional, worst) if other is lad else (ZERO, ZERO, None) for other in ladders]
        candidate = _result(side, quantity, ladders, fills, mid)
        if best is None or candidate.better_than(best):
            best = candidate
    return None if best is rival else best


def _cheaper_than(lad: _Ladder, q: Decimal, cost: Decimal, buy: bool) -> tuple[Decimal, Decimal | None] | None:
    """Walk `q` on one venue: (notional, worst price), or None once its all-in cost cannot beat `cost`
    (a buy's cost only grows; a sell's proceeds are at most what is taken plus the rest at the current price)."""
    notional = ZERO
    worst = None
    factor = lad.factor
    for lv in lad.levels:
        if q <= 0:
            break
        take = q if q < lv.quantity else lv.quantity
        if take <= 0:
            continue
        notional += take * lv.price
        worst = lv.price
        q -= take
        if buy:
            if notional * factor >= cost:
                return None
        elif (notional + q * lv.price) * factor <= cost:
            return None
    return notional, worst


def best_single_venue(side: Side, quantity: Decimal, books: Mapping[str, Book], terms: Mapping[str, VenueTerms],
                      limit_price: Decimal | None = None) -> Allocation:
    """The best allocation using one venue only (fills the most, then costs the least), lots and minimums kept."""
    side = _check(side, quantity)
    ladders = _ladders(side, books, terms, limit_price)
    mid = _mid(ladders, books)
    return _single(side, quantity, ladders, mid) or _result(side, quantity, ladders, [], mid)


def allocate(side: Side, quantity: Decimal, books: Mapping[str, Book], terms: Mapping[str, VenueTerms],
             limit_price: Decimal | None = None) -> Allocation:
    """Split `quantity` across venues at the least all-in cost, lots and minimums kept (see the module doc)."""
    side = _check(side, quantity)
    ladders = _ladders(side, books, terms, limit_price)
    mid = _mid(ladders, books)
    if not quantity or not ladders:
        return _result(side, quantity, ladders, [], mid)
    walked = _walk(side, quantity, ladders)
    shares = [w[0] for w in walked]
    alloc = [floor_to(x, lad.lot) if x > 0 else ZERO for x, lad in zip(shares, ladders)]
    state: list[tuple[int, Decimal, Decimal, Decimal | None]] = []
    for k, (lad, a, w) in enumerate(zip(ladders, alloc, walked)):
        share, j, used, notional, worst = w
        if a != share:
            j, used, notional, worst = lad.retreat(j, used, notional, share - a) if a else (0, ZERO, ZERO, None)
        if a and not lad.feasible(a, notional, worst):
            alloc[k] = a = ZERO
            j, used, notional, worst = 0, ZERO, ZERO, None
        state.append((j, used, notional, worst))
    if alloc != shares:
        _repair(side, quantity, ladders, alloc, state)
        _exchange(side, ladders, alloc, state)
    result = _result(side, quantity, ladders, [(a, st[2], st[3]) for a, st in zip(alloc, state)], mid)
    if alloc == shares:
        return result  # nothing was rounded off or dropped: this is the fractional optimum itself
    single = _single(side, quantity, ladders, mid, rival=result)
    return single if single is not None else result


def _repair(side: Side, quantity: Decimal, ladders: list[_Ladder], alloc: list[Decimal],
            state: list[tuple[int, Decimal, Decimal, Decimal | None]]) -> None:
    """Re-allocate what rounding and minimums removed, cheapest step first (in place; see the module doc)."""
    deficit = quantity - sum(alloc, ZERO)
    buy = side is Side.BUY
    openings: dict[int, tuple[Decimal, Decimal, Decimal] | None] = {}
    for _ in range(2 * sum(len(lad.levels) for lad in ladders) + 2 * len(ladders) + 1):
        best: tuple[Decimal, int, Decimal, tuple[int, Decimal, Decimal, Decimal | None]] | None = None
        for k, lad in enumerate(ladders):
            if lad.lot > deficit:
                continue
            a = alloc[k]
            room = floor_to(min(deficit, lad.total - a), lad.lot)
            if room <= 0:
                continue
            j, used, notional, worst = state[k]
            if a == 0:
                if k not in openings:
                    openings[k] = lad.smallest_order()
                opening = openings[k]
                if opening is None or opening[0] > room:
                    continue
                step = opening[0]
            else:
                step = floor_to(min(lad.levels[j].quantity - used, room), lad.lot) if j < lad.n else ZERO
                if step <= 0:
                    step = lad.lot  # one lot across the level boundary (room >= lot here)
            nj, nused, add, nworst = lad.advance(j, used, step)
            if not lad.feasible(a + step, notional + add, nworst):
                continue
            unit = add * lad.factor / step
            key = unit if buy else -unit
            if best is None or key < best[0]:
                best = (key, k, step, (nj, nused, notional + add, nworst))
        if best is None:
            return
        _, k, step, st = best
        alloc[k] += step
        state[k] = st
        deficit -= step


_Pos = tuple[int, Decimal, Decimal, Decimal | None]  # a venue's (next level j, used of j, notional, worst price)


def _exchange(side: Side, ladders: list[_Ladder], alloc: list[Decimal], state: list[_Pos]) -> None:
    """Move single lots between venues of the same lot size while that lowers the all-in cost (in place).

    Each step takes the best pair: one more lot on venue j (its next lot) for one lot less on venue i (its last
    lot), both still meeting their minimums (i may drop to nothing), if the cost strictly improves; the quantity
    is unchanged. With one lot size and no minimum binding it ends at the optimum within one step per venue (see
    the module doc); the bound below only caps the other cases, where every step still strictly lowers the cost.

    A pair is priced only if it can win: j's next lot costs at least a lot at j's next price, i's last lot at most
    a lot at i's worst price (all-in), so j's next all-in price must beat i's worst (two multiplications per venue
    rule out most pairs before any lot is walked).
    """
    groups: dict[Decimal, list[int]] = {}
    for k, lad in enumerate(ladders):
        groups.setdefault(lad.lot, []).append(k)
    pools = [g for g in groups.values() if len(g) > 1]
    if not pools:
        return
    sign = ONE if side is Side.BUY else -ONE
    n = len(ladders)
    nexts: list[Decimal | None] = [None] * n  # signed all-in price of the next unit (None: none within the limit)
    worsts: list[Decimal | None] = [None] * n  # signed all-in worst price taken (None: nothing taken)

    def bound(k: int) -> None:
        lad, (j, _, _, worst) = ladders[k], state[k]
        f = lad.factor * sign
        nexts[k] = lad.levels[j].price * f if j < lad.n else None
        worsts[k] = worst * f if alloc[k] > 0 and worst is not None else None

    for group in pools:
        for k in group:
            bound(k)
    adds: dict[int, tuple[Decimal, _Pos] | None] = {}  # the exact next and last lots (signed all-in cost, new
    drops: dict[int, tuple[Decimal, _Pos] | None] = {}  # position), priced only when a pair passes the bound
    for _ in range(2 * sum(len(lad.levels) for lad in ladders) + 2 * n + 1):
        best: tuple[Decimal, int, int] | None = None
        for group in pools:
            for j in group:
                np = nexts[j]
                if np is None:
                    continue
                for i in group:
                    wp = worsts[i]
                    if i == j or wp is None or np >= wp:
                        continue
                    if j not in adds:
                        adds[j] = _next_lot(ladders[j], alloc[j], state[j], sign)
                    if i not in drops:
                        drops[i] = _last_lot(ladders[i], alloc[i], state[i], sign)
                    up, down = adds[j], drops[i]
                    if up is None or down is None:
                        continue
                    gain = up[0] - down[0]  # signed: < 0 is cheaper (a buy pays less, a sell receives more)
                    if gain < 0 and (best is None or gain < best[0]):
                        best = (gain, j, i)
        if best is None:
            return
        _, j, i = best
        state[j] = adds[j][1]  # type: ignore[index]
        state[i] = drops[i][1]  # type: ignore[index]
        alloc[j] += ladders[j].lot
        alloc[i] -= ladders[i].lot
        for k in (i, j):
            bound(k)
            adds.pop(k, None)
            drops.pop(k, None)


def _next_lot(lad: _Ladder, a: Decimal, pos: _Pos, sign: Decimal) -> tuple[Decimal, _Pos] | None:
    """One lot more from `pos` (`a` taken): its signed all-in cost and the new position; None if it does not fit
    within the limit price or misses the minimums."""
    j, used, notional, _ = pos
    levels, lot = lad.levels, lad.lot
    left, last = levels[j].quantity - used, j
    while left < lot and last + 1 < lad.n:
        last += 1
        left += levels[last].quantity
    if left < lot:
        return None
    nj, nused, more, nworst = lad.advance(j, used, lot)
    if not lad.feasible(a + lot, notional + more, nworst):
        return None
    return more * lad.factor * sign, (nj, nused, notional + more, nworst)


def _last_lot(lad: _Ladder, a: Decimal, pos: _Pos, sign: Decimal) -> tuple[Decimal, _Pos] | None:
    """One lot less from `pos` (`a` taken): its signed all-in cost and the new position (nothing left is fine);
    None if what is left misses the minimums."""
    j, used, notional, _ = pos
    if a == lad.lot:
        return notional * lad.factor * sign, (0, ZERO, ZERO, None)
    if a < lad.lot:
        return None
    rj, rused, rest, rworst = lad.retreat(j, used, notional, lad.lot)
    if not lad.feasible(a - lad.lot, rest, rworst):
        return None
    return (notional - rest) * lad.factor * sign, (rj, rused, rest, rworst)
