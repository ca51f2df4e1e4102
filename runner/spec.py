"""Job specs and the project file: the models, and loading them with errors that point
into the YAML.

A job spec says which points to read (`source`), how to turn each into a request
(`prompt`, `model`, `endpoint`, `params`), what comes back (`output`) and how to send it
(`batch`, `budget`). `batchrun.yaml`, optional, holds what jobs share: the Qdrant
connection, the provider, the state directory, price overrides. Unknown keys are errors:
a typo must not silently change what is sent, or what it costs.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .errors import Location, SpecError
from .filters import parse_filter
from .keys import digest
from .render import PromptTemplate, environment, is_template_path, load_template
from .schemas import close_objects, describe, from_fields, strict_mode_problems
from .yamlfile import KeyPath, Positions, load, read_text

PROJECT_FILE = "batchrun.yaml"
MAX_BATCH_REQUESTS = 50_000          # the Batch API's limit per input file
MAX_BATCH_BYTES = 200_000_000        # 200 MB, counted in decimal megabytes to stay under the limit
ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Body fields batchrun itself writes from the spec; setting them in `params` is an error.
RESERVED_PARAMS = {"model", "messages", "input", "instructions", "response_format", "text",
                   "stream", "n"}
# Request body parameters people write at the top level of a spec by mistake.
COMMON_PARAMS = {"temperature", "max_tokens", "max_completion_tokens", "max_output_tokens",
                 "top_p", "seed", "stop", "reasoning_effort", "reasoning", "presence_penalty",
                 "frequency_penalty", "dimensions", "encoding_format", "logprobs",
                 "service_tier", "verbosity"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_size(value: Any) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*", value)
        if not match:
            raise ValueError("expected a size such as 200MB, 500kB or 1000000")
        factor = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
        return int(float(match.group(1)) * factor)
    return value


Size = Annotated[int, pydantic.BeforeValidator(_parse_size), Field(gt=0), pydantic.WithJsonSchema({
    "anyOf": [{"type": "integer", "minimum": 1},
              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[kKmMgG]?[bB]?\s*$"}]})]


# ---- job spec -------------------------------------------------------------------------

class Source(_Strict):
    collection: str = Field(min_length=1, description="Qdrant collection to read points from.")
    filter: dict[str, Any] | None = Field(
        None, description="A Qdrant filter, in the JSON shape of Qdrant's REST API.")
    fields: list[str] | None = Field(
        None, description="Payload fields the template sees (default: all but batchrun's own).")
    limit: int | None = Field(None, gt=0, description="Read at most this many points (trial runs).")


class Prompt(_Strict):
    system: str | None = Field(None, description="System prompt: a template file path (.j2, "
                               ".jinja, .txt, .md) relative to the project, or inline text.")
    user: str = Field(description="User prompt (for /v1/embeddings: the text to embed): a "
                      "template file path or inline text.")


class Output(_Strict):
    key: str | None = Field(None, min_length=1, description="Payload key the result is written "
                            "under (default: the job name).")
    fields: dict[str, dict[str, Any]] | None = Field(
        None, description="Output fields as JSON Schema fragments; becomes a strict JSON Schema.")
    schema_: str | dict[str, Any] | None = Field(
        None, alias="schema", description="A JSON Schema file (under schemas/) or inline mapping.")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="Schema name sent to the API (default: the job name).")


class BatchLimits(_Strict):
    max_requests: int = Field(MAX_BATCH_REQUESTS, ge=1, le=MAX_BATCH_REQUESTS,
                              description="Requests per shard (API limit 50,000).")
    max_bytes: Size = Field(MAX_BATCH_BYTES, le=MAX_BATCH_BYTES,
                            description="Bytes per shard, e.g. 200MB (API limit 200 MB).")
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts per request, across batches.")
    max_enqueued_tokens: int | None = Field(
        None, gt=0, description="Input tokens in flight per model at once; more waits for a "
        "later wave (your organisation's batch queue limit).")


class Budget(_Strict):
    max_cost_usd: float | None = Field(None, ge=0, description="Refuse to submit when the "
                                       "estimated cost of what would be sent exceeds this.")


class JobSpec(_Strict):
    name: str | None = Field(None, description="Unique job name (default: the file name).")
    description: str | None = Field(None, description="Free text; changing it sends nothing.")
    needs: list[str] = Field(default_factory=list, description="Jobs whose output this job reads.")
    source: Source = Field(description="Which points to read: collection, filter, fields, limit.")
    prompt: Prompt = Field(description="How a point becomes a request: user (and system), each "
                           "a template file or inline text.")
    model: str = Field(min_length=1, description="Model id, e.g. gpt-4o-mini.")
    endpoint: Literal["/v1/chat/completions", "/v1/responses", "/v1/embeddings"] = Field(
        "/v1/chat/completions", description="Batch API endpoint.")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Other body parameters: temperature, max_tokens…")
    output: Output = Field(default_factory=Output, description="What comes back: key, and "
                           "fields or schema.")
    batch: BatchLimits = Field(default_factory=BatchLimits, description="Shard sizes and "
                               "attempts: max_requests, max_bytes, max_attempts.")
    budget: Budget = Field(default_factory=Budget, description="max_cost_usd: refuse to "
                           "submit past this estimate.")


# ---- project file ---------------------------------------------------------------------

class QdrantConfig(_Strict):
    path: str | None = Field(None, description="Embedded Qdrant directory (default .qdrant), "
                             "or :memory:.")
    url: str | None = Field(None, description="Qdrant server URL; replaces the embedded engine.")
    api_key_env: str | None = Field(None, description="Environment variable holding the "
                                    "server's API key.")
    timeout: int | None = Field(None, gt=0, description="Server request timeout, seconds.")
    scroll_page: int = Field(10_000, ge=1, description="Points read per scroll request.")
    write_batch: int = Field(1_000, ge=1, description="Points written per update request.")


class ProviderConfig(_Strict):
    name: Literal["openai", "emulator"] = Field(
        "openai", description="openai (the real API or any compatible base_url), or emulator "
        "(batchrun's own, in-process, free).")
    base_url: str | None = Field(None, description="API base URL (default: $OPENAI_BASE_URL, "
                                 "else api.openai.com).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable with the key.")
    poll_interval: float = Field(30.0, gt=0, description="Seconds between status polls.")
    max_retries: int = Field(5, ge=0, description="SDK retries per API call (429, 5xx, network).")
    emulator_speed: Literal["instant", "demo"] = Field(
        "demo", description="For the emulator: instant, or a few seconds per state.")


class Project(_Strict):
    qdrant: QdrantConfig = Field(default_factory=QdrantConfig, description="The Qdrant "
                                 "connection: path (embedded) or url.")
    provider: ProviderConfig = Field(default_factory=ProviderConfig, description="The Batch "
                                     "API: name (openai or emulator), base_url, api_key_env.")
    state_dir: str = Field(".batchrun", description="Where artifacts, the result cache and the "
                           "manifest live (cache it in CI).")
    jobs: str = Field("jobs", description="Default folder of job specs.")
    prices: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="Price overrides per model.")


# ---- loading --------------------------------------------------------------------------

@dataclass(frozen=True)
class ProjectContext:
    root: Path
    config: Project
    file: str | None           # display path of batchrun.yaml, None when absent

    @property
    def state_dir(self) -> Path:
        return (self.root / self.config.state_dir).resolve()


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
    fingerprint: str           # everything that shapes a request body; see `fingerprint()`

    @property
    def output_key(self) -> str:
        return self.spec.output.key or self.name

    @property
    def expect(self) -> str:
        if self.spec.endpoint == "/v1/embeddings":
            return "embedding"
        return "json" if self.output_schema is not None else "text"

    def at(self, *path: Any) -> Location:
        return self.positions.at(path)


def load_project(start: Path, environ: Mapping[str, str] | None = None) -> ProjectContext:
    """batchrun.yaml from `start` or the nearest parent holding one; defaults otherwise."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            data, positions = load(candidate, _display(candidate, start), environ)
            data = {} if data is None else data
            if isinstance(data.get("provider"), str):   # `provider: emulator` shorthand
                data["provider"] = {"name": data["provider"]}
            config = _validate(Project, data, positions)
            return ProjectContext(folder, config, positions.file)
    return ProjectContext(start, Project(), None)


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
                                where=Location(_display(target, cwd)),
                                hint="run `batchrun init` for an example, or name a spec file")
            files.extend(found)
        elif target.is_file():
            files.append(target)
        else:
            raise SpecError("no such file or folder", where=Location(_display(target, cwd)),
                            hint="job specs live in jobs/ by default")
    return files


