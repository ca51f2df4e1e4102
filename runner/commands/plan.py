"""`batchrun plan`: what apply would do, and what it would cost."""

from __future__ import annotations

import sys

import click

from . import (
    EXIT_PENDING,
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    open_workspace,
    partition_option,
    paths_argument,
    progress_option,
)


@click.command()
@paths_argument
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing is to do, 2 when work is pending, 1 on error.")
@progress_option
@json_option
@partition_option
@click.pass_obj
@handle_errors
def plan(state: State, paths: tuple[str, ...], detailed_exitcode: bool, no_progress: bool,
         as_json: bool) -> None:
    """Show what apply would do, and what it would cost. Spends nothing.

    \b
    Examples:
      batchrun plan
      batchrun plan jobs/tags.yaml --detailed-exitcode   # for CI: 2 means work pending
    """
    from .. import views

    with open_workspace(state, paths, no_progress=no_progress) as ws:
        plans = ws.plan()
        failing = [job for job in ws.jobs if plans[job.name].render_errors]
        if as_json and not failing:
            emit_json(views.plan_json(ws, plans))
        elif not as_json:
            echo_lines(views.plan_lines(ws, plans))
        for job in failing:   # points that cannot be rendered are an error, as in apply
            plans[job.name].raise_render_errors(job)
    if detailed_exitcode and any(not p.done for p in plans.values()):
        sys.exit(EXIT_PENDING)
