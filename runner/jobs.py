"""Job specs resolved against the project: found on the command line or in jobs/, loaded
with every check that needs no API and no Qdrant, and put in dependency order.

A `Job` is a spec with its templates compiled, its output schema built and its fingerprint
computed. Loading checks, at the file, line and key where each is written: the spec's keys
and values, the filter, the params (by name, against the installed openai SDK), the
templates and the names they read, the output key and schema.
"""

from __future__ import annotations

import difflib
import graphlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import changes
from .errors import Location, SpecError
from .filters import check_filter
from .jobparams import check_params, check_provider
from .jobparams import known_params as known_params  # where it lived before
from .project import ProjectContext, check_root, display_path
from .project import check_provider as check_provider_keys
from .provider import config as providers
from .render import PromptTemplate, environment, load_template, project_file
from .schemas import close_objects, from_fields, strict_mode_problems
from .spec import JOB_NAME, JobSpec, ProviderConfig
from .specerrors import shown, validate_model
from .yamlfile import Positions, load, load_json


@dataclass(frozen=True)
class Job:
    """A job spec resolved against the project: templates compiled, schema built."""

    name: str
    file: str
    spec: JobSpec
    positions: Positions
    system: PromptTemplate | None
    user: PromptTemplate
    output_schema: dict | None
    schema_name: str
    fingerprint: str           # what shapes its requests: changes.fingerprint()
    provider: ProviderConfig = field(default_factory=ProviderConfig)   # who answers it

    @property
    def dialect(self) -> str:
        """The API its requests are written for: openai, anthropic or azure."""
        return providers.dialect(self.provider)

    @property
    def priced_model(self) -> str:
        """The model its prices and tokenizer are looked up by: an Azure deployment's
        model when provider.deployments names it, else the spec's model."""
        return self.provider.deployments.get(self.spec.model, self.spec.model)

    @property
    def output_key(self) -> str:
        """The payload key of the result (dotted: nested); for a vector job, unused."""
        return self.spec.output.key or self.name

    @property
    def output_vector(self) -> str | None:
        """The named vector an embeddings job writes to ("" the unnamed one), if any."""
        return self.spec.output.vector

    @property
    def writes(self) -> str:
        """Where the result goes, as a user reads it: `llm_tags`, or `vector embedding`."""
        vector = self.output_vector
        if vector is None:
            return self.output_key
        return f"vector {vector}" if vector else "the unnamed vector"

    @property
    def expect(self) -> str:
        if self.spec.endpoint == "/v1/embeddings":
            return "embedding"
        return "json" if self.output_schema is not None else "text"

    def at(self, *path: Any) -> Location:
        return self.positions.at(path)


