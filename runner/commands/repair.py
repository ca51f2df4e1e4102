"""`batchrun repair`: rebuild a damaged or lost ledger from the provider."""

from __future__ import annotations

import click

from . import (
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    lock_option,
    open_workspace,
    paths_argument,
)


@click.command()
@paths_argument
@click.option("--lookback", "lookback_hours", type=click.FloatRange(min=1), default=72.0,
              show_default=True, metavar="HOURS",
              help="Adopt finished batches created up to this many hours ago.")
@json_option
@lock_option
@click.pass_obj
@handle_errors
def repair(state: State, paths: tuple[str, ...], lookback_hours: float, as_json: bool) -> None:
    """Rebuild the ledger (state.db) from the provider when it is damaged or lost.

    A damaged state.db is moved aside (state.db.damaged-<time>: nothing is deleted),
    the answers still readable in it are copied over, and every batch the provider has
    for these jobs is adopted, so that the next apply collects them instead of paying
    again. An intact ledger is kept; batches it lacks are adopted.

    \b
    Examples:
      batchrun repair                    after "the ledger is damaged"
      batchrun repair --lookback 168     adopt finished batches of the last week too
      batchrun repair && batchrun apply
    """
    from ..repair import repair as rebuild
    from ..repair import repaired_json, repaired_lines

    with open_workspace(state, paths, no_progress=True) as ws:
        with ws.locked("repair"):
            done = rebuild(ws, lookback_hours=lookback_hours)
    if as_json:
        emit_json(repaired_json(done))
    else:
        echo_lines(repaired_lines(done))
