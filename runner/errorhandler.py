"""The one place errors become output and exit codes.

A user's error (`BatchrunError`) is one line naming the file, line and key, then a hint;
Ctrl-C says nothing is lost and exits 130. Anything else is a bug in batchrun: its
traceback goes to a log file under the state directory (`.batchrun/logs/`), and the
message says where, so a report can carry it. Tracebacks are never shown for user errors,
except with --debug.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .diagnose import environment
from .errors import BatchrunError

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141   # 128 + SIGPIPE, what a shell reports for a writer whose reader left


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def report(exc: BatchrunError, *, as_json: bool, debug: bool) -> None:
    """Print a user's error: `Error: file:line: key: what` and a hint (or JSON)."""
    if debug:
        traceback.print_exc()
    if as_json:
        emit_json({"error": exc.to_json()})
    else:
        click.echo(f"Error: {exc.one_line()}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command: its errors become messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = click.get_current_context().obj
        state.json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except BatchrunError as exc:
            report(exc, as_json=state.json, debug=state.debug)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`batchrun show … | head`): what it wanted, it has. Point
            # stdout at /dev/null so the interpreter's last flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except KeyboardInterrupt:
            click.echo("Interrupted. Nothing is lost: rerun the command to resume.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            known = environment(exc, _state_dir(state.directory))
            if known is not None:   # a full disk, a damaged ledger: the user's to fix
                report(known, as_json=state.json, debug=state.debug)
                sys.exit(known.exit_code)
            log = write_bug_log(state.directory, exc)
            what = (str(exc).splitlines() or [""])[0]
            report(BatchrunError(
                f"internal error ({type(exc).__name__}: {what}); this is a bug in batchrun",
                hint=f"the traceback is in {log}; please report it with that file"),
                as_json=state.json, debug=state.debug)
            sys.exit(1)

    return wrapper


def write_bug_log(directory: Path, exc: BaseException) -> Path:
    """The traceback of an unexpected error, in the project's state directory when it can
    be written there, else in the system's temporary directory."""
    import tempfile

    text = "".join(traceback.format_exception(exc))
    name = time.strftime("bug-%Y%m%dT%H%M%S.log", time.gmtime())
    for folder in (_state_dir(directory) / "logs", Path(tempfile.gettempdir()) / "batchrun"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"batchrun {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return Path("(unwritable: no log)")


def _state_dir(directory: Path) -> Path:
    try:
        from .project import load_project
        return load_project(directory).state_dir
    except Exception:   # the project file itself may be what is broken
        return directory / ".batchrun"
