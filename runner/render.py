"""Rendering a point into the request body that is sent, through sandboxed Jinja.

Templates come from files (under the project, normally `prompts/`) or inline text in the
spec. They run in Jinja's sandbox with StrictUndefined: a template cannot reach Python
internals, and a field a point lacks is an error, not an empty string. Payload text is
data: `{{ title }}` inserts the title's characters literally, even when they contain
`{{ }}` themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from .errors import Location, SpecError
from .keys import digest, sha256_hex
from .yamlfile import read_text

if TYPE_CHECKING:
    from .spec import Job

TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".txt", ".md", ".tmpl")


class RenderError(Exception):
    """One point could not be rendered (a missing field, a filter failing on its value)."""


@dataclass(frozen=True)
class PromptTemplate:
    label: str            # where it came from: "prompts/tags.user.j2" or "jobs/tags.yaml:14"
    path: str | None      # project-relative file path, None when inline
    source: str
    template: jinja2.Template
    sources_digest: str   # the template's text and every template it includes


def environment(root: Path) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def is_template_path(value: str) -> bool:
    return "\n" not in value and value.strip().endswith(TEMPLATE_SUFFIXES)


def load_template(env: SandboxedEnvironment, value: str, *, root: Path,
                  where: Location) -> PromptTemplate:
    """A spec's prompt value (a path, or inline text) as a compiled template."""
    if is_template_path(value):
        rel = value.strip()
        path = (root / rel).resolve()
        if not path.is_relative_to(root.resolve()):
            raise SpecError(f"template {rel} is outside the project", where=where)
        if not path.is_file():
            raise SpecError(f"template file {rel} not found", where=where,
                            hint=f"create {rel}, or write the prompt inline as text")
        source = read_text(path, rel)
        label, base_line = rel, 0
    else:
        source, rel, label, base_line = value, None, f"{where.file}:{where.line}", where.line
    try:
        template = env.from_string(source)
        if rel:
            template.name = template.filename = rel
    except jinja2.TemplateSyntaxError as exc:
        line = (exc.lineno or 0) + (base_line if rel is None else 0)
        raise SpecError(f"template syntax error: {exc.message}",
                        where=Location(rel or where.file, line, "" if rel else where.key)) from None
    return PromptTemplate(label, rel, source, template, _sources_digest(env, source, root, where))


def _sources_digest(env: SandboxedEnvironment, source: str, root: Path, where: Location) -> str:
    """Hash a template with everything it includes, so a change to an included file
    changes the job's fingerprint too."""
    seen: dict[str, str] = {}
    pending = [source]
    while pending:
        text = pending.pop()
        for name in jinja2.meta.find_referenced_templates(env.parse(text)):
            if name is None:
                raise SpecError("templates may only include fixed file names", where=where)
            if name in seen:
                continue
            path = root / name
            if not path.is_file():
                raise SpecError(f"included template {name} not found", where=where)
            seen[name] = path.read_text(encoding="utf-8")
            pending.append(seen[name])
    return digest({"source": source, "includes": {k: sha256_hex(v.encode()) for k, v in seen.items()}})


def context(point_id: Any, payload: dict) -> dict:
    """What a template sees: each payload field by name, plus `id` and `payload`."""
    return {**payload, "id": point_id, "payload": payload}


def render_text(template: PromptTemplate, point_id: Any, payload: dict) -> str:
    try:
        return template.template.render(context(point_id, payload))
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{template.label}: {_undefined_message(exc)}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{template.label}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise RenderError(f"{template.label}: {type(exc).__name__}: {exc}") from None


_UNDEFINED = re.compile(r"'(?:[^']*' has no attribute ')?([^']+)' is undefined")


def _undefined_message(exc: jinja2.UndefinedError) -> str:
    match = _UNDEFINED.search(str(exc))
    if match:
        return f"'{match.group(1)}' is undefined"
    return str(exc)


def render_body(job: "Job", point_id: Any, payload: dict) -> dict:
    """The request body sent for one point: exactly what the request key is computed on."""
    user = render_text(job.user, point_id, payload)
    system = render_text(job.system, point_id, payload) if job.system else None
    spec = job.spec
    if spec.endpoint == "/v1/chat/completions":
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": user})
        body: dict[str, Any] = {"model": spec.model, "messages": messages, **spec.params}
        if job.output_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": job.schema_name, "strict": True, "schema": job.output_schema}}
    elif spec.endpoint == "/v1/responses":
        body = {"model": spec.model, "input": user, **spec.params}
        if system is not None:
            body["instructions"] = system
        if job.output_schema is not None:
            body["text"] = {"format": {"type": "json_schema", "name": job.schema_name,
                                       "strict": True, "schema": job.output_schema}}
    else:  # /v1/embeddings
        body = {"model": spec.model, "input": user, **spec.params}
    return body
