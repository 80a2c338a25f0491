"""What every execctl command shares: the connection (one ``Api`` per process, from the root options), the
``-o`` option, and the command group that turns failures into exit codes (0 ok, 1 the service refused, with its
JSON error shown; 2 usage, including a configuration that cannot be used; 3 the service is unreachable; 4 a
waiting command's --timeout came first; 130 interrupted)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from execctl import config, output
from execctl.when import parse_moment
from execctl.client import Api, Refused, Unreachable

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3
TIMED_OUT = 4  # a command that waits (orders watch, events tail) reached its --timeout first
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as a shell reports it)

OutputOpt = Annotated[output.Format, typer.Option("--output", "-o", help="table (for people), json (the service's "
                                                  "document, exact numbers) or csv", case_sensitive=False)]


class ExecctlGroup(TyperGroup):
    """Runs a command and answers its failure with the exit code that names it (README, Operator tools)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Refused as exc:
            error = exc.error
            output.error(str(error.get("code", "")), str(error.get("message", "")), error.get("details") or (),
                         exc.status)
            ctx.exit(REFUSED)
        except Unreachable as exc:
            output.err.print(f"[bold red]unreachable[/]: {escape(str(exc))}", highlight=False)
            ctx.exit(UNREACHABLE)
        except config.ConfigProblem as exc:
            output.err.print(f"[bold red]configuration[/]: {escape(str(exc))}", highlight=False)
            ctx.exit(USAGE)


def new_app(help_text: str, cls: type[ExecctlGroup] = ExecctlGroup) -> typer.Typer:
    return typer.Typer(cls=cls, help=help_text, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False, rich_markup_mode=None)


class Session:
    """The root options, resolved into a configuration and a client on first use (once per process)."""

    def __init__(self, **options: str | None) -> None:
        self._options = options
        self._config: config.Config | None = None
        self._api: Api | None = None

    @property
    def config(self) -> config.Config:
        if self._config is None:
            self._config = config.resolve(**self._options)
        return self._config

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.config)
        return self._api


_current: Session | None = None


def begin(session_: Session) -> None:
    """The root command's options for this invocation (a process runs one; a test's CliRunner runs many)."""
    global _current
    _current = session_


def session() -> Session:
    if _current is None:
        raise RuntimeError("no execctl invocation: the root command sets the session")
    return _current


def api() -> Api:
    return session().api


def now_ms() -> int:
    """The wall clock in epoch ms: the one clock of the commands (the pure parts take it as an argument)."""
    return time.time_ns() // 1_000_000


def moment(text: str | None, name: str, now_ms: int) -> int | None:
    """A --since / --until flag as epoch ms (execctl/when.py's forms); a usage error naming the flag otherwise."""
    if text is None:
        return None
    try:
        return parse_moment(text, now_ms)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None