def job_files(paths: list[str], project: ProjectContext, cwd: Path) -> list[Path]:
    """Job spec files named on the command line: files, or folders of *.yaml / *.yml."""
    targets = [cwd / p for p in paths] if paths else [project.root / project.config.jobs]
    files: list[Path] = []
    for target in targets:
        if target.is_dir():
            found = sorted(p for p in target.iterdir()
                           if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise SpecError("no job specs (*.yaml) in this folder",
                                where=Location(display_path(target, cwd)),
                                hint="run `batchrun init` for an example, or name a spec file")
            files.extend(found)
        elif target.is_file():
            files.append(target)
        else:
            origin = f"{project.file} sets jobs: {project.config.jobs}" if not paths and \
                project.file else "job specs live in jobs/ by default"
            raise SpecError("no such file or folder; expected a job spec or a folder of them",
                            where=Location(display_path(target, cwd)), hint=origin)
    return files


def load_jobs(paths: list[str], project: ProjectContext, cwd: Path,
              environ: Mapping[str, str] | None = None) -> list[Job]:
    """Every job named by `paths`, checked, in dependency order (needs before users)."""
    jobs: dict[str, Job] = {}
    for path in job_files(paths, project, cwd):
        job = load_job(path, project, cwd, environ)
        if job.name in jobs:
            origin = "" if job.spec.name else " (from the file name)"
            raise SpecError(f"duplicate job name {job.name!r}{origin}, also the name of "
                            f"{jobs[job.name].file}; expected a name unique in the project",
                            where=job.at("name"),
                            hint="set a different `name:` in one of them")
        twin = next((j for j in jobs.values() if _same_place(j, job)), None)
        if twin is not None:
            theirs = "too" if twin.writes == job.writes else repr(twin.writes)
            raise SpecError(f"{job.name} writes its output to {job.writes!r}, where "
                            f"{twin.name} ({twin.file}) writes {theirs}; each would "
                            "overwrite the other's answers and resend its own forever",
                            where=job.at("output", "key") if job.spec.output.key
                            else job.at("output"),
                            hint="give one of them another output.key" if job.output_vector
                            is None else "give one of them another output.vector")
        jobs[job.name] = job
    if paths:
        _add_needed(jobs, project, cwd, environ)
    return _in_dependency_order(jobs)


def _add_needed(jobs: dict[str, Job], project: ProjectContext, cwd: Path,
                environ: Mapping[str, str] | None) -> None:
    """Jobs named on the command line bring the jobs they need from the project's jobs
    folder, as make builds a target's prerequisites: `apply jobs/summary.yaml` brings
    `tags` when summary needs it."""
    missing = {n for j in jobs.values() for n in j.spec.needs} - set(jobs)
    if not missing:
        return
    folder = project.root / project.config.jobs
    if not folder.is_dir():
        return
    files = sorted(f for f in folder.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    # Files named like the job first; any other file only if a job is still not found.
    for file in sorted(files, key=lambda f: f.stem not in missing):
        if not missing:
            return
        if display_path(file, cwd) in {j.file for j in jobs.values()}:
            continue
        job = load_job(file, project, cwd, environ)
        if job.name in missing:
            jobs[job.name] = job
            missing |= set(job.spec.needs) - set(jobs)
            missing.discard(job.name)


# The keys of a job spec whose values go into requests: a secret must never reach them.
REQUEST_KEYS = frozenset({"prompt", "model", "endpoint", "params", "output"})


def load_job(path: Path, project: ProjectContext, cwd: Path,
             environ: Mapping[str, str] | None = None) -> Job:
    data, positions = load(path, display_path(path, cwd), environ,
                           sent=lambda at: bool(at) and at[0] in REQUEST_KEYS)
    check_root(data, positions, "job spec", "source, prompt, model and output")
    spec = validate_model(JobSpec, data, positions)
    name = spec.name or path.stem
    if not JOB_NAME.match(name):
        origin = "" if spec.name else " (from the file name)"
        raise SpecError(f"job name {name!r}{origin} may only use letters, digits, '_', '.' "
                        "and '-', at most 64, starting with a letter or digit",
                        where=positions.at(("name",)),
                        hint="job names become payload keys and state file names")
    if spec.source.filter is not None:
        check_filter(spec.source.filter, positions, ("source", "filter"))
    provider = providers.effective(project.config.provider, spec.provider)
    if spec.provider is not None:
        check_provider_keys(provider, positions, ("provider",))
    check_provider(spec, provider, positions)
    check_params(spec, positions, providers.dialect(provider))
    env = environment(project.root)
    system = (load_template(env, spec.prompt.system, root=project.root,
                            where=positions.text_at(("prompt", "system")))
              if spec.prompt.system is not None else None)
    user = load_template(env, spec.prompt.user, root=project.root,
                         where=positions.text_at(("prompt", "user")))
    _check_reads(spec, [t for t in (system, user) if t is not None], positions)
    _check_output_key(spec, spec.output.key or name, [t for t in (system, user) if t], positions)
    schema = _output_schema(spec, positions, project.root)
    schema_name = spec.output.name or re.sub(r"[^A-Za-z0-9_-]", "_", name)
    job = Job(name, positions.file, spec, positions, system, user, schema, schema_name, "",
              provider)
    return Job(**{**job.__dict__, "fingerprint": changes.fingerprint(changes.request_shape(job))})


def _check_reads(spec: JobSpec, templates: list[PromptTemplate], positions: Positions) -> None:
    """With `source.fields` listed, a template reading any other name reads nothing."""
    fields = spec.source.fields
    if fields is None:
        return
    for template in templates:
        for name, where in template.reads.items():
            if name not in (*fields, "id", "payload"):
                close = difflib.get_close_matches(name, fields, n=1)
                raise SpecError(
                    f"the template reads {name!r}, which source.fields does not select; "
                    + (f"did you mean {close[0]!r}? " if close else "")
                    + f"expected one of: {', '.join(fields)}, id, payload", where=where,
                    hint=f"add {name} to source.fields ({positions.file}:"
                    f"{positions.line(('source', 'fields'))}), or fix the name")


def _check_output_key(spec: JobSpec, key: str, templates: list[PromptTemplate],
                      positions: Positions) -> None:
    """The output key is batchrun's to write: not a stamp, and not one of the job's inputs
    (every answer would change its own request, to be sent again on the next apply)."""
    where = positions.at(("output", "key")) if spec.output.key else positions.at(("name",))
    if key.startswith("_batchrun_"):
        raise SpecError(f"output key {key!r} starts with '_batchrun_', which batchrun keeps "
                        "for its stamps", where=where, hint="choose another output.key")
    read = set(spec.source.fields or ()) | {
        name for template in templates for name in template.reads}
    if spec.output.vector is None and key.split(".")[0] in read:
        raise SpecError(f"the job reads {key!r}, its own output key: each answer would change "
                        "its own request, and be paid for again on every apply", where=where,
                        hint=f"remove {key} from source.fields and the template, or write "
                             "the output under another output.key")


def _output_schema(spec: JobSpec, positions: Positions, root: Path) -> dict | None:
    """The strict JSON Schema a job asks for, or None for plain text; every problem strict
    mode would reject is reported where it is written: in the spec, or in the schema file."""
    out = spec.output
    if out.fields is not None and out.schema_ is not None:
        raise SpecError("expected output.fields or output.schema, not both",
                        where=positions.at(("output", "schema")),
                        hint="fields builds a strict schema for you; schema names a file")
    prefix: tuple[str, ...] = ("output", "schema")
    hint, located, skip = None, positions, 0
    if out.fields is not None:
        if not out.fields:
            raise SpecError("expected at least one output field, got none",
                            where=positions.at(("output", "fields")))
        # the schema's properties.NAME... is written at output.fields.NAME...
        schema, prefix, skip = from_fields(out.fields), ("output", "fields"), 1
    elif isinstance(out.schema_, dict):
        schema = close_objects(dict(out.schema_))
    elif isinstance(out.schema_, str):
        where = positions.at(("output", "schema"))
        schema, located = _schema_file(out.schema_, root, where)
        prefix, hint = (), f"the output schema of {where.file}:{where.line}"
    else:
        return None
    for path, problem in strict_mode_problems(schema):
        raise SpecError(problem, where=located.at((*prefix, *path[skip:])), hint=hint)
    return schema


def _schema_file(value: str, root: Path, where: Location) -> tuple[dict, Positions]:
    path = project_file(root, value, where, "schema file", "schemas/tags.json")
    # A YAML schema's ${VAR}s are interpolated, and all of it goes into every request.
    data, positions = load(path, value, sent=lambda _path: True) \
        if path.suffix in (".yaml", ".yml") else load_json(path, value)
    if not isinstance(data, dict):
        raise SpecError(f"expected a JSON Schema object, got {shown(data)}",
                        where=Location(value, positions.line(())),
                        hint=f"the output schema of {where.file}:{where.line}")
    return data, positions


def _same_place(a: Job, b: Job) -> bool:
    """Two jobs writing where one overwrites the other: one payload key, or a key and a
    key nested inside it (llm and llm.tags), or one vector of one collection."""
    if a.output_vector is not None or b.output_vector is not None:
        return a.output_vector == b.output_vector and \
            a.spec.source.collection == b.spec.source.collection
    x, y = a.output_key, b.output_key
    return x == y or x.startswith(y + ".") or y.startswith(x + ".")


def _in_dependency_order(jobs: dict[str, Job]) -> list[Job]:
    """Needs before users; a job's order among independent jobs is the order it was named."""
    for job in jobs.values():
        for i, need in enumerate(job.spec.needs):
            if need not in jobs:
                raise SpecError(f"needs unknown job {need!r}", where=job.at("needs", i),
                                hint=f"known jobs: {', '.join(sorted(jobs))}; name its spec "
                                "on the command line too")
    sorter = graphlib.TopologicalSorter({name: job.spec.needs for name, job in jobs.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]          # [a, b, …, a]: each needs the one before it
        first = jobs[cycle[-1]]
        raise SpecError(f"jobs depend on each other in a cycle: {' → '.join(reversed(cycle))}",
                        where=first.at("needs"),
                        hint="a job can only need jobs that do not need it back") from None
    return [jobs[name] for name in order]
