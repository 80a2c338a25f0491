"""execctl tca against the real stack (README, Operator tools: TCA and charts): real orders filled by the simulated
venues, their TCA as JSON, table and CSV, their charts as PNGs whose series are the orders' fills as the venue
itself reports them, the aggregate and its chart, and the exit codes."""

from __future__ import annotations

import csv
import io
import time
import uuid
from decimal import Decimal as D

import pytest

from execctl import charts
from execctl.charts_png import ORDER_PX, REPORT_PX
from shared.infra import exact_json
from tests.integration.conftest import wait_for
from tests.integration.venue_truth import Venue
from tests.unit.test_cli_charts import png_size

STRATEGY = "cli-tca-it"


@pytest.fixture(scope="module")
def venues(stack) -> dict[str, Venue]:
    return {name: Venue(name, url) for name, url in stack.simulators.items()}


@pytest.fixture(scope="module")
def started() -> int:
    return time.time_ns() // 1_000_000 - 1_000


def _place(api, venues, **extra) -> str:
    """A buy limited 1% above binance's ask (it fills on the simulator); its order_id."""
    _, ask = venues["binance"].touch()
    body = {"strategy_id": STRATEGY, "client_order_id": f"clitca-{uuid.uuid4().hex[:10]}", "exchange": "binance",
            "symbol": "BTC/USDT", "side": "buy", "order_type": "limit",
            "price": str((ask * D("1.01")).quantize(D("0.01"))), **extra}
    resp = api("POST", "/orders", body)
    assert resp.status_code == 201, resp.text
    return resp.json()["order_id"]


def _filled(api, order_id: str) -> dict:
    order = wait_for(api, order_id, lambda o: o["status"] in ("filled", "canceled", "rejected", "expired"), 90)
    assert order["status"] == "filled", order
    return order


@pytest.fixture(scope="module")
def direct(api, venues, started) -> dict:
    return _filled(api, _place(api, venues, quantity="0.01"))


@pytest.fixture(scope="module")
def twap(api, venues, started) -> dict:
    return _filled(api, _place(api, venues, quantity="0.03", algorithm="twap",
                               algorithm_params={"duration_s": 15, "slices": 3}))


def _children(api, parent_id: str) -> list[dict]:
    return api("GET", "/orders", params={"parent_id": parent_id, "limit": 500}).json()["orders"]


def _venue_trades(venues, orders: list[dict]) -> list[tuple[str, D, D]]:
    """(venue, quantity, price) of every trade the venues report for these venue orders, in time order."""
    trades = [(o["exchange"], t) for o in orders for t in venues[o["exchange"]].trades(o["venue_order_id"])]
    return [(v, D(t["qty"]), D(t["price"])) for v, t in sorted(trades, key=lambda vt: (vt[1]["time"], vt[1]["id"]))]


def test_a_direct_orders_tca_as_json_table_and_csv(execctl, api, venues, direct):
    order_id = direct["order_id"]
    doc = execctl("tca", order_id, "-o", "json").json()
    assert doc["order_id"] == order_id and doc["status"] == "filled" and doc["algorithm"] is None
    assert D(doc["tca"]["filled_quantity"]) == D("0.01") and doc["tca"]["arrival_cost_bps"] is not None
    served = api("GET", f"/orders/{order_id}/tca").json()  # the service's document (markouts may land between)
    assert (doc["facts"], doc["market"]["fills"][0]["trade_id"]) == (served["facts"],
                                                                      served["market"]["fills"][0]["trade_id"])
    assert [f["venue"] for f in doc["market"]["fills"]] == ["binance"] * len(doc["tca"]["fills"])

    table = execctl("tca", order_id).stdout
    assert order_id in table and "arrival cost (bps)" in table and "shortfall total (bps)" in table
    assert doc["tca"]["arrival_cost_bps"] in table

    rows = list(csv.DictReader(io.StringIO(execctl("tca", order_id, "-o", "csv").stdout)))
    assert [(r["venue"], D(r["quantity"]), D(r["price"])) for r in rows] == _venue_trades(venues, [direct])
    assert {"eff_spread_bps", "markout_+1s_bps", "markout_+300s_bps"} <= set(rows[0])


