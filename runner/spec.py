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
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import openai
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .errors import BatchrunError, Location, SpecError
from .pricing import PriceTable
from .filters import parse_filter
from .keys import digest
from .render import PromptTemplate, environment, is_template_path, load_template
from .schemas import close_objects, from_fields, strict_mode_problems
from .yamlfile import (KeyPath, Positions, data_path, dotted, expected, load, load_json,
                       shown, value_at)

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
            raise ValueError("a size such as 200MB, 500kB or 1000000")
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
        """The ledger of the configured provider. The emulator keeps its own, inside, so
        trying a job for free never leaves made-up answers where real ones are expected."""
        base = (self.root / self.config.state_dir).resolve()
        return base / "emulator" if self.config.provider.name == "emulator" else base

    @property
    def provider_id(self) -> str:
        """Who answers: `emulator`, or the API's base URL. Stamps and the ledger carry it."""
        cfg = self.config.provider
        if cfg.name == "emulator":
            return "emulator"
        url = cfg.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return url.rstrip("/")

    def target_id(self, collection: str) -> str:
        """Which data a job writes to: the Qdrant server (or embedded folder) and the
        collection. Batches carry it, so projects sharing an OpenAI organisation and a job
        name never adopt each other's batches."""
        cfg = self.config.qdrant
        # Not an absolute path: a CI runner checking the project out elsewhere must still
        # find the batches it created (the folder name tells projects apart).
        where = cfg.url or f"{self.root.name}/{cfg.path or '.qdrant'}"
        return digest([where, collection])[:16]


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
            _check_root(data, positions, "project file", "qdrant, provider, state_dir")
            if isinstance(data.get("provider"), str):   # `provider: emulator` shorthand
                data["provider"] = {"name": data["provider"]}
            config = _validate(Project, data, positions)
            _check_prices(config, data, positions)
            return ProjectContext(folder, config, positions.file)
    return ProjectContext(start, Project(), None)


def _check_prices(config: Project, data: dict, positions: Positions) -> None:
    """Price overrides are checked with the project file, so errors point at their line."""
    try:
        PriceTable.load(config.prices, origin=positions.file)
    except BatchrunError as exc:
        if exc.where is None or exc.where.file != positions.file:
            raise
        path = _key_path(data, exc.where.key)
        raise SpecError(exc.message, where=positions.at(path), hint=exc.hint) from None


def _key_path(data: Any, dotted_key: str) -> tuple[str, ...]:
    """"prices.gpt-4.1.batch.input" → ("prices", "gpt-4.1", "batch", "input"): keys may
    hold dots, so the path is found by walking the data."""
    path: list[str] = []
    rest = dotted_key
    while rest and isinstance(data, dict):
        key = next((k for k in sorted(map(str, data), key=len, reverse=True)
                    if rest == k or rest.startswith(k + ".")), None)
        if key is None:
            break
        path.append(key)
        data, rest = data.get(key), rest[len(key) + 1:]
    return (*path, *([rest] if rest else []))


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
            origin = f"{project.file} sets jobs: {project.config.jobs}" if not paths and \
                project.file else "job specs live in jobs/ by default"
            raise SpecError("no such file or folder; expected a job spec or a folder of them",
                            where=Location(_display(target, cwd)), hint=origin)
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
        twin = next((j for j in jobs.values() if j.output_key == job.output_key), None)
        if twin is not None:
            raise SpecError(f"{job.name} writes its output to {job.output_key!r}, where "
                            f"{twin.name} ({twin.file}) writes too; each would overwrite the "
                            "other's answers and resend its own forever",
                            where=job.at("output", "key") if job.spec.output.key
                            else job.at("output"),
                            hint="give one of them another output.key")
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
        if _display(file, cwd) in {j.file for j in jobs.values()}:
            continue
        job = load_job(file, project, cwd, environ)
        if job.name in missing:
            jobs[job.name] = job
            missing |= set(job.spec.needs) - set(jobs)
            missing.discard(job.name)


