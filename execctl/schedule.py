"""An algorithm parent's schedule as the service's own planner defines it (shared/domain/algorithms), from the
parent's JSON: the planner's view of it (``parent_view``), its deadline, and what is due by a moment (``plan_of``).
Shared by ``orders watch`` (planned by now) and the TCA chart (the schedule line)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from execctl.output import dec
from shared.domain.algorithms import InvalidParams, ParentView, planner_for
from shared.domain.algorithms.twap import ScheduledPlanner, TwapPlanner
from shared.domain.market import MarketSnapshot
from shared.domain.orders import Side, TimeInForce, expiry_ms

PLANNED_PLACES = Decimal("1E-12")


@dataclass(frozen=True)
class Plan:
    """What the algorithm's schedule has due by `now_ms` (None: not known here, `why` says so), how many slices
    the schedule has (the catch-up not counted) and when its window ends."""

    planned: Decimal | None
    why: str | None = None
    slices: int | None = None
    end_ms: int | None = None


def order_expiry(order: Mapping[str, Any]) -> int | None:
    """The order's own deadline (GTD, DAY) by the domain's rule."""
    return expiry_ms(SimpleNamespace(time_in_force=TimeInForce(order["time_in_force"]), expire_at=order.get("expire_at"),
                                     created_at=order["created_at"]))


def parent_view(order: Mapping[str, Any], filled: Decimal = Decimal(0)) -> ParentView:
    """The planner's view of a parent, from its JSON (GET /orders/{id})."""
    return ParentView(client_order_id=order["client_order_id"], side=Side(order["side"]), symbol=order["symbol"],
                      quantity=dec(order["quantity"]), filled_quantity=filled, working_quantity=Decimal(0),
                      limit_price=dec(order.get("price")), start_ms=order["created_at"], end_ms=order_expiry(order),
                      slice_index=order.get("slices_done") or 0, arrival_mid=dec(order.get("arrival_mid")),
                      params=order.get("algorithm_params") or {})


def plan_of(order: Mapping[str, Any], now_ms: int, filled: Decimal = Decimal(0)) -> Plan:
    """The parent's schedule at `now_ms`, derived as the service's planner defines it."""
    algorithm = order.get("algorithm")
    given = (order.get("progress") or {}).get("schedule_planned")
    try:
        planner = planner_for(algorithm, order.get("algorithm_params") or {})
    except (InvalidParams, ValueError) as exc:
        why = None if given is not None else f"no plan: {algorithm} ({exc})"
        return Plan(_given(given), why, None, order_expiry(order))
    if not isinstance(planner, ScheduledPlanner):
        why = {"pov": "POV's plan follows the market's traded volume, which the service does not expose"}.get(
            algorithm, f"{algorithm} has no time schedule")
        return Plan(_given(given), None if given is not None else why, None, order_expiry(order))
    view = parent_view(order, filled)
    schedule = planner.schedule(view)
    if given is not None:
        return Plan(_given(given), None, schedule.n, schedule.end)
    if not isinstance(planner, TwapPlanner) and getattr(planner.params, "profile", None) is None:
        return Plan(None, "VWAP follows the venue's volume profile, which the service does not expose",
                    schedule.n, schedule.end)
    no_market = MarketSnapshot(at_ms=now_ms, books={}, terms={})  # TWAP's (and a given profile's) plan needs none
    planned = planner.planned(view, no_market, now_ms)
    return Plan(_shown(planned) if planned is not None else Decimal(0), None, schedule.n, schedule.end)


def _shown(value: Decimal) -> Decimal:
    """A planned quantity as a person reads it: quantity * k / n to 12 places, trailing zeros dropped (a third of
    0.3 is 0.1, not 0.0999...)."""
    rounded = value.quantize(PLANNED_PLACES).normalize()
    return rounded if rounded.as_tuple().exponent <= 0 else rounded.quantize(Decimal(1))


def _given(value: Any) -> Decimal | None:
    """The service's own plan (progress.schedule_planned), shown as a planned quantity is."""
    return None if value is None else _shown(dec(value))
