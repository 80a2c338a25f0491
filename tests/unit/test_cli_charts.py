"""execctl's TCA charts: the series each panel draws, built from the service's documents (real ones, captured from
a local stack: a direct buy that filled, a 4-slice TWAP parent and its children, the aggregate of both), match
what those documents say; what is missing is left out with its reason; and the PNGs have their fixed size."""

from __future__ import annotations

import copy
import struct
from decimal import Decimal as D
from pathlib import Path

import pytest

from execctl import charts
from execctl.charts_png import ORDER_PX, REPORT_PX, render_order, render_report
from execctl.output import dec
from shared.infra import exact_json

DOCS = exact_json.loads((Path(__file__).parent / "fixtures" / "cli_tca_documents.json").read_bytes())


@pytest.fixture
def docs():
    return copy.deepcopy(DOCS)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk; fails unless the file is a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    return struct.unpack(">II", head[16:24])


# ---- one order: the price panel ------------------------------------------------------------------------------
def test_the_price_panel_draws_the_orders_own_fills_and_the_mids_the_service_measured(docs):
    tca, order = docs["direct"]["tca"], docs["direct"]["order"]
    chart = charts.order_chart(tca, order)
    p = chart.price
    assert p.t0 == order["created_at"] and p.quote_currency == "USDT"
    assert list(zip(p.fill_times, p.fill_quantities, p.fill_prices)) == \
        [(f["timestamp_ms"], D(f["quantity"]), D(f["price"])) for f in tca["tca"]["fills"]]
    assert [(f["timestamp"], D(f["quantity"]), D(f["price"])) for f in order["fills"]] == \
        list(zip(p.fill_times, p.fill_quantities, p.fill_prices))  # the order's own record agrees
    assert p.fill_venues == ["binance"]
    assert (p.decision_mid, p.arrival_mid) == (D(tca["facts"]["decision_mid"]), D(tca["facts"]["arrival_mid"]))
    assert p.interval_vwap == dec(tca["tca"]["interval_vwap"]) and p.window == tuple(tca["tca"]["window"])
    # every mid drawn is one the service sampled, at its time: nothing interpolated
    samples = {(m["at"], D(m["mid"]), m["source"]) for m in tca["market"]["mids"]}
    assert set(zip(p.mid_times, p.mid_values, p.mid_sources)) == samples
    assert (order["created_at"], p.decision_mid, "decision") in samples
    fill = tca["market"]["fills"][0]
    assert (fill["timestamp"] + 1000, D(fill["mids"]["1"]), "markout_1s") in samples


def test_a_parents_fills_are_every_childs_each_with_its_childs_venue(docs):
    tca, order, children = docs["twap"]["tca"], docs["twap"]["order"], docs["twap"]["children"]
    p = charts.order_chart(tca, order, children).price
    by_child = {c["order_id"]: c for c in children}
    assert len(p.fill_times) == len(tca["tca"]["fills"]) == 4
    assert p.fill_venues == [by_child[f["order_id"]]["exchange"] for f in tca["market"]["fills"]]
    assert sum(p.fill_quantities) == D(order["filled_quantity"]) == sum(D(c["filled_quantity"]) for c in children)
    assert p.fill_times == sorted(p.fill_times)


# ---- the schedule ---------------------------------------------------------------------------------------------
def test_a_direct_order_has_no_schedule_panel_and_says_why(docs):
    chart = charts.order_chart(docs["direct"]["tca"], docs["direct"]["order"])
    assert chart.schedule is None and "direct order" in chart.missing["schedule"]


def test_a_twaps_schedule_is_its_fills_its_children_and_the_twap_plan(docs):
    tca, order, children = docs["twap"]["tca"], docs["twap"]["order"], docs["twap"]["children"]
    s = charts.order_chart(tca, order, children).schedule
    assert s.children == 4 and s.quantity == D("0.04")
    assert s.filled_cumulative == [D(0), D("0.01"), D("0.02"), D("0.03"), D("0.04")]
    assert s.filled_times[1:] == [f["timestamp_ms"] for f in tca["tca"]["fills"]]
    assert s.sent_cumulative[-1] == D(order["filled_quantity"])  # every child ended filled: nothing working
    assert max(s.sent_cumulative) == sum(D(c["quantity"]) for c in children)
    # duration_s 20 in 4 slices: a quarter due at the start and every 5 s, all of it from the catch-up on
    start = order["created_at"]
    assert s.planned_times[:4] == [start, start + 5000, start + 10000, start + 15000]
    assert s.planned_cumulative == [D("0.01"), D("0.02"), D("0.03"), D("0.04"), D("0.04")]
    assert s.deviation_max == D(tca["tca"]["schedule_deviation_max"])