def load_jobs(paths: list[str], project: ProjectContext, cwd: Path,
              environ: Mapping[str, str] | None = None) -> list[Job]:
    """Every job named by `paths`, checked, in dependency order (needs before users)."""
    jobs: dict[str, Job] = {}
    for path in job_files(paths, project, cwd):
        job = load_job(path, project, cwd, environ)
        if job.name in jobs:
            raise SpecError(f"duplicate job name {job.name!r} (also in {jobs[job.name].file})",
                            where=job.at("name") if job.spec.name else Location(job.file),
                            hint="job names must be unique; set `name:` in one of them")
        jobs[job.name] = job
    return _in_dependency_order(jobs)


def load_job(path: Path, project: ProjectContext, cwd: Path,
             environ: Mapping[str, str] | None = None) -> Job:
    data, positions = load(path, _display(path, cwd), environ)
    if not isinstance(data, dict):
        raise SpecError("a job spec must be a mapping with source, prompt, model and output",
                        where=Location(positions.file, positions.line(())))
    spec = _validate(JobSpec, data, positions)
    name = spec.name or path.stem
    if not JOB_NAME.match(name):
        raise SpecError(f"job name {name!r} may only use letters, digits, '_', '.' and '-' "
                        "(at most 64, starting with a letter or digit)",
                        where=positions.at(("name",)) if spec.name else Location(positions.file))
    if spec.source.filter is not None:
        parse_filter(spec.source.filter, positions, ("source", "filter"))
    _check_params(spec, positions)
    env = environment(project.root)
    system = (load_template(env, spec.prompt.system, root=project.root,
                            where=positions.at(("prompt", "system")))
              if spec.prompt.system is not None else None)
    user = load_template(env, spec.prompt.user, root=project.root,
                         where=positions.at(("prompt", "user")))
    schema = _output_schema(spec, positions, project.root)
    schema_name = spec.output.name or re.sub(r"[^A-Za-z0-9_-]", "_", name)
    job = Job(name, positions.file, spec, positions, system, user, schema, schema_name, "")
    return Job(**{**job.__dict__, "fingerprint": fingerprint(job)})


