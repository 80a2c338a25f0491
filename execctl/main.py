"""The ``execctl`` command: every operator task of the execution service from a terminal (README, Operator tools).

Each command is one call (or a paged series of calls) of ``/api/v1``, shown with ``-o table|json|csv``; the
exit code says how it went (execctl/common.py). Commands never ask questions: everything is a flag.
"""

from __future__ import annotations

import enum
import inspect
import sys
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from execctl import common, events, output, tca, watch
from execctl.client import Refused
from execctl.common import OutputOpt, api, new_app
from execctl.output import Column, Format
from shared.domain.orders import OrderType, Side, Status, TimeInForce
from shared.infra import exact_json

app = new_app("Operate the execution service: orders, algorithms, venues, the dead man's switch, TCA.")
orders_app = new_app("Place, list, show, watch, modify, cancel, pause and resume orders.")
dms_app = new_app("The dead man's switch: its state, heartbeats, lifting a halt.")
app.add_typer(orders_app, name="orders")
app.add_typer(dms_app, name="dms")
app.add_typer(tca.app, name="tca")
app.add_typer(events.app, name="events")


@app.callback()
def root(
    url: Annotated[Optional[str], typer.Option(help="the API's base URL, e.g. http://127.0.0.1:8080/api/v1 "
                                               "[env EXECCTL_URL]")] = None,
    api_key: Annotated[Optional[str], typer.Option(help="the X-API-Key to send (prefer --api-key-file: a flag "
                                                   "shows in the process list) [env EXECCTL_API_KEY]")] = None,
    api_key_file: Annotated[Optional[str], typer.Option(help="a file holding the key [env EXECCTL_API_KEY_FILE]")] = None,
    profile: Annotated[Optional[str], typer.Option(help="a [NAME] of the profile file [env EXECCTL_PROFILE]")] = None,
    config: Annotated[Optional[str], typer.Option(help="the profile file (default ~/.config/execctl/profiles.toml) "
                                                  "[env EXECCTL_CONFIG]")] = None,
    stack_dir: Annotated[Optional[str], typer.Option(help="a local stack's state directory (default the checkout's "
                                                     ".local) [env EXECCTL_STACK_DIR, LOCALSTACK_STATE]")] = None,
) -> None:
    """Configuration: flags, then environment, then --profile, then the running local stack's env file."""
    common.begin(common.Session(url=url, api_key=api_key, api_key_file=api_key_file, profile=profile,
                                config_file=config, stack_dir=stack_dir))


def main(argv: list[str] | None = None) -> int:
    """The console script: run the command, answer with its exit code."""
    try:
        app(args=argv, prog_name="execctl")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else common.USAGE)
    return common.OK


# ---- values from flags --------------------------------------------------------------------------------------
def _number(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=name) from None
    if not value.is_finite():
        raise typer.BadParameter(f"{text!r} is not a finite number", param_hint=name)
    return value


