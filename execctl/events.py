"""``execctl events tail``: the ``order-events`` topic as it happens, through a subscription of its own.

The subscription is made for this run (``execctl-tail-<random>``, with message ordering, so an order's events
arrive in sequence) and deleted when the command ends, however it ends (``--count`` reached, ``--timeout``,
Ctrl-C, an error). A subscription sees only what is published after it exists: earlier events cannot be seen.
It talks to Pub/Sub with google-cloud-pubsub's own client: to the local stack's emulator when the configuration
names one (``Config.pubsub_emulator_host``), else to Google Cloud with application default credentials.

Filters: ``--status`` is also set as the subscription's filter on the ``status`` attribute every order event
carries (Pub/Sub then does not deliver the rest; the emulator accepts filters but does not apply them), and every
filter is applied here as well: ``--order`` (the order's own events and its children's, by ``parent_id``) and
``--strategy`` are not attributes. An event seen twice (Pub/Sub delivers at least once) is shown once, by
``(order_id, sequence)``.

Exit codes: 0 when ``--count`` events were shown, or without ``--count`` when ``--timeout`` ended the tail;
4 (``TIMED_OUT``) when ``--timeout`` passed before ``--count`` events; 130 on Ctrl-C; 3 when Pub/Sub cannot be
reached; 1 when it refuses (a missing topic, no permission).
"""

from __future__ import annotations

import csv
import enum
import queue
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from execctl import common, config, output
from execctl.client import Unreachable
from execctl.common import INTERRUPTED, TIMED_OUT, OutputOpt, new_app
from execctl.output import Column, Format
from shared.domain.orders import Status
from shared.infra import exact_json

ORPHAN_TTL_S = 86_400  # Pub/Sub's expiration policy: a subscription nobody pulled for this long is deleted
CALL_TIMEOUT_S = 10.0  # one Pub/Sub administrative call (create, delete) at most, its retries included
# Pub/Sub's own retry of an administrative call (the default gives up only after 60 s), bounded by CALL_TIMEOUT_S
ADMIN_RETRY = gretry.Retry(predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded),
                           initial=0.25, maximum=2.0, timeout=CALL_TIMEOUT_S)

EventStatus = enum.StrEnum("EventStatus", {s.value: s.value for s in Status} | {"halted": "halted",
                                                                                "resumed": "resumed"})

app = new_app("Order events as they happen (the order-events topic).")


# ---- pure: which events, and how they look ---------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    order_ids: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()

    def matches(self, event: Mapping[str, Any]) -> bool:
        """An order event of one of the orders (or of their children), strategies and statuses asked for."""
        if self.order_ids and not ({event.get("order_id"), event.get("parent_id")} & self.order_ids):
            return False
        if self.strategies and event.get("strategy_id") not in self.strategies:
            return False
        return not self.statuses or event.get("status") in self.statuses

    def subscription_filter(self) -> str:
        """The Pub/Sub filter on attributes for what can be filtered there ('' when nothing can)."""
        if not self.statuses:
            return ""
        return " OR ".join(f'attributes.status = "{s}"' for s in sorted(self.statuses))


def decode(data: bytes) -> dict[str, Any] | None:
    """A message's event (numbers exact), or None when it is not a JSON object."""
    try:
        event = exact_json.loads(data)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class Seen:
    """Drops a repeated delivery: an order's event is one per (order_id, sequence); others are kept as they come."""

    def __init__(self) -> None:
        self._keys: set[tuple[str, int]] = set()

    def first(self, event: Mapping[str, Any]) -> bool:
        if event.get("order_id") is None or not isinstance(event.get("sequence"), int):
            return True
        key = (event["order_id"], event["sequence"])
        if key in self._keys:
            return False
        self._keys.add(key)
        return True


EVENT_COLUMNS = (
    Column("time", "timestamp", "ms"), Column("order_id", "order_id"), Column("seq", "sequence", "num"),
    Column("status", "status"), Column("strategy", "strategy_id"), Column("exchange", "exchange"),
    Column("symbol", "symbol"), Column("side", "side"), Column("quantity", "quantity", "num"),
    Column("filled", "filled_quantity", "num"), Column("avg_price", "average_price", "num"),
    Column("fill_qty", "last_fill.quantity", "num"), Column("fill_price", "last_fill.price", "num"),
    Column("algorithm", "algorithm"), Column("parent_id", "parent_id"),
    Column("reason", "reason", read=lambda e: e.get("reason") or e.get("type")),
)
# -o table: fewer columns, each its own width, so rows printed one by one line up (wider than the terminal: kept)
_BY_HEADER = {c.header: c for c in EVENT_COLUMNS}
_LAST_FILL = Column("last_fill", "last_fill", read=lambda e: e.get("last_fill") and
                    f"{e['last_fill'].get('quantity')} @ {e['last_fill'].get('price')}")