def fingerprint(job: Job) -> str:
    """What shapes the request bodies and where results go. Description, budget, batch
    sizes and the selection do not belong here: changing them sends nothing."""
    spec = job.spec
    return digest({
        "endpoint": spec.endpoint, "model": spec.model, "params": spec.params,
        "system": job.system.sources_digest if job.system else None,
        "user": job.user.sources_digest, "schema": job.output_schema,
        "schema_name": job.schema_name, "fields": spec.source.fields,
        "output_key": job.output_key,
    })


def _check_params(spec: JobSpec, positions: Positions) -> None:
    for key in spec.params:
        if key in RESERVED_PARAMS:
            raise SpecError(f"{key!r} is set by batchrun from the spec and cannot be a param",
                            where=positions.at(("params", key)),
                            hint="use model:, prompt: and output: instead")
    if spec.endpoint == "/v1/embeddings":
        if spec.prompt.system is not None:
            raise SpecError("/v1/embeddings takes no system prompt",
                            where=positions.at(("prompt", "system")))
        if spec.output.fields is not None or spec.output.schema_ is not None:
            raise SpecError("/v1/embeddings returns vectors; remove output.fields/schema",
                            where=positions.at(("output",)))


def _output_schema(spec: JobSpec, positions: Positions, root: Path) -> dict | None:
    out = spec.output
    if out.fields is not None and out.schema_ is not None:
        raise SpecError("give output.fields or output.schema, not both",
                        where=positions.at(("output", "schema")))
    if out.fields is not None:
        if not out.fields:
            raise SpecError("output.fields is empty", where=positions.at(("output", "fields")))
        schema, where, file_label = from_fields(out.fields), ("output", "fields"), None
        prefix: KeyPath = ("properties",)
    elif isinstance(out.schema_, dict):
        schema, where, file_label, prefix = close_objects(dict(out.schema_)), ("output", "schema"), None, ()
    elif isinstance(out.schema_, str):
        schema, file_label = _schema_file(out.schema_, root, positions.at(("output", "schema")))
        where, prefix = ("output", "schema"), ()
    else:
        return None
    for path, problem in strict_mode_problems(schema):
        if file_label:
            raise SpecError(problem, where=Location(file_label, 0, describe(path)))
        inner = path[len(prefix):] if path[:len(prefix)] == prefix else path
        raise SpecError(problem, where=positions.at((*where, *inner)))
    return schema