def _pairs(items: list[str], name: str) -> dict[str, Any]:
    """``k=v`` flags as a dict; each value a JSON value when it reads as one (numbers exact), else the text."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=name)
        try:
            result[key] = exact_json.loads(text)
        except ValueError:
            result[key] = text
    return result


def _body_file(path: str) -> Any:
    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    try:
        return exact_json.loads(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--body") from None


# ---- orders -------------------------------------------------------------------------------------------------
ORDER_COLUMNS = (
    Column("order_id", "order_id", "id"), Column("client_order_id", "client_order_id", "id"),
    Column("strategy", "strategy_id"),
    Column("exchange", "exchange"), Column("symbol", "symbol"), Column("side", "side"), Column("type", "order_type"),
    Column("quantity", "quantity", "num"), Column("price", "price", "num"), Column("status", "status"),
    Column("filled", "filled_quantity", "num"), Column("avg_price", "average_price", "num"),
    Column("algorithm", "algorithm"), Column("parent_id", "parent_id", "id"), Column("created", "created_at", "ms"),
)
FILL_COLUMNS = (
    Column("trade_id", "trade_id", "id"), Column("time", "timestamp", "ms"), Column("quantity", "quantity", "num"),
    Column("price", "price", "num"), Column("fee", "fee", "num"), Column("fee_ccy", "fee_currency"),
    Column("liquidity", "liquidity"),
)
PROGRESS_COLUMNS = (
    Column("filled_pct", "filled_pct", "num"), Column("slices_done", "slices_done", "num"),
    Column("next_slice", "next_slice_at", "ms"), Column("working", "working_quantity", "num"),
    Column("retired_children", "retired_children", "num"), Column("paused", "paused"),
    Column("notes", "notes", read=lambda p: "; ".join(p.get("notes") or ())),
)
CHILD_COLUMNS = (
    Column("slice", "slice", "num"), Column("order_id", "order_id", "id"), Column("exchange", "exchange"),
    Column("status", "status"), Column("quantity", "quantity", "num"), Column("price", "price", "num"),
    Column("filled", "filled_quantity", "num"), Column("avg_price", "average_price", "num"),
    Column("created", "created_at", "ms"),
)


# -o table of a list: what fits a terminal (CSV has every column of ORDER_COLUMNS)
ORDER_TABLE = (*(c for c in ORDER_COLUMNS if c.header not in ("client_order_id", "type", "parent_id", "created")),
               Column("created (UTC)", "created_at", "when"))


def show_order(order: dict[str, Any], fmt: Format) -> None:
    """One order: its fields, its fills, and a parent's progress with its children."""
    extra = []
    if order.get("fills"):
        extra.append(output.table(order["fills"], FILL_COLUMNS, "fills"))
    progress = order.get("progress") or {}
    if progress:
        extra.append(output.table([progress], PROGRESS_COLUMNS, "progress"))
    if progress.get("children"):
        extra.append(output.table(progress["children"], CHILD_COLUMNS, "children"))
    kinds = {"commissions": "text", "tags": "text", "algorithm_params": "text", "next_slice_at": "ms",
             "expire_at": "ms"}
    output.emit_object(order, fmt, f"order {order.get('order_id')}", kinds, extra)


def _order_body(strategy, symbol, side, quantity, price, order_type, exchange, time_in_force, stop_price, post_only,
                reduce_only, expire_at, max_slippage_bps, tag, algorithm, param, client_order_id, signal_id,
                body) -> dict[str, Any]:
    doc: dict[str, Any] = _body_file(body) if body else {}
    if not isinstance(doc, dict):
        raise typer.BadParameter("the body must be a JSON object", param_hint="--body")
    given = {
        "strategy_id": strategy, "symbol": symbol, "side": side and side.value, "exchange": exchange,
        "quantity": quantity and _number(quantity, "--quantity"), "price": price and _number(price, "--price"),
        "order_type": order_type and order_type.value, "time_in_force": time_in_force and time_in_force.value,
        "stop_price": stop_price and _number(stop_price, "--stop-price"),
        "post_only": post_only, "reduce_only": reduce_only, "expire_at": expire_at,
        "max_slippage_bps": max_slippage_bps and _number(max_slippage_bps, "--max-slippage-bps"),
        "algorithm": algorithm, "client_order_id": client_order_id, "signal_id": signal_id,
    }
    doc.update({k: v for k, v in given.items() if v is not None})
    if tag:
        doc["tags"] = {**doc.get("tags", {}), **{k: str(v) for k, v in _pairs(tag, "--tag").items()}}
    if param:
        doc["algorithm_params"] = {**doc.get("algorithm_params", {}), **_pairs(param, "--param")}
    missing = [flag for flag, key in (("--strategy", "strategy_id"), ("--symbol", "symbol"), ("--side", "side"),
                                      ("--quantity", "quantity")) if key not in doc]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (as flags or in --body)")
    # Idempotent by construction: a retried command that names its id cannot make a second order.
    doc.setdefault("client_order_id", f"execctl-{uuid.uuid4().hex[:24]}")
    return doc


