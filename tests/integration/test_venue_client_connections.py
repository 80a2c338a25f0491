"""VenueClient over a real HTTP server that drops connections without answering: a read is sent once more, a
write is not (its outcome is unknown and is looked up instead), and neither is a read that timed out. Needs no
stack: the server is a local socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.adapters.protocol import ErrorCode, ErrorKind, OrderType, PlaceOrder, Side
from shared.infra.venues import VenueCallError, VenueClient, session

HEALTH = {"status": "ok", "venue": "flaky", "exchange_id": "binance", "markets_loaded": True}


class DropsFirst(BaseHTTPRequestHandler):
    """Closes the connection without a word on the first `drops` requests, then answers /health (after
    `stall_s`)."""

    drops = 1
    stall_s = 0.0
    seen: list[str] = []

    def _answer(self) -> None:
        DropsFirst.seen.append(f"{self.command} {self.path}")
        if self.headers.get("Content-Length"):
            self.rfile.read(int(self.headers["Content-Length"]))
        if DropsFirst.drops > 0:
            DropsFirst.drops -= 1
            self.close_connection = True  # no status line: the client sees the connection end
            return
        time.sleep(DropsFirst.stall_s)
        body = json.dumps(HEALTH).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[str]:
    DropsFirst.drops, DropsFirst.stall_s, DropsFirst.seen = 1, 0.0, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), DropsFirst)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_a_read_on_a_dropped_connection_is_sent_once_more(server):
    client = VenueClient("flaky", server, session())
    assert client.health().status == "ok"
    assert DropsFirst.seen == ["GET /health", "GET /health"]


def test_a_read_dropped_twice_fails_as_retryable_network_error(server):
    DropsFirst.drops = 2
    with pytest.raises(VenueCallError) as err:
        VenueClient("flaky", server, session()).health()
    assert err.value.code is ErrorCode.NETWORK and len(DropsFirst.seen) == 2


def test_a_write_on_a_dropped_connection_is_not_resent_and_its_outcome_is_unknown(server):
    order = PlaceOrder(client_order_id="t-drop-1", symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                       quantity=Decimal("0.1"), price=Decimal("40000"))
    with pytest.raises(VenueCallError) as err:
        VenueClient("flaky", server, session()).place(order)
    assert err.value.code is ErrorCode.TIMEOUT  # may have arrived: looked up by its client order id, not re-sent
    assert DropsFirst.seen == ["POST /orders"]


def test_a_read_that_timed_out_is_not_resent(server):
    DropsFirst.drops, DropsFirst.stall_s = 0, 1.0
    with pytest.raises(VenueCallError) as err:
        VenueClient("flaky", server, session()).health(timeout_s=0.2)
    assert err.value.code is ErrorCode.NETWORK and "ReadTimeout" in str(err.value)
    assert DropsFirst.seen == ["GET /health"]


# ---- an adapter nothing listens for: the connection is refused before anything is sent --------------------
@pytest.fixture
def dead_url() -> str:
    """A loopback port that was free a moment ago: connecting to it is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


ORDER = PlaceOrder(client_order_id="t-refused-1", symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                   quantity=Decimal("0.1"), price=Decimal("40000"))


@pytest.mark.parametrize("call", [
    lambda c: c.health(), lambda c: c.info(), lambda c: c.book("BTC/USDT"), lambda c: c.open_orders(),
    lambda c: c.get("BTC/USDT", client_order_id="x"),
    # Writes too: a connection never made carried nothing, so retrying cannot double anything.
    lambda c: c.place(ORDER), lambda c: c.cancel("BTC/USDT", client_order_id="x"), lambda c: c.cancel_all(),
    lambda c: c.cancel_all_after(60_000),
], ids=["health", "info", "book", "open_orders", "get", "place", "cancel", "cancel_all", "cancel_all_after"])
def test_a_refused_connection_is_a_retryable_network_error_naming_the_venue(dead_url, call):
    with pytest.raises(VenueCallError) as err:
        call(VenueClient("gone", dead_url, session()))
    assert err.value.code is ErrorCode.NETWORK and err.value.kind is ErrorKind.RETRYABLE
    assert err.value.venue == "gone" and "not sent" in str(err.value) and dead_url in str(err.value)


def test_the_adapter_registry_lists_an_unreachable_adapter_as_down(dead_url, server):
    from shared.app.adapters import registry

    entries = registry({"gone": VenueClient("gone", dead_url, session()),
                        "flaky": VenueClient("flaky", server, session())}, None)
    assert [(e["name"], e["healthy"]) for e in entries] == [("gone", False), ("flaky", True)]
    assert "gone: network" in entries[0]["error"]


def test_market_data_leaves_an_unreachable_venue_out_and_names_it(dead_url):
    from shared.app.market_data import MarketData

    failed: dict[str, str] = {}
    market = MarketData(venues={"gone": VenueClient("gone", dead_url, session())})
    assert market.routes({}, failed) == [] and list(failed) == ["gone"]
    failed.clear()
    assert market.snapshot("BTC/USDT", failed=failed).books == {} and list(failed) == ["gone"]
