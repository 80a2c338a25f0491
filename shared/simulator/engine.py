"""The matching engine: symbols, accounts and balances, fees, orders, matching and stop triggers.

Inside, everything is an integer: prices in ticks, quantities in lots (steps), amounts of an asset in atoms
(``10**-asset_decimals``, Binance's 8 decimals by default). ``Decimal`` appears only at the public methods.

Rules, Binance-spot style:

- Matching is price-time priority; a trade happens at the resting (maker) order's price.
- Funds are locked when an order is accepted: a SELL locks its base quantity; a BUY with a price locks
  ``qty * price`` of the quote asset (a fill at a better price refunds the difference); a MARKET BUY locks what
  it will spend (the cost of sweeping the book for ``quantity``, or ``quoteOrderQty``), so it can never spend
  more than the account's free quote. An untriggered STOP_LOSS / TAKE_PROFIT BUY locks nothing; when it
  triggers it may spend up to the account's free quote and expires whatever that cannot buy.
- Commission is charged on every fill in the asset received (base for the buyer, quote for the seller), at the
  maker or taker rate, rounded up to a whole atom, and accumulates in ``fees_collected``.
- MARKET and IOC orders expire their unfilled remainder (status EXPIRED, even after partial fills); FOK fills
  completely or expires without trading; LIMIT_MAKER is rejected if it would take; GTC rests the remainder.
- STOP_LOSS(_LIMIT) / TAKE_PROFIT(_LIMIT) wait outside the book until the last trade price reaches the stop
  price (STOP_LOSS BUY and TAKE_PROFIT SELL when last >= stop, the other two when last <= stop), then work as a
  MARKET / LIMIT order. Triggers are evaluated after each order's matching, in stop-price order, and may
  cascade; every stop triggers at most once, so a cascade ends after at most as many steps as stops pending.
- Self-trade prevention is EXPIRE_TAKER: when an incoming order reaches a resting order of its own account,
  matching stops there and the incoming order's remainder expires with status EXPIRED_IN_MATCH.
- A halted symbol refuses new orders ("Market is closed."); cancels and queries still work.
- Closed orders and account trades are kept for the last ``history_limit`` per account and symbol.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict, deque
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from sortedcontainers import SortedList

from shared.simulator.book import Book
from shared.simulator.model import (
    AccountTrade,
    Balance,
    Depth,
    ExchangeError,
    Fees,
    OrderStatus,
    OrderType,
    OrderView,
    Placement,
    PublicTrade,
    Side,
    SymbolConfig,
    TimeInForce,
)

_OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
_STOP_LOSS_TYPES = (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)

# Parameters each order type must have (Binance's names); MARKET needs exactly one of quantity / quoteOrderQty.
_REQUIRED: dict[OrderType, tuple[str, ...]] = {
    OrderType.LIMIT: ("timeInForce", "quantity", "price"),
    OrderType.MARKET: (),
    OrderType.STOP_LOSS: ("quantity", "stopPrice"),
    OrderType.STOP_LOSS_LIMIT: ("timeInForce", "quantity", "price", "stopPrice"),
    OrderType.TAKE_PROFIT: ("quantity", "stopPrice"),
    OrderType.TAKE_PROFIT_LIMIT: ("timeInForce", "quantity", "price", "stopPrice"),
    OrderType.LIMIT_MAKER: ("quantity", "price"),
}
# A request's parameters as a bit mask, in this order, and the masks each order type accepts.
_PARAMS = ("timeInForce", "quantity", "price", "stopPrice", "quoteOrderQty")
_ACCEPTED: dict[OrderType, tuple[int, ...]] = {
    otype: (sum(1 << _PARAMS.index(name) for name in required),) for otype, required in _REQUIRED.items()
}
_ACCEPTED[OrderType.MARKET] = (1 << _PARAMS.index("quantity"), 1 << _PARAMS.index("quoteOrderQty"))
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

# Why a taker stopped matching.
_DONE, _NO_LIQUIDITY, _SELF_TRADE, _BUDGET = range(4)

_E = TypeVar("_E", bound=StrEnum)
_SIDES = {m.value: m for m in Side}
_ORDER_TYPES = {m.value: m for m in OrderType}
_TIFS = {m.value: m for m in TimeInForce}


class _Rate:
    """A commission rate as an exact fraction; ``of`` rounds up to a whole atom."""

    __slots__ = ("num", "den")

    def __init__(self, rate: Decimal) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"fee rate must be in [0, 1): {rate}")
        self.num, self.den = rate.as_integer_ratio()

    def of(self, atoms: int) -> int:
        return -(-atoms * self.num // self.den)


class _Order:
    """An order in engine units. ``remaining`` is 0 for a quoteOrderQty order, which is bounded by its funds."""

    __slots__ = (
        "order_id", "account", "client_order_id", "is_buy", "type", "tif", "price", "stop_price", "qty",
        "quote_qty", "remaining", "executed", "cum_notional", "locked", "status", "time", "update_time",
        "working_time",
    )

    def __init__(
        self, order_id: int, account: str, client_order_id: str, is_buy: bool, order_type: OrderType,
        tif: TimeInForce, price: int, stop_price: int, qty: int, quote_qty: int, now_ms: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.client_order_id = client_order_id
        self.is_buy = is_buy
        self.type = order_type
        self.tif = tif
        self.price = price  # ticks; 0 for market orders
        self.stop_price = stop_price  # ticks; 0 unless a stop order
        self.qty = qty  # lots
        self.quote_qty = quote_qty  # quote atoms of a quoteOrderQty MARKET BUY, else 0
        self.remaining = qty
        self.executed = 0
        self.cum_notional = 0  # sum of price * lots over fills, in tick-lots
        self.locked = 0  # atoms this order holds locked (quote for a BUY, base for a SELL)
        self.status = OrderStatus.NEW
        self.time = now_ms
        self.update_time = now_ms
        self.working_time: int | None = None  # None while a stop order waits for its trigger


class _Fill:
    """One account's side of one trade."""

    __slots__ = ("trade_id", "order_id", "price", "lots", "commission", "is_buyer", "is_maker", "time")

    def __init__(
        self, trade_id: int, order_id: int, price: int, lots: int, commission: int, is_buyer: bool,
        is_maker: bool, time: int,
    ) -> None:
        self.trade_id = trade_id
        self.order_id = order_id
        self.price = price
        self.lots = lots
        self.commission = commission
        self.is_buyer = is_buyer
        self.is_maker = is_maker
        self.time = time