TABLE_COLUMNS = tuple((_LAST_FILL if h == "last_fill" else _BY_HEADER[h], width) for h, width in (
    ("time", 23), ("order_id", 28), ("seq", 3), ("status", 16), ("strategy", 12), ("exchange", 8), ("symbol", 9),
    ("side", 4), ("filled", 10), ("quantity", 10), ("avg_price", 18), ("last_fill", 24), ("parent_id", 28),
    ("reason", 40)))


class Printer:
    """Events as they arrive: table rows (aligned, a header first), JSON lines (the message as sent), CSV rows."""

    def __init__(self, fmt: Format) -> None:
        self.fmt, self._first = fmt, True
        self.columns = EVENT_COLUMNS
        self._rows = Console(width=sum(w + 2 for _, w in TABLE_COLUMNS), highlight=False)  # stdout, wide enough
        self._writer = csv.writer(sys.stdout, lineterminator="\n") if fmt is Format.csv else None
        if self._writer is not None:
            self._writer.writerow([c.header for c in self.columns])
            sys.stdout.flush()

    def print(self, event: Mapping[str, Any]) -> None:
        if self.fmt is Format.json:
            output.emit_json(event)
            return
        if self._writer is not None:
            self._writer.writerow([output.csv_cell(c.raw(event)) for c in self.columns])
            sys.stdout.flush()
            return
        row = Table(box=None, show_header=self._first, header_style="bold", pad_edge=False)
        for c, width in TABLE_COLUMNS:
            row.add_column(c.header, justify="right" if c.kind == "num" else "left", width=width, no_wrap=True,
                           overflow="ellipsis")
        row.add_row(*(c.shown(event) for c, _ in TABLE_COLUMNS))
        self._rows.print(row)
        self._first = False


# ---- Pub/Sub ---------------------------------------------------------------------------------------------------
def subscriber_for(cfg: config.Config):
    """google-cloud-pubsub's subscriber: to the emulator the configuration names (plain gRPC, no credentials), else
    to Google Cloud (application default credentials)."""
    from google.cloud import pubsub_v1

    if cfg.pubsub_emulator_host:
        import grpc
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        channel = grpc.insecure_channel(cfg.pubsub_emulator_host)
        return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    return pubsub_v1.SubscriberClient()


@contextmanager
def temporary_subscription(subscriber, project: str, topic: str, filter_: str = "") -> Iterator[str]:
    """A subscription of our own on `topic` for the duration of the block, deleted afterwards (also on Ctrl-C)."""
    path = subscriber.subscription_path(project, f"execctl-tail-{uuid.uuid4().hex[:12]}")
    # A run killed outright (SIGKILL, a lost machine) cannot delete it: Pub/Sub does, after a day unused (its least).
    request = {"name": path, "topic": f"projects/{project}/topics/{topic}", "enable_message_ordering": True,
               "ack_deadline_seconds": 10, "expiration_policy": {"ttl": {"seconds": ORPHAN_TTL_S}}}
    if filter_:
        request["filter"] = filter_
    subscriber.create_subscription(request=request, retry=ADMIN_RETRY, timeout=CALL_TIMEOUT_S)
    try:
        yield path
    finally:
        try:
            subscriber.delete_subscription(request={"subscription": path}, retry=ADMIN_RETRY,
                                           timeout=CALL_TIMEOUT_S)
        except gexc.GoogleAPIError as exc:  # said, never hidden: it would otherwise be left behind
            output.err.print(f"[bold yellow]warning[/]: subscription {escape(path)} not deleted: "
                             f"{escape(str(exc))}", highlight=False)


