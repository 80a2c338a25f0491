"""One definition of the order vocabulary: the adapter wire contract uses the domain's enums and rules, and the
simulated venue (Binance's own rules) accepts every client order id the service can send."""

import string

from shared.adapters import protocol
from shared.domain import orders
from shared.simulator import engine


def test_the_wire_uses_the_domains_side_order_type_and_rules():
    assert protocol.Side is orders.Side and protocol.OrderType is orders.OrderType
    assert protocol.CLIENT_ORDER_ID_PATTERN == orders.CLIENT_ORDER_ID.pattern
    assert protocol.SYMBOL_PATTERN == orders.SYMBOL.pattern


def test_the_wires_time_in_force_is_what_venues_execute_spelled_as_the_domain():
    assert [t.value for t in protocol.TimeInForce] == ["GTC", "IOC", "FOK"]
    assert {t.value for t in protocol.TimeInForce} < {t.value for t in orders.TimeInForce}
    assert protocol.TimeInForce(orders.TimeInForce.IOC) is protocol.TimeInForce.IOC


def test_every_client_id_the_service_may_send_the_simulated_venue_accepts():
    ours, venue = orders.CLIENT_ORDER_ID, engine._CLIENT_ID
    for char in string.printable:
        if ours.match(char):
            assert venue.match(char), repr(char)
    assert ours.match("a" * 36) and venue.match("a" * 36) and not ours.match("a" * 37)
    for derived in (orders.venue_client_id_for("s", "c"), orders.replacement_client_order_id("x-1", 3),
                    orders.client_order_id_for_signal("s", "sig")):
        assert ours.match(derived) and venue.match(derived)