class _Account:
    __slots__ = ("free", "locked", "open", "history", "fills")

    def __init__(self) -> None:
        self.free: defaultdict[str, int] = defaultdict(int)
        self.locked: defaultdict[str, int] = defaultdict(int)
        self.open: defaultdict[str, dict[int, _Order]] = defaultdict(dict)  # symbol -> order id -> order
        self.history: defaultdict[str, deque[int]] = defaultdict(deque)  # symbol -> closed order ids, oldest first
        self.fills: defaultdict[str, list[_Fill]] = defaultdict(list)  # symbol -> fills, by trade id


class _Symbol:
    """One symbol's book, orders, pending stops and counters, with its filters in engine units."""

    def __init__(self, config: SymbolConfig, atoms_per_unit: Decimal, public_trades: int) -> None:
        self.config = config
        self.name = config.symbol
        self.base, self.quote = config.base, config.quote
        self.tick, self.step = config.tick_size, config.step_size
        self.notional_unit = config.tick_size * config.step_size  # quote value of one tick-lot
        self.lot_atoms = _whole(config.step_size * atoms_per_unit, "step_size in base atoms")
        self.unit = _whole(self.notional_unit * atoms_per_unit, "tick_size * step_size in quote atoms")
        self.min_lots = _whole(config.min_qty / config.step_size, "min_qty in steps")
        self.max_lots = _whole(config.max_qty / config.step_size, "max_qty in steps")
        self.max_ticks = _whole(config.max_price / config.tick_size, "max_price in ticks")
        self.min_notional = _whole(config.min_notional * atoms_per_unit, "min_notional in quote atoms")
        self.book: Book[_Order] = Book()
        self.orders: dict[int, _Order] = {}
        self.by_client_id: dict[tuple[str, str], int] = {}  # (account, clientOrderId) -> latest order id
        self.stops_up: SortedList = SortedList()  # (stop, order id): trigger when last >= stop
        self.stops_down: SortedList = SortedList()  # (-stop, order id): trigger when last <= stop
        self.next_order_id = 1
        self.next_trade_id = 1
        self.last_price: int | None = None
        self.halted = False
        self.trades: deque[tuple[int, int, int, int, bool]] = deque(maxlen=public_trades)