def tail_events(subscriber, path: str, filters: Filters, show: Callable[[Mapping[str, Any]], None], *,
                count: int | None, timeout_s: float | None,
                monotonic: Callable[[], float] = time.monotonic) -> int:
    """Stream-pull `path` and show each matching event once; the exit code (module docstring)."""
    arrived: queue.Queue = queue.Queue()

    def received(message) -> None:
        arrived.put(message.data)
        message.ack()

    stream = subscriber.subscribe(path, callback=received)
    seen, shown = Seen(), 0
    deadline = None if timeout_s is None else monotonic() + timeout_s
    try:
        while count is None or shown < count:
            wait = 0.5 if deadline is None else min(0.5, deadline - monotonic())
            if wait <= 0:
                return TIMED_OUT if count is not None else common.OK
            try:
                data = arrived.get(timeout=wait)
            except queue.Empty:
                if stream.done():  # the stream ended on its own: an error (raised by result())
                    stream.result()
                continue
            event = decode(data)
            if event is None:
                output.err.print(f"skipped a message that is not a JSON event: {escape(repr(data[:80]))}")
                continue
            if filters.matches(event) and seen.first(event):
                show(event)
                shown += 1
        return common.OK
    finally:
        stream.cancel()
        try:
            stream.result(timeout=CALL_TIMEOUT_S)
        except Exception:  # cancelled, or the error already raised above
            pass


def _raise_for(exc: gexc.GoogleAPIError, where: str) -> None:
    """Pub/Sub's failure as execctl's: no answer is Unreachable (exit 3); a refusal is shown, exit 1."""
    if isinstance(exc, (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)):
        raise Unreachable(f"Pub/Sub {where}: {type(exc).__name__}: {exc}") from None
    code = getattr(exc, "grpc_status_code", None)
    output.error(getattr(code, "name", type(exc).__name__).lower(), f"Pub/Sub {where}: {getattr(exc, 'message', exc)}")
    raise typer.Exit(common.REFUSED)


@app.command("tail")
def tail(
    order: Annotated[Optional[list[str]], typer.Option("--order", help="only this order's events and its "
                                                       "children's (repeatable)")] = None,
    strategy: Annotated[Optional[list[str]], typer.Option("--strategy", "-s", help="only this strategy_id "
                                                          "(repeatable)")] = None,
    status: Annotated[Optional[list[EventStatus]], typer.Option(case_sensitive=False, help="only events of this "
                                                                "status (repeatable)")] = None,
    count: Annotated[Optional[int], typer.Option(min=1, help="end after this many events (exit 0)")] = None,
    timeout: Annotated[Optional[float], typer.Option(min=0.0, help="end after this many seconds: exit 0 without "
                                                     "--count, 4 when fewer than --count events came")] = None,
    fmt: OutputOpt = Format.table,
) -> None:
    """Follow the order-events topic: each matching event as it arrives (table rows, JSON lines as published, or
    CSV rows), until --count events or --timeout seconds (or Ctrl-C).

    Only events published after this command subscribed can be seen (it makes a subscription of its own, deleted
    when it ends; the line "subscribed: ..." on stderr says from when). Exit 0 when --count events came, or without
    --count at --timeout; 4 when --timeout came before --count events; 130 on Ctrl-C; 3 when Pub/Sub is
    unreachable; 1 when Pub/Sub refuses (say, no such topic).
    """
    cfg = common.session().config
    if not cfg.project:
        raise config.ConfigProblem("events tail needs the Google Cloud project: set GOOGLE_CLOUD_PROJECT, a profile's "
                                   "project, or use a local stack")
    filters = Filters(frozenset(order or ()), frozenset(strategy or ()),
                      frozenset(s.value for s in status or ()))
    printer = Printer(fmt)
    subscriber = subscriber_for(cfg)
    code = common.OK
    try:
        with temporary_subscription(subscriber, cfg.project, cfg.order_events_topic,
                                    filters.subscription_filter()) as path:
            output.err.print(f"subscribed: {path} (events from now on)", markup=False, highlight=False)
            code = tail_events(subscriber, path, filters, printer.print, count=count, timeout_s=timeout)
    except KeyboardInterrupt:
        code = INTERRUPTED
    except gexc.GoogleAPIError as exc:
        _raise_for(exc, f"topic {cfg.order_events_topic}")
    finally:
        subscriber.close()
    if code == TIMED_OUT:
        output.err.print(f"[bold yellow]timed out[/]: fewer than {count} events in {timeout} s", highlight=False)
    raise typer.Exit(code)