def load_job(path: Path, project: ProjectContext, cwd: Path,
             environ: Mapping[str, str] | None = None) -> Job:
    data, positions = load(path, _display(path, cwd), environ)
    _check_root(data, positions, "job spec", "source, prompt, model and output")
    spec = _validate(JobSpec, data, positions)
    name = spec.name or path.stem
    if not JOB_NAME.match(name):
        origin = "" if spec.name else " (from the file name)"
        raise SpecError(f"job name {name!r}{origin} may only use letters, digits, '_', '.' "
                        "and '-', at most 64, starting with a letter or digit",
                        where=positions.at(("name",)),
                        hint="job names become payload keys and state file names")
    if spec.source.filter is not None:
        parse_filter(spec.source.filter, positions, ("source", "filter"))
    _check_params(spec, positions)
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
    job = Job(name, positions.file, spec, positions, system, user, schema, schema_name, "")
    return Job(**{**job.__dict__, "fingerprint": fingerprint(job)})


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


@functools.lru_cache(maxsize=None)
def known_params(endpoint: str) -> frozenset[str]:
    """The request body keys the installed openai SDK knows for an endpoint."""
    from openai.types import embedding_create_params
    from openai.types.chat import completion_create_params
    from openai.types.responses import response_create_params
    params = {"/v1/chat/completions": completion_create_params.CompletionCreateParamsBase,
              "/v1/responses": response_create_params.ResponseCreateParamsBase,
              "/v1/embeddings": embedding_create_params.EmbeddingCreateParams}[endpoint]
    return frozenset(params.__annotations__)


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
    if key in read:
        raise SpecError(f"the job reads {key!r}, its own output key: each answer would change "
                        "its own request, and be paid for again on every apply", where=where,
                        hint=f"remove {key} from source.fields and the template, or write "
                             "the output under another output.key")


def _check_root(data: Any, positions: Positions, what: str, keys: str) -> None:
    if data is None:
        raise SpecError(f"the file is empty; expected a {what} (a mapping with {keys})",
                        where=Location(positions.file, 1))
    if not isinstance(data, dict):
        raise SpecError(f"expected a {what} (a mapping with {keys}), got {shown(data)}",
                        where=Location(positions.file, positions.line(())))


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
    known = known_params(spec.endpoint)
    for key in spec.params:
        if key in RESERVED_PARAMS:
            raise SpecError(f"{key!r} is set by batchrun from the spec and cannot be a param",
                            where=positions.at(("params", key)),
                            hint="use model:, prompt: and output: instead")
    if spec.endpoint == "/v1/embeddings":
        if spec.prompt.system is not None:
            raise SpecError("/v1/embeddings takes no system prompt; expected only "
                            "prompt.user, the text to embed",
                            where=positions.at(("prompt", "system")),
                            hint="remove prompt.system")
        if spec.output.fields is not None or spec.output.schema_ is not None:
            raise SpecError("/v1/embeddings returns vectors; expected no output.fields or "
                            "output.schema", where=positions.at(("output",)),
                            hint="remove them: the embedding itself is written back")
    for key in spec.params:
        if key not in known:
            # Params are sent as written: a typo would fail every request with a 400.
            close = difflib.get_close_matches(key, sorted(known - RESERVED_PARAMS), n=1)
            raise SpecError(f"unknown param {key!r} for {spec.endpoint}"
                            + (f"; did you mean {close[0]!r}?" if close else ""),
                            where=positions.at(("params", key)),
                            hint=f"params go into every request as written, and the "
                                 f"openai SDK {openai.__version__} knows no such param for "
                                 f"{spec.endpoint} (a newer SDK may)")


def _output_schema(spec: JobSpec, positions: Positions, root: Path) -> dict | None:
    """The strict JSON Schema a job asks for, or None for plain text; every problem strict
    mode would reject is reported where it is written: in the spec, or in the schema file."""
    out = spec.output
    if out.fields is not None and out.schema_ is not None:
        raise SpecError("expected output.fields or output.schema, not both",
                        where=positions.at(("output", "schema")),
                        hint="fields builds a strict schema for you; schema names a file")
    hint, located, prefix, skip = None, positions, ("output", "schema"), 0
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
    path = (root / value).resolve()
    if not path.is_file():
        raise SpecError(f"schema file {value} not found", where=where,
                        hint="paths are relative to the project root, e.g. schemas/tags.json")
    data, positions = load(path, value) if path.suffix in (".yaml", ".yml") \
        else load_json(path, value)
    if not isinstance(data, dict):
        raise SpecError(f"expected a JSON Schema object, got {shown(data)}",
                        where=Location(value, positions.line(())),
                        hint=f"the output schema of {where.file}:{where.line}")
    return data, positions


