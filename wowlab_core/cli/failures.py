"""How the CLI ends: every failure is one line on stderr, and the exit code says which kind.

Exit codes: 0 done, 1 a failure while running, 2 a usage error (a bad option, a bad config, an
unknown engine), 130 interrupted (Ctrl-C, SIGTERM). Errors raised inside task groups arrive
wrapped in (nested) exception groups; the line is made from the most telling error inside,
and an interruption anywhere inside wins. ``WOWLAB_DEBUG=1`` prints the traceback as well.

While the process winds down, threads and objects collected late can still raise (an event
loop's sockets after Ctrl-C, a worker thread abandoned mid-simulation): those get one line
too, or none when the process is already exiting because of an interruption.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import click

from wowlab_core.errors import WowlabError

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def debug_enabled() -> bool:
    """Whether ``WOWLAB_DEBUG`` asks for tracebacks."""
    return os.environ.get("WOWLAB_DEBUG", "").lower() not in ("", "0", "false", "no")


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups, in order; ``exc`` itself otherwise."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def _is_cancellation(exc: BaseException) -> bool:
    # anyio's (asyncio's) cancellation escaping a task group means something interrupted it.
    import asyncio

    return isinstance(exc, asyncio.CancelledError)


def _database_message(exc: BaseException) -> tuple[int, str] | None:
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a core dependency
        return None
    if isinstance(exc, sa_exc.ArgumentError):
        return EXIT_USAGE, f"bad database URL: {str(exc).splitlines()[0]}"
    if isinstance(exc, sa_exc.DBAPIError):
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            return EXIT_RUNTIME, (
                f"the database has no wowlab tables ({reason}): run 'wowlab db upgrade' "
                "with the same database URL"
            )
        return EXIT_RUNTIME, f"cannot use the database: {reason or type(exc.orig).__name__}"
    return None


def describe(exc: BaseException) -> tuple[int, str | None]:
    """The exit code and the one line (None: print nothing) for a failure."""
    found = list(leaves(exc))
    if any(isinstance(e, KeyboardInterrupt) or _is_cancellation(e) for e in found):
        return EXIT_INTERRUPTED, None
    exits = [e for e in found if isinstance(e, SystemExit)]
    if exits:
        code = exits[0].code
        return (code if isinstance(code, int) else EXIT_RUNTIME if code else 0), None
    # Prefer the error that says the most: ours, then click's, then the database's.
    ranked = sorted(
        found,
        key=lambda e: (
            0
            if isinstance(e, WowlabError)
            else 1
            if isinstance(e, click.ClickException)
            else 2
            if _database_message(e)
            else 3
        ),
    )
    first = ranked[0]
    if isinstance(first, WowlabError):
        return first.exit_code, first.message
    if isinstance(first, click.ClickException):
        return first.exit_code, first.format_message()
    database = _database_message(first)
    if database is not None:
        return database
    if isinstance(first, click.Abort):
        cause = first.__cause__ or first.__context__
        if isinstance(cause, KeyboardInterrupt):
            return EXIT_INTERRUPTED, None
        return EXIT_RUNTIME, "stopped (the input ended)"
    if isinstance(first, OSError) and first.strerror:
        where = f": {first.filename}" if first.filename else ""
        return EXIT_RUNTIME, f"{first.strerror}{where}"
    text = str(first).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return EXIT_RUNTIME, (
        f"unexpected {type(first).__name__}{detail} (WOWLAB_DEBUG=1 shows the traceback)"
    )


class CommandUnavailable(click.UsageError):
    """A command that an extra (not installed) or a broken plugin would bring."""


def usage_line(exc: click.UsageError) -> str:
    """A usage error with the command to ask for help, on one line."""
    if isinstance(exc, CommandUnavailable):
        return exc.format_message()
    command = exc.ctx.command_path if exc.ctx is not None else "wowlab"
    message = exc.format_message().strip().replace("\n", " ")
    return f"{message} (see '{command} --help')"


def report_failure(exc: BaseException) -> int:
    """Print the one line for ``exc`` (and with ``WOWLAB_DEBUG`` the traceback); the exit code."""
    message: str | None
    if isinstance(exc, click.UsageError):
        code, message = EXIT_USAGE, usage_line(exc)
    else:
        code, message = describe(exc)
    if debug_enabled() and code != 0:
        traceback.print_exception(exc)
    if message:
        click.echo(f"error: {message}", err=True)
    return code


_interrupted = threading.Event()


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    if debug_enabled():
        sys.__excepthook__(args.exc_type, args.exc_value, args.exc_traceback)
        return
    code, message = describe(args.exc_value)
    if message and code != EXIT_INTERRUPTED and not _interrupted.is_set():
        name = args.thread.name if args.thread is not None else "a thread"
        sys.stderr.write(f"error in {name}: {message}\n")


def _unraisable(args: Any) -> None:
    # "Exception ignored in ...": a socket or loop collected after its event loop closed,
    # which is noise for someone who pressed Ctrl-C. Shown with WOWLAB_DEBUG.
    if debug_enabled():
        sys.__unraisablehook__(args)


def install_quiet_hooks() -> None:
    """One line (or none) for errors in threads and in objects collected at shutdown."""
    threading.excepthook = _thread_failed
    sys.unraisablehook = _unraisable


def ignore_interrupts() -> None:
    """Ignore SIGINT from now on (the process is exiting), if this is the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def mark_interrupted() -> None:
    """The process is stopping because of Ctrl-C: later thread errors are its echo."""
    _interrupted.set()


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "CommandUnavailable",
    "debug_enabled",
    "describe",
    "ignore_interrupts",
    "install_quiet_hooks",
    "leaves",
    "mark_interrupted",
    "report_failure",
    "usage_line",
]