def test_a_direct_orders_chart_is_a_png_drawn_from_its_fills(execctl, venues, direct, tmp_path):
    path = tmp_path / "direct.png"
    result = execctl("tca", direct["order_id"], "--chart", str(path), "-o", "json")
    assert f"chart written: {path}" in result.stderr and "schedule: no data (a direct order" in result.stderr
    assert png_size(path) == ORDER_PX
    chart = charts.order_chart(result.json(), direct)
    p = chart.price
    assert list(zip(p.fill_venues, p.fill_quantities, p.fill_prices)) == _venue_trades(venues, [direct])
    assert p.fill_times == [f["timestamp"] for f in direct["fills"]]
    assert p.arrival_mid is not None and "arrival" in p.mid_sources and "decision" in p.mid_sources
    assert chart.schedule is None and chart.waterfall is not None
    assert sum(chart.waterfall.values) == chart.waterfall.total


def test_a_twap_parents_chart_has_its_childrens_fills_and_its_schedule(execctl, api, venues, twap, tmp_path):
    path = tmp_path / "twap.png"
    result = execctl("tca", twap["order_id"], "--chart", str(path), "-o", "json")
    assert png_size(path) == ORDER_PX
    children = _children(api, twap["order_id"])
    assert len(children) >= 3
    chart = charts.order_chart(result.json(), twap, children)
    p = chart.price
    assert sorted(zip(p.fill_venues, p.fill_quantities, p.fill_prices)) == \
        sorted(_venue_trades(venues, children))  # every child's trades, as the venue reports them
    assert sum(p.fill_quantities) == D(twap["filled_quantity"]) == D("0.03")
    s = chart.schedule
    assert s is not None and s.filled_cumulative[-1] == D("0.03") and s.children == len(children)
    # the service's planner: 0.03 x (k + 1) / 3 (in Decimal: 1/3 is not exact, hence the quantize)
    assert [q.quantize(D("1E-12")) for q in s.planned_cumulative[:3]] == [D("0.01"), D("0.02"), D("0.03")]
    assert s.planned_times[:3] == [twap["created_at"] + k * 5000 for k in range(3)]
    assert s.deviation_max is not None


def test_the_report_groups_the_orders_and_draws_them(execctl, direct, twap, started, tmp_path):
    def groups() -> dict[tuple[str, str], dict]:
        doc = execctl("tca", "report", "--group-by", "algorithm,venue", "--since", str(started), "-o", "json").json()
        return {(g["key"]["algorithm"], g["key"]["venue"]): g for g in doc["groups"]}

    deadline = time.monotonic() + 90  # each row is written by the tca function when its order ended
    got = groups()
    while not {("DIRECT", "binance"), ("twap", "binance")} <= set(got):
        assert time.monotonic() < deadline, f"rows not aggregated after 90 s: {sorted(got)}"
        time.sleep(1)
        got = groups()
    assert got[("twap", "binance")]["costs"]["shortfall_execution_bps"]["n"] >= 1

    path = tmp_path / "report.png"
    result = execctl("tca", "report", "--since", "1h", "--chart", str(path), "-o", "json")
    assert png_size(path) == REPORT_PX
    chart = charts.report_chart(result.json())
    assert {"DIRECT · binance", "twap · binance"} <= set(chart.waterfalls)
    for w in chart.waterfalls.values():
        assert abs(sum(w.values) - w.total) <= 4 * D("0.000001")

    rows = list(csv.DictReader(io.StringIO(execctl("tca", "report", "--since", "1h", "-o", "csv").stdout)))
    assert len(rows) == len(result.json()["groups"])
    assert {"algorithm", "venue", "shortfall_delay_bps_mean"} <= set(rows[0])
    table = execctl("tca", "report", "--since", "1h").stdout
    assert "TCA of" in table and "implementation shortfall" in table and "twap" in table


def test_exit_codes_say_what_went_wrong(execctl, tmp_path):
    unknown = execctl("tca", "ord_000000000000000000000000", expect=1)
    assert "not_found" in unknown.stderr
    assert "--since" in execctl("tca", "report", "--since", "yesterday", expect=2).stderr
    execctl("tca", "report", "--group-by", "venue,colour", expect=1)  # the service refuses it (422)
    execctl("tca", "ord_000000000000000000000000", "--chart", str(tmp_path / "x.jpg"), expect=2)
    assert not (tmp_path / "x.jpg").exists()
    assert exact_json.loads(execctl("tca", "report", "--since", "1m", "--until", "now", "-o", "json").stdout)["until"]