def _validate(model: type[BaseModel], data: Any, positions: Positions) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _spec_error(exc.errors(), model, data, positions) from None


# Which of several errors to report: a misspelled key explains the "missing" one it causes.
_FIRST = {"extra_forbidden": 0, "missing": 2}


def _spec_error(errors: list, model: type[BaseModel], data: Any,
                positions: Positions) -> SpecError:
    first = min(errors, key=lambda e: _FIRST.get(e["type"], 1))
    path = data_path(first, data)
    others = {data_path(e, data) for e in errors} - {path}
    key = str(path[-1]) if path else ""
    hint = next((f.description for f in reversed(_fields_along(model, path)) if f.description),
                None)
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, path[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        others -= {(*path[:-1], *close)}  # the typo is why that key is "missing"
        message = (f"unknown key {key!r}; {_suggestion(model, path, close)}"
                   f"expected one of: {', '.join(allowed)}")
        hint = None
    elif first["type"] == "missing":
        message = f"missing required key {key!r}"
    else:  # a wrong value; a union reports one error per member, said as "a or b"
        wanted = [expected(e) for e in errors if data_path(e, data) == path]
        value = value_at(data, path)
        message = f"expected {' or '.join(dict.fromkeys(wanted))}, got {shown(value)}"
        options = re.findall(r"'([^']+)'", first.get("ctx", {}).get("expected", "")) \
            if first["type"] == "literal_error" else []
        close = difflib.get_close_matches(str(value), options, n=1)
        message += f"; did you mean {close[0]!r}?" if close else ""
    more = f" (and {len(others)} more)" if others else ""
    return SpecError(message + more, where=positions.at(path), hint=hint)


def _suggestion(model: type[BaseModel], path: KeyPath, close: list[str]) -> str:
    """For an unknown key: where it belongs instead, or the key it is probably a typo of."""
    key = str(path[-1])
    homes = [dotted(p) for p in _key_paths(model) if p[-1] == key and p != path]
    if homes:
        return f"{key!r} belongs at {' or '.join(homes)}; "
    if close:
        return f"did you mean {close[0]!r}? "
    param = difflib.get_close_matches(key, sorted(COMMON_PARAMS), n=1, cutoff=0.8)
    if param and model is JobSpec and len(path) == 1:
        return f"request parameters go under params: (params: {{{param[0]}: …}}); "
    return ""


def _key_paths(model: type[BaseModel], prefix: KeyPath = ()) -> list[KeyPath]:
    """Every key a model accepts, nested models included: ("source", "limit"), ..."""
    out: list[KeyPath] = []
    for name, info in model.model_fields.items():
        path = (*prefix, info.alias or name)
        out.append(path)
        sub = _submodel(info.annotation)
        if sub is not None:
            out.extend(_key_paths(sub, path))
    return out


def _submodel(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _fields_along(model: type[BaseModel], path: KeyPath) -> list[Any]:
    """The pydantic fields a key path runs through, as far as it names fields."""
    fields: list[Any] = []
    current: type[BaseModel] | None = model
    for part in path:
        field = next((f for name, f in current.model_fields.items()
                      if (f.alias or name) == part), None) if current else None
        if field is None:
            break
        fields.append(field)
        current = _submodel(field.annotation)
    return fields


def _allowed_keys(model: type[BaseModel], path: KeyPath) -> list[str]:
    fields = _fields_along(model, path)
    current = model if not path else \
        _submodel(fields[-1].annotation) if len(fields) == len(path) else None
    return [f.alias or name for name, f in current.model_fields.items()] if current else []


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
                            where=job.at("needs"),
                            hint="a job can only need jobs that do not need it back")
        state[job.name] = "visiting"
        for need in job.spec.needs:
            visit(jobs[need], (*chain, job.name))
        state[job.name] = "done"
        ordered.append(job)

    for job in jobs.values():
        visit(job, ())
    return ordered


def _display(path: Path, cwd: Path) -> str:
    """The path as the user names it: relative to where batchrun runs, symlinks kept (the
    repository's demo links jobs/ into the starter project; `jobs/tags.yaml` is its name)."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(cwd)))
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
