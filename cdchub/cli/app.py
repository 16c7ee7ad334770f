"""The typer application: the groups' commands, ``-v``, and the one place failures are reported (:mod:`.errors`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cdchub.cli import internal, operate, stack
from cdchub.cli.common import INVOCATION
from cdchub.cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, Failure, one_line, report
from core.logs import configure_logging, silence_native_stderr

#: Commands for a person at a terminal: warnings only (and cdchub's own information) in the log, through rich, and
#: native code's stderr (librdkafka's lines, Bytewax's panics) dropped unless ``-v``.  The others are processes that
#: log every line to their log file.
INTERACTIVE = frozenset({"status", "trace", "replay", "reconcile", "dlq", "snapshot", "doctor", "schemas"})
VERBOSE_FLAGS = ("-v", "--verbose")
# click's exception classes as this typer has them (vendored since typer 0.2x, click's own before)
_CLICK = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError: type[Exception] = _CLICK["UsageError"]
ClickException: type[Exception] = _CLICK["ClickException"]

app = typer.Typer(
    name="cdchub",
    help="Log-based change-data-capture hub: Kingdee K/3 Cloud ⇄ ZOHO CRM, Weaver OA, Huilianyi.\n\n"
         "`cdchub run` sets up and runs everything; the other commands look at, replay and repair what it does.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _everything(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logs, full tracebacks and native messages (Bytewax, librdkafka); "
                                "allowed anywhere on the line.")] = False,
) -> None:
    command = ctx.invoked_subcommand or ""
    INVOCATION.verbose = INVOCATION.verbose or verbose
    INVOCATION.command = command
    configure_logging(INVOCATION.verbose, interactive=command in INTERACTIVE)
    if command in INTERACTIVE and not INVOCATION.verbose:
        # until the process ends: librdkafka's threads and destructors still write while it exits
        silence_native_stderr()


operate.register(app)
stack.register(app)
internal.register(app)


def split_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """``-v``/``--verbose`` may come anywhere before a ``--``: taken out of the line, whatever the command."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a not in VERBOSE_FLAGS] + argv[end:]
    return kept, len(kept) != len(argv)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(argv: list[str] | None = None) -> int:
    """Run one command line; every failure ends here and is reported once (:func:`cdchub.cli.errors.report`)."""
    from core.process import guard_child

    guard_child()
    args, INVOCATION.verbose = split_verbose(list(sys.argv[1:] if argv is None else argv))
    INVOCATION.command = ""
    command = typer.main.get_command(app)
    try:
        result: Any = command.main(args=args, prog_name="cdchub", standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `cdchub` alone: the help (rich prints it itself)
            text = str(exc.format_message())  # type: ignore[attr-defined]
            if text.strip():
                print(text)
            return 0
        where = ctx.command_path if ctx is not None else "cdchub"
        message = one_line(exc.format_message()).replace("Value error, ", "")  # type: ignore[attr-defined]
        _stderr(f"{where}: {message}" + (f" (`{where} --help`)" if ctx is not None else ""))
        return EXIT_USAGE
    except typer.Abort:
        _stderr(Failure("interrupted").line(INVOCATION.command))
        return EXIT_INTERRUPTED
    except ClickException as exc:
        _stderr(f"cdchub {INVOCATION.command}: {one_line(exc.format_message())}")  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except (SystemExit, typer.Exit):
        raise
    except BaseException as exc:
        return report(exc, INVOCATION.command, verbose=INVOCATION.verbose, write=_stderr)
    if isinstance(result, bool) or not isinstance(result, int):
        return 0
    if result == EXIT_INTERRUPTED:  # typer turns a KeyboardInterrupt into this exit code
        _stderr(Failure("interrupted").line(INVOCATION.command))
    return result
