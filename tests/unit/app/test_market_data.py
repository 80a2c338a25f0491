"""MarketData's reading of the public tape and candles (a tape of our own making behind the venue interface)."""

from __future__ import annotations

from decimal import Decimal

from shared.adapters.protocol import Candle, Candles, ErrorCode, PublicTrade, PublicTrades, VenueCallError
from shared.app.market_data import MarketData

D = Decimal
SYMBOL = "BTC/USDT"


class Tape:
    """A venue whose public tape holds `trades` (id, ms, qty) and answers at most `page` trades per call."""

    def __init__(self, trades: list[tuple[str, int, str]], page: int = 1000, candles: dict[int, str] | None = None,
                 fail: bool = False) -> None:
        self.tape, self.page, self.bars, self.fail, self.calls = trades, page, candles or {}, fail, 0
        self.candle_calls = 0

    def trades(self, symbol, since_ms, until_ms=None, limit=1000) -> PublicTrades:  # the MarketVenue signature
        self.calls += 1
        if self.fail:
            raise VenueCallError("x", ErrorCode.VENUE_UNAVAILABLE, "down")
        rows = [t for t in self.tape if t[1] >= since_ms and (until_ms is None or t[1] <= until_ms)]
        return PublicTrades(venue="x", symbol=SYMBOL, complete=len(rows) <= self.page, trades=[
            PublicTrade(trade_id=i, timestamp_ms=ms, price=D(100), quantity=D(q)) for i, ms, q in rows[:self.page]])

    def candles(self, symbol, since_ms, timeframe="1m", limit=500):
        self.candle_calls += 1
        if self.fail:
            raise VenueCallError("x", ErrorCode.VENUE_UNAVAILABLE, "down")
        return Candles(venue="x", symbol=SYMBOL, timeframe=timeframe, candles=[
            Candle(open_ms=ms, open=D(1), high=D(1), low=D(1), close=D(1), volume=D(v))
            for ms, v in sorted(self.bars.items()) if ms >= since_ms][:limit])


def market(venue: Tape) -> MarketData:
    return MarketData(venues={"x": venue})


def test_traded_volume_sums_the_window_inclusive():
    tape = Tape([("1", 1000, "1"), ("2", 2000, "2"), ("3", 3000, "4"), ("4", 4000, "8")])
    assert market(tape).traded_volume("x", SYMBOL, 2000, 3000) == D(6)


def test_traded_volume_pages_through_a_busy_window_counting_each_trade_once():
    # three trades share a millisecond across a page boundary: the next page starts at that millisecond again
    trades = [(str(i), 1000 + i // 3, "1") for i in range(10)]
    tape = Tape(trades, page=4)
    assert market(tape).traded_volume("x", SYMBOL, 0, 10_000) == D(10)
    assert tape.calls > 1


def test_traded_volume_is_unknown_when_the_tape_is_unavailable():
    assert market(Tape([], fail=True)).traded_volume("x", SYMBOL, 0, 1) is None


def test_volume_profile_is_whole_minutes_before_the_start():
    minute = 60_000
    start = 10 * minute + 30_000  # half a minute into minute 10: minute 10 is not over, so not used
    bars = {7 * minute: "5", 8 * minute: "1", 9 * minute: "2", 10 * minute: "100"}
    profile = market(Tape([], candles=bars)).volume_profile("x", SYMBOL, start, 3 * minute)
    assert profile == (D(5), D(1), D(2))


def test_volume_profile_fills_silent_minutes_and_needs_two_that_traded():
    minute = 60_000
    profile = market(Tape([], candles={7 * minute: "5", 9 * minute: "2"})).volume_profile("x", SYMBOL, 10 * minute,
                                                                                           3 * minute)
    assert profile == (D(5), D(0), D(2))
    assert market(Tape([], candles={9 * minute: "2"})).volume_profile("x", SYMBOL, 10 * minute, 3 * minute) is None
    assert market(Tape([], fail=True)).volume_profile("x", SYMBOL, 10 * minute, 3 * minute) is None


def test_a_learned_profile_is_fetched_once_per_window_but_a_failure_is_asked_again():
    minute = 60_000
    venue = Tape([], candles={7 * minute: "5", 9 * minute: "2", 10 * minute: "3"})
    md = market(venue)
    for _ in range(3):  # three slices of one order
        assert md.volume_profile("x", SYMBOL, 10 * minute, 3 * minute) == (D(5), D(0), D(2))
    assert venue.candle_calls == 1
    venue.fail = True
    assert md.volume_profile("x", SYMBOL, 11 * minute, 3 * minute) is None
    venue.fail = False
    assert md.volume_profile("x", SYMBOL, 11 * minute, 3 * minute) == (D(0), D(2), D(3)) and venue.candle_calls == 3