def _schema_file(value: str, root: Path, where: Location) -> tuple[dict, str]:
    path = (root / value).resolve()
    if not path.is_file():
        raise SpecError(f"schema file {value} not found", where=where)
    text = read_text(path, value)
    try:
        if path.suffix in (".yaml", ".yml"):
            data, _ = load(path, value)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: {exc.msg}", where=Location(value, exc.lineno)) from None
    if not isinstance(data, dict):
        raise SpecError("a schema must be a JSON object", where=Location(value, 1))
    return data, value


def _validate(model: type[BaseModel], data: Any, positions: Positions) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _spec_error(exc, model, positions) from None


def _spec_error(exc: pydantic.ValidationError, model: type[BaseModel],
                positions: Positions) -> SpecError:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        param = difflib.get_close_matches(str(loc[-1]), sorted(COMMON_PARAMS), n=1, cutoff=0.8)
        if param and model is JobSpec and len(loc) == 1:
            suggestion = f"request parameters go under params: (params: {{{param[0]}: …}}); "
        message = (f"unknown key {loc[-1]!r}; {suggestion}expected one of: "
                   f"{', '.join(allowed)}")
    elif first["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
    else:
        got = first.get("input")
        shown = json.dumps(got, ensure_ascii=False, default=str)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        message = f"{first['msg'].replace('Input should be', 'expected')}, got {shown}"
    return SpecError(message + more, where=positions.at(loc))


def _allowed_keys(model: type[BaseModel], loc: KeyPath) -> list[str]:
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(current, type) and \
            issubclass(current, BaseModel) else None
        if field is None:
            for candidate in current.model_fields.values() if isinstance(current, type) else ():
                if candidate.alias == part:
                    field = candidate
        if field is None:
            return []
        current = field.annotation
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            args = [a for a in getattr(current, "__args__", ()) if isinstance(a, type)
                    and issubclass(a, BaseModel)]
            current = args[0] if args else current
    return [f.alias or name for name, f in current.model_fields.items()]


def _in_dependency_order(jobs: dict[str, Job]) -> list[Job]:
    for job in jobs.values():
        for i, need in enumerate(job.spec.needs):
            if need not in jobs:
                raise SpecError(f"needs unknown job {need!r}", where=job.at("needs", i),
                                hint=f"known jobs: {', '.join(sorted(jobs))}; name its spec "
                                "on the command line too")
    ordered: list[Job] = []
    state: dict[str, str] = {}

    def visit(job: Job, chain: tuple[str, ...]) -> None:
        if state.get(job.name) == "done":
            return
        if state.get(job.name) == "visiting":
            cycle = " → ".join((*chain[chain.index(job.name):], job.name))
            raise SpecError(f"jobs depend on each other in a cycle: {cycle}",
                            where=job.at("needs"))
        state[job.name] = "visiting"
        for need in job.spec.needs:
            visit(jobs[need], (*chain, job.name))
        state[job.name] = "done"
        ordered.append(job)

    for job in jobs.values():
        visit(job, ())
    return ordered


def _display(path: Path, cwd: Path) -> str:
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path)


def job_schema() -> dict:
    """The job-spec JSON Schema editors use (exported to schemas/job.schema.json)."""
    schema = JobSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "batchrun job spec"
    return schema


__all__ = ["Job", "JobSpec", "Project", "ProjectContext", "load_project", "load_jobs",
           "load_job", "job_files", "job_schema", "fingerprint", "ENDPOINTS",
           "is_template_path"]
