"""`batchrun render`: the exact request line apply would send for a point, before paying."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..errors import BatchrunError
from . import State, emit_json, handle_errors, json_option, open_workspace

if TYPE_CHECKING:
    from ..jobs import Job
    from ..project import ProjectContext

id_option = click.option("--id", "ids", multiple=True, metavar="ID",
                         help="A point to use (repeat for more): an integer id or a UUID.")


def one_job(state: State, name: str) -> tuple[ProjectContext, Job]:
    """The job a command names: by its name, or by its spec file."""
    from ..jobs import load_jobs
    from ..project import load_project

    project = load_project(state.directory)
    if name.endswith((".yaml", ".yml")):
        named = load_jobs([name], project, state.directory)
        return project, next(j for j in named if (state.directory / j.file).resolve()
                             == (state.directory / name).resolve())
    jobs = {j.name: j for j in load_jobs([], project, state.directory)}
    if name not in jobs:
        raise BatchrunError(f"no job named {name!r}",
                            hint=f"jobs: {', '.join(sorted(jobs)) or 'none'}; or name a spec "
                                 "file (jobs/NAME.yaml)")
    return project, jobs[name]


@click.command()
@click.argument("job_name", metavar="JOB")
@id_option
@click.option("--sample", type=click.IntRange(min=1), default=None, metavar="N",
              help="Without --id: N points of a deterministic sample (default 1), the same "
                   "ones `try --sample N` uses.")
@click.option("--pretty", is_flag=True,
              help="Indent the line for reading (then it is not the exact bytes).")
@json_option
@click.pass_obj
@handle_errors
def render(state: State, job_name: str, ids: tuple[str, ...], sample: int | None,
           pretty: bool, as_json: bool) -> None:
    """Print the exact batch line apply would send for a point. Sends nothing.

    JOB is a job name or its spec file. Each line — custom_id (the request key),
    method, url and body — is built by the code apply packs shards with, so it is
    byte for byte what apply would upload; stdout holds only the lines (JSONL), and
    stderr says, per point, its key and its input tokens (exact or approximate).

    \b
    Examples:
      batchrun render tags                  one point of a deterministic sample
      batchrun render tags --id 7 --id 12
      batchrun render tags --id 7 --pretty  indented, for reading
      batchrun render tags --id 7 > request.jsonl
    """
    import json

    from ..preview import chosen_points, parse_id, render_point
    from ..render import RenderError, request_frame

    project, job = one_job(state, job_name)
    if ids and sample:
        raise BatchrunError("--id and --sample choose points two ways; give one")
    with open_workspace(state, (), no_progress=True, project=project, jobs=[job]) as ws:
        points = chosen_points(ws.selection(job), [parse_id(i) for i in ids], sample or 1)
        frame = request_frame(job)
        shown: list[Any] = []
        for point in points:
            try:
                request = render_point(job, frame, point)
            except RenderError as exc:
                raise BatchrunError(f"point {point.id}: {exc.problem}", where=exc.where,
                                    hint="give the template a default "
                                         "({{ field | default('') }})") from None
            shown.append(request)
    if as_json:
        emit_json({"requests": [{
            "id": r.point.id, "custom_id": r.key, "endpoint": r.endpoint,
            "line": r.line.decode("utf-8"), "body": r.body, "bytes": len(r.line),
            "input_tokens": r.tokens.tokens, "input_tokens_exact": r.tokens.exact,
            "output_tokens_max": r.output_cap} for r in shown]})
        return
    for r in shown:
        exact = "exact" if r.tokens.exact else "approximate"
        click.echo(f"# point {r.point.id}: custom_id {r.key}, POST {r.endpoint}, "
                   f"{r.tokens.tokens:,} input tokens ({exact}), {len(r.line):,} bytes",
                   err=True)
        if pretty:
            click.echo(json.dumps(json.loads(r.line), indent=2, ensure_ascii=False))
        else:
            click.echo(r.line, nl=False)