def test_a_child_that_ended_unfilled_is_no_longer_counted_as_sent(docs):
    tca, order, children = docs["twap"]["tca"], docs["twap"]["order"], docs["twap"]["children"]
    first = min(children, key=lambda c: c["created_at"])
    first.update(filled_quantity="0.004", status="expired")
    s = charts.schedule_series(tca, children, order["created_at"])
    ended = s.sent_times.index(first["terminal_at"], 1)
    assert s.sent_cumulative[ended] - s.sent_cumulative[ended - 1] == D("-0.006")


def test_only_twap_has_a_planned_schedule(docs):
    order = {**docs["twap"]["order"], "algorithm": "vwap"}
    assert charts.twap_plan(order) == ([], [])


# ---- markouts -------------------------------------------------------------------------------------------------
def _with_fills(doc: dict, fills: list[tuple[str, str, dict[str, str]]], order_markouts: dict[str, str | None]):
    doc["tca"]["fills"] = [{"quantity": q, "price": p, "markouts_bps": m} for q, p, m in fills]
    doc["tca"]["markouts_bps"] = order_markouts
    return doc


def test_the_markout_band_is_the_fills_weighted_mean_plus_minus_two_standard_errors(docs):
    # three fills of equal notional (1 x 100): at +1 s markouts 1, 2, 3 bps: mean 2, variance 2/3, n_eff 3
    doc = _with_fills(docs["direct"]["tca"], [("1", "100", {"1": "1", "10": "4"}), ("1", "100", {"1": "2"}),
                                              ("1", "100", {"1": "3"})],
                      {"-10": None, "1": "2", "10": None, "60": None, "300": None})
    m = charts.markout_series(doc)
    assert m.horizons == [1] and m.order_bps == [D(2)] and m.fills_with == [3]
    half = D("1.96") * (D(2) / 9).sqrt()  # sqrt(variance / n_eff) = sqrt((2/3) / 3)
    assert (m.band_low[0], m.band_high[0]) == (D(2) - half, D(2) + half)
    assert m.pending == [-10, 10, 60, 300]  # +10 s: one fill has it, the order's figure is not in yet
    assert sorted(zip(m.fill_horizons, m.fill_bps)) == [(1, D(1)), (1, D(2)), (1, D(3)), (10, D(4))]


def test_a_heavier_fill_pulls_the_band_and_one_fill_has_none(docs):
    doc = _with_fills(docs["direct"]["tca"], [("3", "100", {"1": "0"}), ("1", "100", {"1": "4"})],
                      {"-10": None, "1": "1", "10": None, "60": None, "300": None})
    low, high = charts.markout_series(doc).band_low[0], charts.markout_series(doc).band_high[0]
    assert (low + high) / 2 == D(1)  # (3*0 + 1*4) / 4
    single = charts.markout_series(_with_fills(docs["direct"]["tca"], [("1", "100", {"1": "5"})],
                                               {"1": "5"}))
    assert single.band_low == [None] and single.band_high == [None]


def test_the_real_orders_markouts_are_the_services_and_the_band_holds_the_fills_mean(docs):
    tca = docs["twap"]["tca"]
    m = charts.markout_series(tca)
    expected = {int(h): D(v) for h, v in tca["tca"]["markouts_bps"].items() if v is not None}
    assert dict(zip(m.horizons, m.order_bps)) == expected
    for h, low, high, value in zip(m.horizons, m.band_low, m.band_high, m.order_bps):
        assert low <= value <= high, h


def test_without_any_markout_the_panel_is_left_out(docs):
    doc = _with_fills(docs["direct"]["tca"], [("1", "100", {})], {h: None for h in ("-10", "1", "10", "60", "300")})
    chart = charts.order_chart(doc, docs["direct"]["order"])
    assert chart.markouts is None and chart.missing["markouts"] == "no markout sampled yet"


