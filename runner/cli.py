"""The `batchrun` command line: options in, one call, results out.

Every command takes job files or folders (default: jobs/), --json for machine-readable
output with the same exit codes, and reports user errors as one line naming the file,
line and key. Exit codes: 0 success, 1 error, 2 (plan --detailed-exitcode) work pending,
3 (apply) finished with failed records, 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__, views
from .apply import apply as run_apply
from .ledger import TERMINAL
from .workspace import Options, Workspace
from .batchfile import check_file
from .costs import cost_report, manifest_file
from .demo import ensure_project, init as init_project, seed, with_emulator
from .errors import BatchrunError
from .emulator.command import emulator_command
from .pack import SHARDS
from .progress import reporter
from .jobs import load_jobs
from .project import ProjectContext, load_project

EXIT_PENDING = 2
EXIT_FAILED_RECORDS = 3


class State:
    def __init__(self, directory: Path, debug: bool):
        self.directory = directory
        self.debug = debug
        self.json = False
        self.lock_timeout = 0.0


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def handle_errors(fn: Callable) -> Callable:
    """The one place errors become output and exit codes: a user's error is one line (and
    a hint); anything unexpected is said to be a bug in batchrun, traceback with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state: State = click.get_current_context().obj
        state.json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except BatchrunError as exc:
            _report_error(state, exc)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted. Nothing is lost: rerun the command to resume.", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            what = (str(exc).splitlines() or [""])[0]
            _report_error(state, BatchrunError(
                f"internal error ({type(exc).__name__}: {what}); this is a bug in batchrun",
                hint="rerun with --debug for the traceback, and please report it"))
            sys.exit(1)

    return wrapper