class Until(enum.StrEnum):
    working = "working"
    terminal = "terminal"


def place(
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s", help="strategy_id")] = None,
    symbol: Annotated[Optional[str], typer.Option(help="e.g. BTC/USDT")] = None,
    side: Annotated[Optional[Side], typer.Option(case_sensitive=False)] = None,
    quantity: Annotated[Optional[str], typer.Option("--quantity", "-q", help="in the base currency")] = None,
    price: Annotated[Optional[str], typer.Option("--price", "-p", help="the limit price")] = None,
    order_type: Annotated[Optional[OrderType], typer.Option("--type", case_sensitive=False)] = None,
    exchange: Annotated[Optional[str], typer.Option("--exchange", "-x", help="a venue, or smart (the default: "
                                                    "the SmartRouter; other algorithms need a venue)")] = None,
    time_in_force: Annotated[Optional[TimeInForce], typer.Option("--tif", case_sensitive=False)] = None,
    stop_price: Annotated[Optional[str], typer.Option()] = None,
    post_only: Annotated[Optional[bool], typer.Option("--post-only", help="maker only")] = None,
    reduce_only: Annotated[Optional[bool], typer.Option("--reduce-only")] = None,
    expire_at: Annotated[Optional[int], typer.Option(help="GTD expiry, epoch ms")] = None,
    max_slippage_bps: Annotated[Optional[str], typer.Option()] = None,
    tag: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE, repeatable")] = None,
    algorithm: Annotated[Optional[str], typer.Option("--algorithm", "-a", help="twap, vwap, iceberg, pov, smart")] = None,
    param: Annotated[Optional[list[str]], typer.Option(help="an algorithm parameter KEY=VALUE, repeatable "
                                                       "(e.g. --param duration_s=60 --param slices=6)")] = None,
    client_order_id: Annotated[Optional[str], typer.Option(help="your idempotency key (default: a new one, "
                                                           "printed in the answer)")] = None,
    signal_id: Annotated[Optional[str], typer.Option()] = None,
    body: Annotated[Optional[str], typer.Option(help="a JSON order to start from (a file, or - for stdin); "
                                                "flags override its fields")] = None,
    wait_s: Annotated[float, typer.Option(help="how long the service waits for the order (at most 30 s)")] = 5.0,
    until: Annotated[Until, typer.Option(help="wait until it works at the venue, or until it ended",
                                         case_sensitive=False)] = Until.working,
    fmt: OutputOpt = Format.table,
    *, _execute: bool = False,
) -> None:
    order = _order_body(strategy, symbol, side, quantity, price, order_type, exchange, time_in_force, stop_price,
                        post_only, reduce_only, expire_at, max_slippage_bps, tag, algorithm, param, client_order_id,
                        signal_id, body)
    if _execute:
        show_order(api().post("/execute", {"order": order, "wait_s": wait_s, "until": until.value}), fmt)
    else:
        show_order(api().post("/orders", order), fmt)


def _without(func, *names: str):
    """`func` as a command whose flags leave out `names` (one implementation behind submit and execute)."""
    sig = inspect.signature(func, eval_str=True)
    keep = [p for p in sig.parameters.values() if p.name not in names and not p.name.startswith("_")]

    def command(**kwargs):
        return func(**kwargs, _execute="wait_s" not in names)

    command.__signature__ = sig.replace(parameters=keep)
    command.__annotations__ = {p.name: p.annotation for p in keep}
    command.__doc__ = func.__doc__
    return command


submit = _without(place, "wait_s", "until")
submit.__doc__ = "Place an order (POST /orders) and show it as recorded."
execute = _without(place)
execute.__doc__ = ("Place an order and wait for it (POST /execute): until it works at the venue, or --until "
                   "terminal, for at most --wait-s.")
orders_app.command("submit")(submit)
app.command("execute")(execute)