def _whole(value: Decimal, what: str) -> int:
    if value <= 0 or value != value.to_integral_value():
        raise ValueError(f"symbol config: {what} must be a positive whole number, got {value}")
    return int(value)


def _multiple(value: Decimal, unit: Decimal) -> int | None:
    """``value / unit`` if that is a whole number, else None (also for NaN, infinities and absurd magnitudes)."""
    try:
        quotient, remainder = divmod(value, unit)
    except (InvalidOperation, TypeError):
        return None
    return None if remainder else int(quotient)


def _parse(members: dict[str, _E], value: _E | str, code: int, msg: str) -> _E:
    """The enum member named ``value`` (members are str, so one lookup serves both)."""
    member = members.get(value)
    if member is None:
        raise ExchangeError(code, msg)
    return member


class Engine:
    """A simulated Binance-spot exchange: symbols, accounts, orders and matching, all in memory."""

    def __init__(
        self, fees: Fees = Fees(), *, asset_decimals: int = 8, history_limit: int = 10_000,
        public_trades_limit: int = 1000,
    ) -> None:
        self._maker, self._taker = _Rate(fees.maker), _Rate(fees.taker)
        self._decimals = asset_decimals
        self._atoms_per_unit = Decimal(10) ** asset_decimals
        self._atom = Decimal(1).scaleb(-asset_decimals)
        self._history_limit = history_limit
        self._public_trades_limit = public_trades_limit
        self._symbols: dict[str, _Symbol] = {}
        self._accounts: dict[str, _Account] = {}
        self._fees: defaultdict[str, int] = defaultdict(int)

    # --- configuration and funding ---------------------------------------------------------------------

    def add_symbol(self, config: SymbolConfig) -> None:
        """List a symbol; raises ValueError if its filters do not fit the engine's units."""
        if config.symbol in self._symbols:
            raise ValueError(f"symbol already listed: {config.symbol}")
        self._symbols[config.symbol] = _Symbol(config, self._atoms_per_unit, self._public_trades_limit)

    def symbols(self) -> list[SymbolConfig]:
        return [s.config for s in self._symbols.values()]

    def symbol_config(self, symbol: str) -> SymbolConfig:
        return self._symbol(symbol).config

    def set_halted(self, symbol: str, halted: bool) -> None:
        self._symbol(symbol).halted = halted

    def is_halted(self, symbol: str) -> bool:
        return self._symbol(symbol).halted

    def deposit(self, account: str, asset: str, amount: Decimal) -> None:
        """Credit ``amount`` of ``asset`` to the account's free balance (creating the account if new)."""
        atoms = _multiple(amount, self._atom)
        if atoms is None or atoms <= 0:
            raise ValueError(f"deposit must be positive with at most {self._decimals} decimals: {amount}")
        self._account(account).free[asset] += atoms

    # --- orders ----------------------------------------------------------------------------------------

    def place_order(
        self, account: str, symbol: str, side: Side | str, order_type: OrderType | str, *, now_ms: int,
        quantity: Decimal | None = None, price: Decimal | None = None,
        time_in_force: TimeInForce | str | None = None, stop_price: Decimal | None = None,
        quote_order_qty: Decimal | None = None, client_order_id: str | None = None,
    ) -> Placement:
        """Validate, accept and match a new order, then fire any stops its trades trigger."""
        s = self._symbol(symbol)
        is_buy = _parse(_SIDES, side, -1117, "Invalid side.") is Side.BUY
        otype = _parse(_ORDER_TYPES, order_type, -1116, "Invalid orderType.")
        tif = TimeInForce.GTC if time_in_force is None else _parse(
            _TIFS, time_in_force, -1115, "Invalid timeInForce.")
        sent = ((time_in_force is not None) | (quantity is not None) << 1 | (price is not None) << 2
                | (stop_price is not None) << 3 | (quote_order_qty is not None) << 4)
        if sent not in _ACCEPTED[otype]:
            _reject_params(otype, sent)
        if quote_order_qty is not None and not is_buy:
            raise ExchangeError(-1014, "Unsupported order combination.")
        if s.halted:
            raise ExchangeError(-2010, "Market is closed.")
        if client_order_id is not None and not _CLIENT_ID.match(client_order_id):
            raise ExchangeError(-1100, "Illegal characters found in parameter 'newClientOrderId'; "
                                       "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        lots = 0 if quantity is None else self._lots(s, quantity)
        ticks = 0 if price is None else self._ticks(s, price, "Invalid price.")
        stop = 0 if stop_price is None else self._ticks(s, stop_price, "Invalid stopPrice.")
        quote_atoms = 0 if quote_order_qty is None else self._quote_qty(quote_order_qty)
        self._check_notional(s, is_buy, lots, ticks or stop, quote_atoms)

        acct = self._account(account)
        if client_order_id is not None:
            previous = s.orders.get(s.by_client_id.get((account, client_order_id), 0))
            if previous is not None and previous.status in _OPEN:
                raise ExchangeError(-2010, "Duplicate order sent.")
        triggers_up = (otype in _STOP_LOSS_TYPES) == is_buy
        if stop and s.last_price is not None and (
                s.last_price >= stop if triggers_up else s.last_price <= stop):
            raise ExchangeError(-2010, "Order would trigger immediately.")
        if otype is OrderType.LIMIT_MAKER and s.book.side(not is_buy).best_within(ticks) is not None:
            raise ExchangeError(-2010, "Order would immediately match and take.")
        need = self._funds_needed(s, account, is_buy, lots, ticks, stop, quote_atoms)
        asset = s.quote if is_buy else s.base
        if acct.free[asset] < need:
            raise ExchangeError(-2010, "Account has insufficient balance for requested action.")

        order_id = s.next_order_id
        s.next_order_id += 1
        o = _Order(order_id, account, client_order_id or f"auto-{order_id}", is_buy, otype, tif, ticks, stop,
                   lots, quote_atoms, now_ms)
        acct.free[asset] -= need
        acct.locked[asset] += need
        o.locked = need
        s.orders[order_id] = o
        s.by_client_id[(account, o.client_order_id)] = order_id
        acct.open[s.name][order_id] = o

        if stop:
            if triggers_up:
                s.stops_up.add((stop, order_id))
            else:
                s.stops_down.add((-stop, order_id))
            return Placement(self._view(s, o), [])
        fills = self._work(s, o, now_ms)
        placement = Placement(self._view(s, o), [self._trade_view(s, f) for f in fills])
        if fills:
            self._fire_stops(s, now_ms)
        return placement

    def cancel_order(
        self, account: str, symbol: str, *, now_ms: int, order_id: int | None = None,
        orig_client_order_id: str | None = None,
    ) -> OrderView:
        """Cancel an open order; an unknown or already closed order is -2011 "Unknown order sent."."""
        s = self._symbol(symbol)
        o = self._find(s, account, order_id, orig_client_order_id, -2011, "Unknown order sent.")
        if o.status not in _OPEN:
            raise ExchangeError(-2011, "Unknown order sent.")
        self._cancel(s, o, now_ms)
        return self._view(s, o)

    def cancel_open_orders(self, account: str, symbol: str, *, now_ms: int) -> list[OrderView]:
        """Cancel all of the account's open orders on a symbol, oldest first."""
        s = self._symbol(symbol)
        canceled = list(self._account(account).open[s.name].values())
        for o in canceled:
            self._cancel(s, o, now_ms)
        return [self._view(s, o) for o in canceled]

    def get_order(
        self, account: str, symbol: str, *, order_id: int | None = None, orig_client_order_id: str | None = None,
    ) -> OrderView:
        """An open or (retained) closed order; unknown is -2013 "Order does not exist."."""
        s = self._symbol(symbol)
        return self._view(s, self._find(s, account, order_id, orig_client_order_id, -2013, "Order does not exist."))

    def open_orders(self, account: str, symbol: str | None = None) -> list[OrderView]:
        """Open orders (including stops waiting for their trigger), grouped by symbol, by order id."""
        acct = self._account(account)
        names = [self._symbol(symbol).name] if symbol is not None else list(acct.open)
        return [self._view(self._symbols[n], o) for n in names for o in acct.open[n].values()]

    def open_order_ids(self, account: str, symbol: str) -> set[int]:
        return set(self._account(account).open[self._symbol(symbol).name])

    def all_orders(
        self, account: str, symbol: str, *, from_order_id: int | None = None, limit: int = 500,
    ) -> list[OrderView]:
        """Open and retained closed orders by order id: from ``from_order_id`` on, else the most recent."""
        s = self._symbol(symbol)
        acct = self._account(account)
        ids = sorted([*acct.history[s.name], *acct.open[s.name]])
        if from_order_id is None:
            ids = ids[max(0, len(ids) - limit):]
        else:
            start = bisect_left(ids, from_order_id)
            ids = ids[start:start + limit]
        return [self._view(s, s.orders[i]) for i in ids]

    # --- trades, book and balances ---------------------------------------------------------------------

    def my_trades(
        self, account: str, symbol: str, *, from_id: int | None = None, limit: int = 500,
    ) -> list[AccountTrade]:
        """The account's fills by trade id: from ``from_id`` on, else the most recent ``limit``."""
        s = self._symbol(symbol)
        fills = self._account(account).fills[s.name]
        if from_id is None:
            chosen = fills[max(0, len(fills) - limit):]
        else:
            start = bisect_left(fills, from_id, key=lambda f: f.trade_id)
            chosen = fills[start:start + limit]
        return [self._trade_view(s, f) for f in chosen]

    def recent_trades(self, symbol: str, limit: int = 500) -> list[PublicTrade]:
        """The symbol's most recent public trades, oldest first."""
        s = self._symbol(symbol)
        recent = list(s.trades)[max(0, len(s.trades) - limit):]
        return [
            PublicTrade(id=tid, price=s.tick * price, qty=s.step * lots, quote_qty=s.notional_unit * (price * lots),
                        time=time, is_buyer_maker=buyer_maker)
            for tid, price, lots, time, buyer_maker in recent
        ]

    def last_price(self, symbol: str) -> Decimal | None:
        s = self._symbol(symbol)
        return None if s.last_price is None else s.tick * s.last_price

    def depth(self, symbol: str, limit: int = 100) -> Depth:
        """The best ``limit`` levels per side, aggregated, best first."""
        s = self._symbol(symbol)
        book = s.book
        return Depth(
            last_update_id=book.update_id,
            bids=[(s.tick * p, s.step * q) for p, q in book.bids.top(limit)],
            asks=[(s.tick * p, s.step * q) for p, q in book.asks.top(limit)],
        )

    def balances(self, account: str) -> dict[str, Balance]:
        acct = self._account(account)
        return {a: Balance(self._amount(acct.free[a]), self._amount(acct.locked[a]))
                for a in sorted({*acct.free, *acct.locked})}

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def fees_collected(self) -> dict[str, Decimal]:
        """Commission charged so far, per asset."""
        return {asset: self._amount(atoms) for asset, atoms in self._fees.items()}

    # --- matching --------------------------------------------------------------------------------------

    def _work(self, s: _Symbol, o: _Order, now_ms: int) -> list[_Fill]:
        """Match a working order as taker, then rest, fill or expire it. Returns its taker fills."""
        o.working_time = now_ms
        if o.tif is TimeInForce.FOK:
            fillable, _ = s.book.side(not o.is_buy).sweep(o.price, o.remaining, o.account)
            if fillable < o.remaining:
                self._close(s, o, OrderStatus.EXPIRED, now_ms)
                return []
        fills: list[_Fill] = []
        stopped = self._match(s, o, now_ms, fills)
        if o.quote_qty:  # its quantity is what the money bought; FILLED once the rest cannot buy a lot
            o.qty = o.executed
            filled = o.executed > 0 and (stopped == _BUDGET or not o.locked)
        else:
            filled = stopped == _DONE
        if filled:
            self._close(s, o, OrderStatus.FILLED, now_ms)
        elif stopped == _SELF_TRADE:
            self._close(s, o, OrderStatus.EXPIRED_IN_MATCH, now_ms)
        elif not o.price or o.tif is not TimeInForce.GTC:
            self._close(s, o, OrderStatus.EXPIRED, now_ms)
        else:
            s.book.add(o, o.is_buy)
        return fills

    def _match(self, s: _Symbol, taker: _Order, now_ms: int, fills: list[_Fill]) -> int:
        """Trade ``taker`` against the opposite side until done; returns why it stopped."""
        makers = s.book.side(not taker.is_buy)
        limit = taker.price or None
        funded = taker.is_buy and not taker.price  # a market BUY can spend only what it locked
        while True:
            level = makers.best_within(limit)
            if level is None:
                return _NO_LIQUIDITY
            maker = level.head()
            if maker.account == taker.account:
                return _SELF_TRADE
            lots = maker.remaining if taker.quote_qty else min(taker.remaining, maker.remaining)
            if funded:
                lots = min(lots, taker.locked // (level.price * s.unit))
                if not lots:
                    return _BUDGET
            fills.append(self._trade(s, taker, maker, level.price, lots, now_ms))
            if not taker.quote_qty and not taker.remaining:
                return _DONE

    def _trade(self, s: _Symbol, taker: _Order, maker: _Order, price: int, lots: int, now_ms: int) -> _Fill:
        """Execute one trade: move balances and fees, update both orders, record it. Returns the taker's fill."""
        trade_id = s.next_trade_id
        s.next_trade_id += 1
        notional = price * lots
        cost = notional * s.unit
        base = lots * s.lot_atoms
        if taker.is_buy:
            buyer, seller, buyer_fee, seller_fee = taker, maker, self._taker.of(base), self._maker.of(cost)
        else:
            buyer, seller, buyer_fee, seller_fee = maker, taker, self._maker.of(base), self._taker.of(cost)

        buyer_acct, seller_acct = self._accounts[buyer.account], self._accounts[seller.account]
        released = buyer.price * lots * s.unit if buyer.price else cost
        buyer.locked -= released
        buyer_acct.locked[s.quote] -= released
        buyer_acct.free[s.quote] += released - cost
        buyer_acct.free[s.base] += base - buyer_fee
        seller.locked -= base
        seller_acct.locked[s.base] -= base
        seller_acct.free[s.quote] += cost - seller_fee
        self._fees[s.base] += buyer_fee
        self._fees[s.quote] += seller_fee

        s.book.fill(maker, maker.is_buy, lots)  # takes lots off maker.remaining
        if not taker.quote_qty:
            taker.remaining -= lots
        for o in (taker, maker):
            o.executed += lots
            o.cum_notional += notional
            o.update_time = now_ms
            o.status = OrderStatus.PARTIALLY_FILLED
        if not maker.remaining:
            self._close(s, maker, OrderStatus.FILLED, now_ms)
        s.last_price = price
        s.trades.append((trade_id, price, lots, now_ms, maker.is_buy))

        taker_fill = _Fill(trade_id, taker.order_id, price, lots, buyer_fee if taker.is_buy else seller_fee,
                           taker.is_buy, False, now_ms)
        maker_fill = _Fill(trade_id, maker.order_id, price, lots, buyer_fee if maker.is_buy else seller_fee,
                           maker.is_buy, True, now_ms)
        self._record(s, taker.account, taker_fill)
        self._record(s, maker.account, maker_fill)
        return taker_fill

    def _fire_stops(self, s: _Symbol, now_ms: int) -> None:
        """Work every stop order the last price has reached, including those reached by the stops' own trades."""
        while s.last_price is not None:
            last = s.last_price
            if s.stops_up and s.stops_up[0][0] <= last:
                _, order_id = s.stops_up.pop(0)
            elif s.stops_down and -s.stops_down[0][0] >= last:
                _, order_id = s.stops_down.pop(0)
            else:
                return
            o = s.orders[order_id]
            if o.is_buy and not o.price:
                self._fund_market_buy(s, o)
            self._work(s, o, now_ms)

    # --- helpers ---------------------------------------------------------------------------------------

    def _funds_needed(
        self, s: _Symbol, account: str, is_buy: bool, lots: int, ticks: int, stop: int, quote_atoms: int,
    ) -> int:
        """Atoms to lock for a new order (quote for a BUY, base for a SELL)."""
        if not is_buy:
            return lots * s.lot_atoms
        if ticks:
            return ticks * lots * s.unit
        if quote_atoms:
            return quote_atoms
        if stop:
            return 0
        _, notional = s.book.asks.sweep(None, lots, account)
        return notional * s.unit

    def _fund_market_buy(self, s: _Symbol, o: _Order) -> None:
        """A triggered STOP_LOSS / TAKE_PROFIT BUY locked nothing: let it spend up to the free quote."""
        acct = self._accounts[o.account]
        o.locked = acct.free[s.quote]
        acct.free[s.quote] = 0
        acct.locked[s.quote] += o.locked

    def _cancel(self, s: _Symbol, o: _Order, now_ms: int) -> None:
        if o.working_time is None:
            if (o.type in _STOP_LOSS_TYPES) == o.is_buy:
                s.stops_up.remove((o.stop_price, o.order_id))
            else:
                s.stops_down.remove((-o.stop_price, o.order_id))
        else:
            s.book.remove(o, o.is_buy)
        self._close(s, o, OrderStatus.CANCELED, now_ms)

    def _close(self, s: _Symbol, o: _Order, status: OrderStatus, now_ms: int) -> None:
        """Finish an order that is out of the book: release what it still locks, move it to history."""
        o.status = status
        o.update_time = now_ms
        acct = self._accounts[o.account]
        if o.locked:
            asset = s.quote if o.is_buy else s.base
            acct.locked[asset] -= o.locked
            acct.free[asset] += o.locked
            o.locked = 0
        del acct.open[s.name][o.order_id]
        history = acct.history[s.name]
        history.append(o.order_id)
        if len(history) > self._history_limit:
            old = s.orders.pop(history.popleft())
            key = (old.account, old.client_order_id)
            if s.by_client_id.get(key) == old.order_id:
                del s.by_client_id[key]

    def _record(self, s: _Symbol, account: str, fill: _Fill) -> None:
        fills = self._accounts[account].fills[s.name]
        fills.append(fill)
        if len(fills) > 2 * self._history_limit:
            del fills[:-self._history_limit]

    def _find(
        self, s: _Symbol, account: str, order_id: int | None, client_order_id: str | None, code: int, msg: str,
    ) -> _Order:
        if order_id is None:
            if client_order_id is None:
                raise ExchangeError(
                    -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
            order_id = s.by_client_id.get((account, client_order_id), 0)
        o = s.orders.get(order_id)
        if o is None or o.account != account or (
                client_order_id is not None and o.client_order_id != client_order_id):
            raise ExchangeError(code, msg)
        return o

    def _symbol(self, symbol: str) -> _Symbol:
        s = self._symbols.get(symbol)
        if s is None:
            raise ExchangeError(-1121, "Invalid symbol.")
        return s

    def _account(self, account: str) -> _Account:
        acct = self._accounts.get(account)
        if acct is None:
            acct = self._accounts[account] = _Account()
        return acct

    def _lots(self, s: _Symbol, quantity: Decimal) -> int:
        lots = _multiple(quantity, s.step)
        if lots is not None and lots <= 0:
            raise ExchangeError(-1013, "Invalid quantity.")
        if lots is None or not s.min_lots <= lots <= s.max_lots:
            raise ExchangeError(-1013, "Filter failure: LOT_SIZE")
        return lots

    def _ticks(self, s: _Symbol, price: Decimal, invalid: str) -> int:
        ticks = _multiple(price, s.tick)
        if ticks is not None and ticks <= 0:
            raise ExchangeError(-1013, invalid)
        if ticks is None or ticks > s.max_ticks:
            raise ExchangeError(-1013, "Filter failure: PRICE_FILTER")
        return ticks

    def _quote_qty(self, amount: Decimal) -> int:
        atoms = _multiple(amount, self._atom)
        if atoms is None:
            raise ExchangeError(-1111, "Parameter 'quoteOrderQty' has too much precision.")
        if atoms <= 0:
            raise ExchangeError(-1013, "Invalid quoteOrderQty.")
        return atoms

    def _check_notional(self, s: _Symbol, is_buy: bool, lots: int, ticks: int, quote_atoms: int) -> None:
        """NOTIONAL filter; a MARKET order is valued at the best opposite price, else the last price."""
        if quote_atoms:
            value = quote_atoms
        else:
            reference = ticks or s.book.side(not is_buy).best_price() or s.last_price
            if reference is None:
                return
            value = reference * lots * s.unit
        if value < s.min_notional:
            raise ExchangeError(-1013, "Filter failure: NOTIONAL")

    def _amount(self, atoms: int) -> Decimal:
        return atoms * self._atom

    def _view(self, s: _Symbol, o: _Order) -> OrderView:
        return OrderView(
            symbol=s.name,
            order_id=o.order_id,
            client_order_id=o.client_order_id,
            price=s.tick * o.price,
            orig_qty=s.step * o.qty,
            executed_qty=s.step * o.executed,
            cummulative_quote_qty=s.notional_unit * o.cum_notional,
            status=o.status,
            time_in_force=o.tif,
            type=o.type,
            side=Side.BUY if o.is_buy else Side.SELL,
            stop_price=s.tick * o.stop_price,
            orig_quote_order_qty=self._amount(o.quote_qty),
            time=o.time,
            update_time=o.update_time,
            working_time=o.working_time,
            is_working=o.working_time is not None,
        )

    def _trade_view(self, s: _Symbol, f: _Fill) -> AccountTrade:
        return AccountTrade(
            symbol=s.name,
            id=f.trade_id,
            order_id=f.order_id,
            price=s.tick * f.price,
            qty=s.step * f.lots,
            quote_qty=s.notional_unit * (f.price * f.lots),
            commission=self._amount(f.commission),
            commission_asset=s.base if f.is_buyer else s.quote,
            time=f.time,
            is_buyer=f.is_buyer,
            is_maker=f.is_maker,
        )


def _reject_params(otype: OrderType, sent: int) -> None:
    """Raise Binance's error for a parameter set the order type does not accept: -1102 missing, -1106 extra."""
    names = {name for bit, name in enumerate(_PARAMS) if sent >> bit & 1}
    if otype is OrderType.MARKET:
        if not names & {"quantity", "quoteOrderQty"}:
            raise ExchangeError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        allowed = {"quoteOrderQty"} if "quoteOrderQty" in names else {"quantity"}
    else:
        allowed = set(_REQUIRED[otype])
    for name in _REQUIRED[otype]:
        if name not in names:
            raise ExchangeError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    extra = sorted(names - allowed)
    if extra == ["timeInForce"]:
        raise ExchangeError(-1114, "TimeInForce parameter sent when not required.")
    raise ExchangeError(-1106, f"Parameter '{extra[0]}' sent when not required.")
