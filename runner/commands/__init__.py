"""The commands of the `batchrun` CLI, one module each, and what they share.

A command parses its options, makes one call into the flow (a `Workspace` stage, a
report), and prints the result as text or, with --json, as stable JSON from views.py.
Heavy libraries (the openai SDK, qdrant-client) load only when a command needs them: the
workspace opens each edge on first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from ..errorhandler import emit_json, handle_errors

if TYPE_CHECKING:
    from ..project import ProjectContext
    from ..workspace import Options, Workspace

__all__ = ["State", "emit_json", "echo_lines", "handle_errors", "json_option",
           "lock_option", "open_workspace", "partition_option", "paths_argument",
           "progress_option", "project_of"]

EXIT_PENDING = 2
EXIT_FAILED_RECORDS = 3


@dataclass
class State:
    """What the `batchrun` group passes every command."""

    directory: Path
    debug: bool
    json: bool = False
    lock_timeout: float = 0.0
    partition: str | None = None     # --partition I/N, as given


def echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


strict_option = click.option(
    "--strict", is_flag=True, help="A point that cannot be sent (its template fails, its text "
    "is not Unicode, its request is too big) is an error.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON (same exit codes).")
paths_argument = click.argument("paths", nargs=-1, type=click.Path())


def progress_option(fn: Callable) -> Callable:
    return click.option("--no-progress", is_flag=True,
                        help="Plain log lines instead of live progress bars.")(fn)


def lock_option(fn: Callable) -> Callable:
    """--lock-timeout, for the commands that change the state directory."""
    def remember(ctx: click.Context, _param: click.Parameter, value: float) -> float:
        state = ctx.find_object(State)   # made by the group (absent when a test parses alone)
        if state is not None:
            state.lock_timeout = value
        return value
    return click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0,
                        metavar="SECONDS", expose_value=False, callback=remember,
                        help="Wait this long for another batchrun on the same state "
                             "directory (default: fail at once).")(fn)


def partition_option(fn: Callable) -> Callable:
    """--partition I/N (or $BATCHRUN_PARTITION), for the commands that read a job's points
    or its state: this runner's share of every job (docs/scale.md)."""
    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        state = ctx.find_object(State)
        if state is not None and value:
            state.partition = value
    return click.option("--partition", metavar="I/N", envvar="BATCHRUN_PARTITION",
                        expose_value=False, callback=remember,
                        help="Work on partition I of N only: the points whose id falls in "
                             "Qdrant's slice I of N, with state of its own in "
                             "<state_dir>/partition-I-of-N (one runner each; docs/scale.md)."
                        )(fn)


def project_of(state: State, project: ProjectContext | None = None) -> ProjectContext:
    """The project a command works in (loaded from its directory unless given), narrowed
    to the runner's partition when it has one."""
    import dataclasses

    from ..project import Partition, load_project

    project = project or load_project(state.directory)
    if state.partition and project.partition is None:
        project = dataclasses.replace(project, partition=Partition.parse(state.partition))
    return project


@contextlib.contextmanager
def open_workspace(state: State, paths: tuple[str, ...], options: Options | None = None, *,
                   no_progress: bool = False, project: ProjectContext | None = None,
                   jobs: list[Any] | None = None) -> Iterator[Workspace]:
    """The workspace of one command: the project, its jobs (named by `paths`), progress on
    stderr; closed (progress stopped, Qdrant and the ledger released) however it ends."""
    from ..jobs import load_jobs
    from ..lanes import open_lanes
    from ..progress import reporter
    from ..workspace import Options

    project = project_of(state, project)
    if jobs is None:
        jobs = load_jobs(list(paths), project, state.directory)
    live = False if (no_progress or state.json) else None
    options = options or Options()
    options.lock_timeout = state.lock_timeout
    # One workspace per provider answering these jobs, behind one interface (lanes.py).
    ws = cast("Workspace", open_lanes(project, jobs, reporter(live=live), options))
    try:
        yield ws
    finally:
        ws.progress.close()
        ws.close()