OrderId = Annotated[str, typer.Argument(help="the order_id")]


@orders_app.command("list")
def list_orders(
    status: Annotated[Optional[Status], typer.Option(case_sensitive=False)] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s")] = None,
    symbol: Annotated[Optional[str], typer.Option()] = None,
    exchange: Annotated[Optional[str], typer.Option("--exchange", "-x")] = None,
    parent: Annotated[Optional[str], typer.Option(help="children of this parent order_id")] = None,
    signal_id: Annotated[Optional[str], typer.Option()] = None,
    since: Annotated[Optional[str], typer.Option(help="created at or after: epoch ms, 1h, 30m, 2d ago, "
                                                      "2026-12-04, 2026-12-04T10:00Z")] = None,
    until: Annotated[Optional[str], typer.Option(help="created before (the same forms)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="show at most this many (the rest is announced on stderr)")] = 100,
    all_: Annotated[bool, typer.Option("--all", help="every matching order, page after page")] = False,
    fmt: OutputOpt = Format.table,
) -> None:
    """Orders, newest first, filtered; pages through the service's cursor."""
    now = common.now_ms()
    filters = {"status": status and status.value, "strategy_id": strategy, "symbol": symbol, "exchange": exchange,
               "parent_id": parent, "signal_id": signal_id, "created_after": common.moment(since, "--since", now),
               "created_before": common.moment(until, "--until", now)}
    rows: list[dict[str, Any]] = []
    more = False
    page = min(limit, 500) if not all_ else 500
    for order in api().pages("/orders", "orders", **filters, limit=page):
        if not all_ and len(rows) == limit:
            more = True
            break
        rows.append(order)
    output.emit_rows({"orders": rows, "more": more}, rows, ORDER_TABLE if fmt is Format.table else ORDER_COLUMNS,
                     fmt, f"{len(rows)} orders")
    if more:
        output.err.print(f"more orders match: showing the first {limit}; use --limit N or --all")


@orders_app.command("show")
def show(order_id: OrderId, fmt: OutputOpt = Format.table) -> None:
    """One order with its fills (a parent's with its progress and children)."""
    show_order(api().get(f"/orders/{order_id}"), fmt)


@orders_app.command("cancel")
def cancel(order_id: OrderId, fmt: OutputOpt = Format.table) -> None:
    """Cancel an order (a parent: and its children). The record shows pending_cancel until the venue confirms."""
    show_order(api().delete(f"/orders/{order_id}"), fmt)


@orders_app.command("modify")
def modify(
    order_id: OrderId,
    price: Annotated[Optional[str], typer.Option("--price", "-p")] = None,
    quantity: Annotated[Optional[str], typer.Option("--quantity", "-q")] = None,
    stop_price: Annotated[Optional[str], typer.Option()] = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """Change a working order's price, quantity or stop price."""
    change = {k: _number(v, f"--{k.replace('_', '-')}") for k, v in
              (("price", price), ("quantity", quantity), ("stop_price", stop_price)) if v is not None}
    if not change:
        raise typer.BadParameter("name at least one of --price, --quantity, --stop-price")
    show_order(api().put(f"/orders/{order_id}", change), fmt)


@orders_app.command("pause")
def pause(order_id: OrderId, fmt: OutputOpt = Format.table) -> None:
    """Pause an algorithm parent: no new slice until resumed (working children keep working)."""
    show_order(api().post(f"/orders/{order_id}/pause"), fmt)


@orders_app.command("resume")
def resume(order_id: OrderId, fmt: OutputOpt = Format.table) -> None:
    """Resume a paused algorithm parent."""
    show_order(api().post(f"/orders/{order_id}/resume"), fmt)


orders_app.command("watch")(watch.watch)


# ---- venues, routes, service ----------------------------------------------------------------------------------
@app.command("adapters")
def adapters_cmd(fmt: OutputOpt = Format.table) -> None:
    """Each venue adapter's health, latency and switches (operator key)."""
    doc = api().get("/adapters")
    rows = doc.get("adapters", [])
    keys = sorted({k for row in rows for k in row if not isinstance(row[k], (dict, list))},
                  key=lambda k: (k != "name", k))
    output.emit_rows(doc, rows, [Column(k, k, "ms" if k.endswith("_at") else "text") for k in keys], fmt, "adapters")


ROUTE_COLUMNS = (
    Column("venue", "venue"), Column("symbol", "symbol"), Column("bid", "best_bid", "num"),
    Column("ask", "best_ask", "num"), Column("spread_bps", "spread_bps", "num"), Column("maker", "maker_fee", "num"),
    Column("taker", "taker_fee", "num"), Column("tick", "tick_size", "num"), Column("lot", "lot_size", "num"),
    Column("min_notional", "min_notional", "num"), Column("healthy", "healthy"),
    Column("p50_ms", "latency_ms_p50", "num"),
)


@app.command("routes")
def routes(symbol: Annotated[Optional[str], typer.Option(help="only this symbol")] = None,
           fmt: OutputOpt = Format.table) -> None:
    """Venues x symbols: fees, ticks and lots, adapter health and latency, top of book."""
    doc = api().get("/routes")
    rows = [r for r in doc.get("routes", []) if symbol is None or r.get("symbol") == symbol]
    output.emit_rows(doc if symbol is None else {**doc, "routes": rows}, rows, ROUTE_COLUMNS, fmt, "routes")
    for gone in doc.get("unavailable", []):
        output.err.print(f"unavailable: {gone.get('venue')}: {gone.get('error')}")


@app.command("optimize")
def optimize(
    side: Annotated[Side, typer.Option(case_sensitive=False)],
    symbol: Annotated[str, typer.Option()],
    quantity: Annotated[str, typer.Option("--quantity", "-q")],
    limit_price: Annotated[Optional[str], typer.Option()] = None,
    depth: Annotated[int, typer.Option(min=1, max=500)] = 50,
    fmt: OutputOpt = Format.table,
) -> None:
    """Dry run of the SmartRouter: its allocation across venues vs the best single venue (no order)."""
    body: dict[str, Any] = {"side": side.value, "symbol": symbol, "quantity": _number(quantity, "--quantity"),
                            "depth": depth}
    if limit_price is not None:
        body["limit_price"] = _number(limit_price, "--limit-price")
    doc = api().post("/routes/optimize", body)
    if fmt is not Format.table:
        output.emit_rows(doc, doc["allocation"]["slices"], SLICE_COLUMNS, fmt)  # csv: the allocation's slices
        return
    plans = [{"plan": name, **doc[name]} for name in ("allocation", "best_single_venue", "consolidated_optimum")
             if isinstance(doc.get(name), dict)]
    output.emit_rows(doc, plans, PLAN_COLUMNS, fmt,
                     f"optimize {side.value} {quantity} {symbol}: saves "
                     f"{doc.get('saving_vs_best_single_venue_bps')} bps vs the best single venue")
    output.out.print(output.table(doc["allocation"]["slices"], SLICE_COLUMNS, "allocation"))
    for gone in doc.get("unavailable", []):
        output.err.print(f"unavailable: {gone.get('venue')}: {gone.get('error')}")


PLAN_COLUMNS = (
    Column("plan", "plan"), Column("quantity", "total_quantity", "num"), Column("unallocated", "unallocated", "num"),
    Column("avg_price", "expected_average_price", "num"), Column("total_cost", "total_cost", "num"),
    Column("vs_mid_bps", "cost_vs_mid_bps", "num"),
)
SLICE_COLUMNS = (
    Column("venue", "venue"), Column("quantity", "quantity", "num"), Column("limit_price", "limit_price", "num"),
    Column("avg_price", "expected_average_price", "num"), Column("fee", "expected_fee", "num"),
)


@app.command("health")
def health(fmt: OutputOpt = Format.table) -> None:
    """The service's dependencies, each ok or not, with latency (exit 1 when one is down)."""
    try:
        doc, ok = api().get("/health"), True
    except Refused as exc:
        if not isinstance(exc.body, dict) or "dependencies" not in exc.body:
            raise
        doc, ok = exc.body, False
    rows = [{"dependency": name, **dep} for name, dep in doc.get("dependencies", {}).items()]
    output.emit_rows(doc, rows, [Column("dependency", "dependency"), Column("ok", "ok"),
                                 Column("latency_ms", "latency_ms", "num"), Column("error", "error")],
                     fmt, f"health: {doc.get('status')}")
    if not ok:
        raise typer.Exit(common.REFUSED)


@app.command("metrics")
def metrics(prometheus: Annotated[bool, typer.Option("--prometheus", help="the Prometheus text exposition")] = False,
            fmt: OutputOpt = Format.table) -> None:
    """The service's counters (operator key): a JSON summary, or the Prometheus text with --prometheus."""
    if prometheus:
        sys.stdout.write(api().request("GET", "/metrics", params={"format": "prometheus"}, text=True))
        return
    doc = api().get("/metrics")
    rows = [{"metric": k, "value": v} for k, v in _flatten(doc)]
    output.emit_rows(doc, rows, [Column("metric", "metric"), Column("value", "value", "num")], fmt, "metrics")


def _flatten(doc: Any, prefix: str = ""):
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, doc


@app.command("config")
def show_config(fmt: OutputOpt = Format.table) -> None:
    """Where execctl would send requests and where each setting came from (the key itself is never shown)."""
    output.emit_object(common.session().config.describe(), fmt, "execctl configuration")


# ---- dead man's switch ----------------------------------------------------------------------------------------
SWITCH_COLUMNS = (
    Column("strategy", "strategy_id", read=lambda s: s.get("strategy_id") or "(global)"),
    Column("last_heartbeat", "last_heartbeat_ms", "ms"), Column("timeout_ms", "timeout_ms", "num"),
    Column("deadline", "deadline_ms", "ms"), Column("expired", "expired"), Column("halted_at", "halted_at_ms", "ms"),
    Column("reason", "reason"),
)


@dms_app.command("status")
def dms_status(fmt: OutputOpt = Format.table) -> None:
    """Every dead man's switch: last heartbeat, deadline, expired, halted and why (operator key)."""
    doc = api().get("/heartbeat")
    rows = doc.get("switches", [])
    output.emit_rows(doc, rows, SWITCH_COLUMNS, fmt, "dead man's switches")


@dms_app.command("heartbeat")
def dms_heartbeat(
    strategy: Annotated[Optional[str], typer.Option("--strategy", "-s", help="the strategy (none: the global "
                                                    "switch, which needs a key of every strategy)")] = None,
    timeout_ms: Annotated[int, typer.Option(min=1000, max=3_600_000, help="halt when no heartbeat follows "
                                            "within this")] = 30_000,
    fmt: OutputOpt = Format.table,
) -> None:
    """Send one heartbeat (arms the switch). Stamped with this machine's clock (sent_at_ms)."""
    doc = api().post("/heartbeat", {"strategy_id": strategy, "timeout_ms": timeout_ms, "sent_at_ms": common.now_ms()})
    output.emit_object(doc, fmt, "heartbeat", {"deadline_ms": "ms", "last_heartbeat_ms": "ms", "halted_at_ms": "ms"})


@dms_app.command("enable")
def dms_enable(strategy: Annotated[str, typer.Argument(help="the strategy_id to enable again")],
               fmt: OutputOpt = Format.table) -> None:
    """Lift a strategy's halt (operator key): its orders are accepted again."""
    output.emit_object(api().post(f"/strategies/{strategy}/enable"), fmt, f"strategy {strategy}",
                       {"deadline_ms": "ms", "last_heartbeat_ms": "ms", "halted_at_ms": "ms"})