def _report_error(state: State, exc: BatchrunError) -> None:
    if state.debug:
        traceback.print_exc()
    if state.json:
        _emit({"error": exc.to_json()})
    else:
        click.echo(f"Error: {exc.one_line()}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)


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


def _workspace(state: State, paths: tuple[str, ...], options: Options | None = None, *,
               no_progress: bool = False, project: ProjectContext | None = None) -> Workspace:
    project = project or load_project(state.directory)
    jobs = load_jobs(list(paths), project, state.directory)
    live = False if (no_progress or state.json) else None
    options = options or Options()
    options.lock_timeout = state.lock_timeout
    return Workspace(project, jobs, reporter(live=live), options)


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchrun")
@click.option("-C", "--directory", type=click.Path(file_okay=False, exists=True),
              default=".", help="Run as if started in this directory (the project root).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, directory: str, debug: bool) -> None:
    """batchrun: make-like LLM batch jobs over a Qdrant collection.

    Job specs (YAML, in jobs/) say which points to read, how to turn each into a
    request, and where the answer goes. `batchrun apply` sends only what changed,
    through the OpenAI Batch API, and writes the results back into Qdrant.

    \b
    Quick start:
      batchrun demo                 try it on bundled videos, for free
      batchrun plan                 what apply would send, and its cost
      batchrun apply                do it
    """
    ctx.obj = State(Path(directory).resolve(), debug)


@cli.command()
@paths_argument
@click.option("--no-wait", is_flag=True, help="Return once batches are submitted; a later "
              "apply collects them (for CI).")
@click.option("--max-cost", type=float, metavar="USD", help="Refuse to submit when the "
              "estimated cost of this run exceeds USD.")
@click.option("--retry-failed", is_flag=True, help="Send again requests that failed for good.")
@click.option("--force", is_flag=True, help="Ignore stamps and the cache: resend everything "
              "selected (costs money). Batches already in flight are awaited, not resent.")
@lock_option
@progress_option
@json_option
@click.pass_obj
@handle_errors
def apply(state: State, paths: tuple[str, ...], no_wait: bool, max_cost: float | None,
          retry_failed: bool, force: bool, no_progress: bool,
          as_json: bool) -> None:
    """Bring the collection up to date: send what changed, write the results.

    \b
    Examples:
      batchrun apply                      every job in jobs/
      batchrun apply jobs/tags.yaml       one job
      batchrun apply --no-wait            submit and return (CI); rerun to collect
      batchrun apply --max-cost 5         refuse if the estimate exceeds $5
    """
    options = Options(wait=not no_wait, max_cost=max_cost, retry_failed=retry_failed,
                      force=force)
    ws = _workspace(state, paths, options, no_progress=no_progress)
    try:
        with ws.locked("apply"):
            outcome = run_apply(ws)
        if as_json:
            _emit(views.apply_json(ws, outcome))
        else:
            for line in views.apply_lines(ws, outcome):
                click.echo(line)
    finally:
        ws.progress.close()
        ws.close()
    if outcome.stalled:
        if not as_json:
            _report_error(state, BatchrunError(
                f"apply stopped with {outcome.in_flight:,} points it could neither send nor "
                "await", hint="rerun apply; if it stops here again, `batchrun status` and "
                "`batchrun plan` say what they wait for (please report it)"))
        sys.exit(1)
    if outcome.refused:   # a job refused by its budget is an error, though the others ran
        if not as_json:
            for error in outcome.refused.values():
                _report_error(state, error)
        sys.exit(1)
    if outcome.failed:
        sys.exit(EXIT_FAILED_RECORDS)


@cli.command()
@paths_argument
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing is to do, 2 when work is pending, 1 on error.")
@progress_option
@json_option
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
    ws = _workspace(state, paths, no_progress=no_progress)
    try:
        plans = ws.plan()
        failing = [job for job in ws.jobs if plans[job.name].render_errors]
        if as_json and not failing:
            _emit(views.plan_json(ws, plans))
        elif not as_json:
            _echo_lines(views.plan_lines(ws, plans))
        for job in failing:   # points that cannot be rendered are an error, as in apply
            plans[job.name].raise_render_errors(job)
    finally:
        ws.progress.close()
        ws.close()
    if detailed_exitcode and any(not p.done for p in plans.values()):
        sys.exit(EXIT_PENDING)


@cli.command()
@paths_argument
@progress_option
@json_option
@lock_option
@click.pass_obj
@handle_errors
def prepare(state: State, paths: tuple[str, ...], no_progress: bool, as_json: bool) -> None:
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
    ws = _workspace(state, paths, no_progress=no_progress)
    try:
        with ws.locked("prepare"):
            budget = ws.budget()
            plans = {job.name: ws.prepare(job, budget) for job in ws.jobs}
        shards = [(name, s) for name, plan in plans.items() for s in plan.shards]
        if as_json:
            _emit({"jobs": {n: views.job_counts(p) for n, p in plans.items()},
                   "shards": [{"job": n, "sha256": s.sha, "requests": s.requests,
                               "bytes": s.bytes, "path": str(ws.ledger.artifacts.path(SHARDS, s.sha))}
                              for n, s in shards]})
        else:
            for name, shard in shards:
                click.echo(f"{name}: {ws.ledger.artifacts.path(SHARDS, shard.sha)} "
                           f"({shard.requests:,} requests, {shard.bytes:,} bytes)")
            click.echo(f"Prepared {len(shards)} shard{'s' * (len(shards) != 1)}; "
                       "`batchrun submit` sends them.")
    finally:
        ws.progress.close()
        ws.close()


@cli.command()
@paths_argument
@json_option
@lock_option
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
    ws = _workspace(state, paths, no_progress=True)
    try:
        with ws.locked("submit"):
            adopted = ws.adopt()
            created = ws.submit(ws.jobs)
        rows = [r for r in ws.ledger.batches(open_only=True) if r.batch_id]
        if as_json:
            _emit({"submitted": created, "adopted": adopted,
                   "batches": [{"job": r.job, "batch_id": r.batch_id,
                                "status": r.status, "requests": r.requests} for r in rows]})
        else:
            click.echo(f"Submitted {created} batch{'es' * (created != 1)}"
                       + (f", adopted {adopted}" if adopted else "")
                       + f"; {len(rows)} in flight. `batchrun status` follows them.")
    finally:
        ws.close()


@cli.command()
@paths_argument
@click.option("--wait", is_flag=True, help="Poll until every batch has finished.")
@progress_option
@json_option
@lock_option
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
    ws = _workspace(state, paths, no_progress=no_progress)
    try:
        with ws.locked("collect"):
            ws.adopt()
            collected = ws.collect(wait=wait)
            plans = ws.write_back()
        if as_json:
            _emit({"collected": [{"batch_id": c.batch_id, "job": c.job, "status": c.status,
                                  "lines": dict(c.seen)} for c in collected],
                   "jobs": {n: views.job_counts(p) for n, p in plans.items()}})
        else:
            for name, plan in plans.items():
                click.echo(f"{name}: {plan.cached:,} written, {plan.in_flight:,} in flight, "
                           f"{plan.pending:,} not yet sent, {plan.failed:,} failed")
    finally:
        ws.progress.close()
        ws.close()


@cli.command()
@paths_argument
@click.option("--watch", is_flag=True, help="Refresh every poll interval until all finish.")
@json_option
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
    ws = _workspace(state, paths, no_progress=True)
    try:
        while True:
            rows = views.status_rows(ws)
            if as_json:
                _emit({"batches": rows, "failures": views.failure_rows(ws)})
            else:
                _echo_lines(views.status_lines(rows, ws))
            if not watch or all(row["status"] in TERMINAL for row in rows):
                return   # nothing left that could change
            time.sleep(ws.api.poll_interval)
    finally:
        ws.close()


@cli.command()
@paths_argument
@json_option
@lock_option
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
    ws = _workspace(state, paths, no_progress=True)
    try:
        with ws.locked("cancel"):
            cancelled, problems = ws.cancel()
        if as_json:
            _emit({"cancelled": cancelled, "not_cancelled": problems})
        else:
            for batch_id in cancelled:
                click.echo(f"cancelling {batch_id}")
            for problem in problems:
                click.echo(f"not cancelled: {problem}")
            click.echo(f"{len(cancelled)} batch{'es' * (len(cancelled) != 1)} cancelling; "
                       "`batchrun collect` keeps what they finished.")
    finally:
        ws.close()


@cli.command()
@click.option("--by", type=click.Choice(["job", "batch", "model", "day"]), default="job",
              show_default=True, help="How to group the report.")
@json_option
@click.pass_obj
@handle_errors
def costs(state: State, by: str, as_json: bool) -> None:
    """Tokens and dollars spent, from the manifest, with the saving over standard prices.

    \b
    Examples:
      batchrun costs
      batchrun costs --by model --json
    """
    project = load_project(state.directory)
    rows = cost_report(manifest_file(project), by)
    if as_json:
        _emit(rows)
    else:
        _echo_lines(views.cost_lines(rows, by))


@cli.command()
@paths_argument
@json_option
@click.pass_obj
@handle_errors
def validate(state: State, paths: tuple[str, ...], as_json: bool) -> None:
    """Check specs, templates, filters, schemas and batch JSONL files. No API, no Qdrant.

    \b
    Examples:
      batchrun validate                     every spec in jobs/
      batchrun validate jobs/tags.yaml
      batchrun validate batch_output.jsonl  a batch input or output file
    """
    project = load_project(state.directory)
    files = [p for p in paths if p.endswith(".jsonl")]
    specs = [p for p in paths if not p.endswith(".jsonl")]
    checked = []
    if specs or not files:
        for job in load_jobs(specs, project, state.directory):
            checked.append({"file": job.file, "job": job.name, "ok": True})
    problems = []
    for path in files:
        result = check_file(state.directory / path, display=path)
        checked.append({"file": path, "kind": result.summary.kind, "lines": result.summary.lines,
                        "ok": result.ok, "problems": result.problem_count})
        problems += [str(p) for p in result.problems]
    if as_json:
        _emit({"checked": checked, "problems": problems})
    else:
        for item in checked:
            lines = item.get("lines", 0)
            what = f"job {item['job']}" if "job" in item else \
                f"{item['kind']} file, {lines:,} line{'s' * (lines != 1)}"
            click.echo(f"{'ok' if item['ok'] else 'FAILED'}: {item['file']} ({what})")
        _echo_lines(problems)
    if problems:
        sys.exit(1)


@cli.command()
@click.argument("job_name", metavar="JOB")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Points to show.")
@click.option("--failed", is_flag=True, help="List failed requests and why, instead.")
@json_option
@click.pass_obj
@handle_errors
def show(state: State, job_name: str, limit: int, failed: bool, as_json: bool) -> None:
    """Points with their inputs and written results side by side.

    \b
    Examples:
      batchrun show tags --limit 3
      batchrun show tags --failed
    """
    project = load_project(state.directory)
    jobs = {j.name: j for j in load_jobs([], project, state.directory)}
    if job_name not in jobs:
        raise BatchrunError(f"no job named {job_name!r}",
                            hint=f"jobs: {', '.join(sorted(jobs)) or 'none'}")
    ws = Workspace(project, [jobs[job_name]], reporter(live=False))
    try:
        job = ws.jobs[0]
        if failed:
            rows = views.failure_rows(ws, limit=limit)
            if as_json:
                _emit({"failures": rows})
            else:
                _echo_lines(views.failure_lines(ws, job, rows))
        elif as_json:
            _emit({"points": [{"id": i, "inputs": inputs, "result": result}
                              for i, inputs, result in ws.selection(job).peek(limit)]})
        else:
            _echo_lines(views.show_lines(ws, job, limit=limit))
    finally:
        ws.close()


@cli.command()
@click.option("--speed", type=click.Choice(["demo", "instant"]), default="demo",
              show_default=True, help="How fast the emulator moves batches along.")
@click.option("--examples", default=5, show_default=True, metavar="N",
              help="Tagged videos to print at the end.")
@progress_option
@lock_option
@click.pass_obj
@handle_errors
def demo(state: State, speed: str, examples: int, no_progress: bool) -> None:
    """Tag 240 of 300 real YouTube videos with jobs/tags.yaml, against the emulator (free).

    Seeds the embedded Qdrant (.qdrant/) with the bundled sample videos, shows the plan,
    applies it with progress, and prints a few tagged videos. Writes the starter project
    (batchrun.yaml, jobs/, prompts/) first when the folder has none. Run it twice: the
    second run sends nothing.

    \b
    Examples:
      batchrun demo
      batchrun demo --speed instant    no waiting between batch states
    """
    written = ensure_project(state.directory)
    if written:
        click.echo(f"Wrote the starter project: {', '.join(written)}")
    project = with_emulator(load_project(state.directory))
    if project.config.qdrant.url:
        raise BatchrunError("the demo runs on the embedded Qdrant only, and batchrun.yaml "
                            f"points at {project.config.qdrant.url}",
                            hint="run `batchrun demo` in an empty folder")
    ws = _workspace(state, ("jobs/tags.yaml",), Options(emulator_speed=speed),
                    no_progress=no_progress, project=project)
    try:
        added = seed(ws.qdrant)
        click.echo(f"Qdrant: collection 'videos' has {ws.qdrant.count('videos').count} videos"
                   + (f" ({added} added now)" if added else "") + ".\n")
        _echo_lines(views.plan_lines(ws, ws.plan()))
        click.echo("")
        with ws.locked("demo"):
            outcome = run_apply(ws)
        ws.progress.close()
        _echo_lines(views.apply_lines(ws, outcome))
        click.echo("")
        _echo_lines(views.show_lines(ws, ws.jobs[0], limit=examples))
    finally:
        ws.progress.close()
        ws.close()


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.pass_obj
@handle_errors
def init(state: State, directory: str) -> None:
    """Create batchrun.yaml, jobs/, prompts/ and schemas/ with a commented example.

    Refuses to overwrite any file. The example job tags videos; `batchrun demo` runs it.

    \b
    Examples:
      batchrun init my-project && cd my-project
      batchrun init .                  in the current folder
    """
    target = (state.directory / directory).resolve()
    target.mkdir(parents=True, exist_ok=True)
    for rel in init_project(target):
        click.echo(f"created {rel}")
    click.echo("Next: edit jobs/tags.yaml, then `batchrun validate` and `batchrun plan`.")


cli.add_command(emulator_command)


def main() -> None:
    cli(prog_name="batchrun")


if __name__ == "__main__":
    main()
