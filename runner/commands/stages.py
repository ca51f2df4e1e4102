"""The four stages of apply, one command each, for people who want to step through:
`prepare` (render shards), `submit` (create batches), `status` (watch them), `collect`
(download, validate, write back) — and `cancel`."""

from __future__ import annotations

import time

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
    paths_argument,
    progress_option,
    strict_option,
)


@click.command()
@paths_argument
@strict_option
@progress_option
@json_option
@lock_option
@partition_option
@click.pass_obj
@handle_errors
def prepare(state: State, paths: tuple[str, ...], strict: bool, no_progress: bool,
            as_json: bool) -> None:
    """Stage 1: render pending requests into content-hashed JSONL shards. Sends nothing.

    Writes results already in the cache, packs everything else into
    .batchrun/artifacts/shards/<sha256>.jsonl (.batchrun/emulator/… for the
    emulator), prints each shard's path and records them for `submit`.
    The four stages (prepare, submit, status, collect) do what apply does in one go.

    \b
    Examples:
      batchrun prepare jobs/tags.yaml      prints each shard's path
      head -n 1 SHARD_PATH                 look at a request before you pay
    """
    from .. import tables
    from ..workspace import Options

    with open_workspace(state, paths, Options(strict=strict), no_progress=no_progress) as ws:
        with ws.locked("prepare"):
            budget = ws.budget()
            plans = {job.name: ws.prepare(job, budget) for job in ws.jobs}
        if as_json:
            emit_json(tables.prepare_json(ws, plans))
        else:
            echo_lines(tables.prepare_lines(ws, plans))


@click.command()
@paths_argument
@json_option
@lock_option
@partition_option
@click.pass_obj
@handle_errors
def submit(state: State, paths: tuple[str, ...], as_json: bool) -> None:
    """Stage 2: upload prepared shards and create their batches (exactly once).

    Batches already created by an earlier, interrupted run are adopted, not paid twice.

    \b
    Examples:
      batchrun submit
      batchrun submit jobs/tags.yaml --json | jq '.batches[].batch_id'
    """
    from .. import tables

    with open_workspace(state, paths, no_progress=True) as ws:
        with ws.locked("submit"):
            adopted = ws.adopt()
            created = ws.submit(ws.jobs)
        if as_json:
            emit_json(tables.submit_json(ws, created, adopted))
        else:
            echo_lines(tables.submit_lines(ws, created, adopted))


@click.command()
@paths_argument
@click.option("--wait", is_flag=True, help="Poll until every batch has finished.")
@progress_option
@json_option
@lock_option
@partition_option
@click.pass_obj
@handle_errors
def collect(state: State, paths: tuple[str, ...], wait: bool, no_progress: bool,
            as_json: bool) -> None:
    """Stage 4: download finished batches, validate results, write them to Qdrant.

    Both output and error files are downloaded; each answer is validated against the
    output schema, cached by request key and written with its stamp. Failed requests are
    left for the next apply to retry (or reported, when they cannot be).

    \b
    Examples:
      batchrun collect                 what has finished so far
      batchrun collect --wait          until every batch has finished
    """
    from .. import tables

    with open_workspace(state, paths, no_progress=no_progress) as ws:
        with ws.locked("collect"):
            ws.adopt()
            collected = ws.collect(wait=wait)
            plans = ws.write_back()
        if as_json:
            emit_json(tables.collect_json(collected, plans))
        else:
            echo_lines(tables.collect_lines(plans))


@click.command()
@paths_argument
@click.option("--watch", is_flag=True, help="Refresh every poll interval until all finish.")
@json_option
@partition_option
@click.pass_obj
@handle_errors
def status(state: State, paths: tuple[str, ...], watch: bool, as_json: bool) -> None:
    """Stage 3: batches in flight and their progress (reads the API, changes nothing).

    \b
    Columns: job, batch id, state, requests done/total, age, expires in.

    \b
    Examples:
      batchrun status
      batchrun status --watch          refresh until all have finished
    """
    from .. import tables
    from ..records import TERMINAL

    with open_workspace(state, paths, no_progress=True) as ws:
        while True:
            rows = tables.status_rows(ws.open_batches(), time.time())
            garbage = ws.garbage(keep=0)
            if as_json:
                emit_json({"batches": rows, "failures": tables.failure_rows(ws),
                           "gc": garbage.as_json()})
            else:
                echo_lines([*tables.status_lines(rows, ws), *tables.gc_status_lines(garbage)])
            if not watch or all(row["status"] in TERMINAL for row in rows):
                return   # nothing left that could change
            time.sleep(ws.api.poll_interval)


@click.command()
@paths_argument
@json_option
@lock_option
@partition_option
@click.pass_obj
@handle_errors
def cancel(state: State, paths: tuple[str, ...], as_json: bool) -> None:
    """Cancel the batches in flight for these jobs (finished lines are kept).

    A later collect (or apply) keeps what the batches finished; apply resubmits the rest
    unless the job is removed.

    \b
    Examples:
      batchrun cancel jobs/tags.yaml
    """
    with open_workspace(state, paths, no_progress=True) as ws:
        with ws.locked("cancel"):
            cancelled, problems = ws.cancel()
    if as_json:
        emit_json({"cancelled": cancelled, "not_cancelled": problems})
        return
    echo_lines([f"cancelling {batch_id}" for batch_id in cancelled]
               + [f"not cancelled: {problem}" for problem in problems]
               + [f"{len(cancelled)} batch{'es' * (len(cancelled) != 1)} cancelling; "
                  "`batchrun collect` keeps what they finished."])