# ---- the shortfall --------------------------------------------------------------------------------------------
def test_the_waterfall_is_the_shortfalls_parts_stacked_to_its_total(docs):
    tca = docs["twap"]["tca"]
    w = charts.order_chart(tca, docs["twap"]["order"], docs["twap"]["children"]).waterfall
    sf = tca["tca"]["shortfall"]
    assert w.labels == ["delay", "execution", "opportunity", "fees"]
    assert w.values == [D(sf[f"{p}_bps"]) for p in w.labels]
    assert sum(w.values) == w.total == D(sf["total_bps"]) and w.total_cash == D(sf["total"])
    # each bar starts where the previous one ended (a negative one hangs below it)
    assert w.bottoms == [D(sf["delay_bps"]), D(sf["delay_bps"]) + D(sf["execution_bps"]),
                         D(sf["delay_bps"]) + D(sf["execution_bps"]),
                         D(sf["delay_bps"]) + D(sf["execution_bps"])]


def test_without_a_shortfall_the_panel_names_the_reason(docs):
    doc = docs["direct"]["tca"]
    doc["tca"]["shortfall"] = None
    doc["tca"]["flags"] = ["no_decision_price", "liquidity_unknown"]
    chart = charts.order_chart(doc, docs["direct"]["order"])
    assert chart.waterfall is None and chart.missing["shortfall"] == "not computed (no_decision_price)"


def test_an_order_without_fills_draws_no_price_panel(docs):
    doc = docs["direct"]["tca"]
    doc["market"] = {"fills": [], "mids": doc["market"]["mids"][:1]}
    doc["tca"]["fills"] = []
    chart = charts.order_chart(doc, docs["direct"]["order"])
    assert chart.missing["price"] == "no fills yet" and chart.price.mid_sources == ["decision"]


# ---- the aggregate --------------------------------------------------------------------------------------------
def test_the_report_draws_each_groups_costs_and_its_shortfall_waterfall(docs):
    doc = docs["report"]
    chart = charts.report_chart(doc)
    assert chart.costs.groups == ["DIRECT · binance", "twap · binance"] and chart.costs.counts == [1, 1]
    for i, g in enumerate(doc["groups"]):
        for cost in charts.REPORT_COSTS:
            assert chart.costs.mean[cost][i] == D(g["costs"][cost]["mean"])
            assert chart.costs.p90[cost][i] == D(g["costs"][cost]["p90"])
        w = chart.waterfalls[chart.costs.groups[i]]
        assert w.values == [D(g["costs"][f"shortfall_{p}_bps"]["mean"]) for p in charts.SHORTFALL_PARTS]
        assert abs(sum(w.values) - w.total) <= 4 * D("0.000001") and w.total == D(g["costs"]["shortfall_bps"]["mean"])
    assert chart.markouts.bps[1][1] == D(doc["groups"][1]["markout_curve"]["1"])


def test_a_group_whose_older_rows_lack_the_parts_gets_no_waterfall(docs):
    doc = docs["report"]
    doc["groups"][0]["costs"]["shortfall_delay_bps"]["n"] = 0
    chart = charts.report_chart(doc)
    assert list(chart.waterfalls) == ["twap · binance"]


def test_an_empty_window_draws_nothing_and_says_so(docs):
    chart = charts.report_chart({**docs["report"], "groups": [], "orders": 0})
    assert chart.costs is None and not chart.waterfalls and chart.missing["costs"] == "no ended order in the window"


# ---- rendering -------------------------------------------------------------------------------------------------
def test_the_order_charts_render_to_pngs_of_the_fixed_size(docs, tmp_path):
    direct = render_order(charts.order_chart(docs["direct"]["tca"], docs["direct"]["order"]), tmp_path / "d.png")
    twap = render_order(charts.order_chart(docs["twap"]["tca"], docs["twap"]["order"], docs["twap"]["children"]),
                        tmp_path / "t.png")
    assert png_size(direct) == png_size(twap) == ORDER_PX == (1400, 1800)
    assert direct.read_bytes() != twap.read_bytes()


def test_a_chart_of_missing_panels_still_renders(docs, tmp_path):
    doc = docs["direct"]["tca"]
    doc["market"], doc["tca"]["fills"], doc["tca"]["shortfall"] = {"fills": [], "mids": []}, [], None
    path = render_order(charts.order_chart(doc, docs["direct"]["order"]), tmp_path / "empty.png")
    assert png_size(path) == ORDER_PX


def test_the_report_renders_to_a_png_of_the_fixed_size(docs, tmp_path):
    path = render_report(charts.report_chart(docs["report"]), tmp_path / "r.png")
    empty = render_report(charts.report_chart({**docs["report"], "groups": []}), tmp_path / "e.png")
    assert png_size(path) == png_size(empty) == REPORT_PX == (1400, 1500)
