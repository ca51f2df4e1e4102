"""`batchrun gc`: remove from the state directory what nothing needs any more."""

from __future__ import annotations

import re
from typing import Any

import click

from . import (
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    lock_option,
    open_workspace,
    partition_option,
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class Duration(click.ParamType):
    """`0`, `90s`, `30m`, `12h`, `7d` → seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if not match:
            self.fail(f"{value!r} is not a duration; write 0, 90s, 30m, 12h or 7d", param, ctx)
        return float(match[1]) * _UNITS[match[2] or "s"]


@click.command()
@click.option("--keep", type=Duration(), default="0", show_default=True, metavar="DURATION",
              help="Spare the files of batches collected less than this long ago "
                   "(e.g. 12h, 7d).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
@lock_option
@partition_option
@click.pass_obj
@handle_errors
def gc(state: State, keep: float, dry_run: bool, as_json: bool) -> None:
    """Remove shards, downloaded files and emulator copies that nothing needs any more.

    Never touched: the result cache (every answer, by request key), and every file of a
    batch not yet collected. Removed: the shard and the output/error files of each
    collected batch (its answers are cached), shards no batch records, files a killed
    run left half-written, the emulator's copies of collected batches' files, and the
    free pages of state.db. Every command that holds the state lock does the same on its
    way out for batches collected over a day ago; `batchrun status` says what a gc
    would free now.

    \b
    Examples:
      batchrun gc                      everything that is no longer needed
      batchrun gc --keep 7d            spare what was collected this week
      batchrun gc --dry-run --json     how much it would free, by kind
    """
    from .. import tables

    with open_workspace(state, (), no_progress=True) as ws:
        with ws.locked("gc", tidy=False):
            problems: list[str] = []
            if dry_run:
                garbage = ws.garbage(keep)
            else:
                garbage, problems = ws.tidy(keep)
    if as_json:
        emit_json({"dry_run": dry_run, **garbage.as_json(), "problems": problems})
    else:
        echo_lines(tables.gc_lines(garbage, problems, dry_run=dry_run))
