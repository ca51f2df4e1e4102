"""Rendering a point into the request body that is sent, through sandboxed Jinja.

Templates come from files (under the project, normally `prompts/`) or inline text in the
spec. They run in Jinja's sandbox with StrictUndefined: a template cannot reach Python
internals, and a field a point lacks is an error, not an empty string. Payload text is
data: `{{ title }}` inserts the title's characters literally, even when they contain
`{{ }}` themselves.

Loading checks what can be checked without a point, at the template's own file and line:
syntax, includes (fixed names, inside the project), no `_private` attribute (how sandbox
escapes begin); and it lists the names a template reads, so a spec that selects
`source.fields` can say which name is not among them. A point that fails to render says
the template line.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from .errors import Location, SpecError
from .keys import BodyFrame, digest, sha256_hex
from .yamlfile import read_text

if TYPE_CHECKING:
    from .jobs import Job

TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".txt", ".md", ".tmpl")
# Methods that change a list, dict or set in place: a template reads the point, it never
# changes it (the sandbox refuses them at render time too; a template calling one is
# refused at load, at its line).
MUTATORS = frozenset({"append", "clear", "extend", "insert", "pop", "popitem", "remove",
                      "reverse", "setdefault", "sort", "update", "add", "discard",
                      "difference_update", "intersection_update",
                      "symmetric_difference_update"})
# `'x' * n` and `n ** m` in a template are bounded: a typo must not build gigabytes or
# spin the CPU before the request size cap (batch.max_request_bytes) can say no.
MAX_REPEATED = 10_000_000     # items (characters) one `*` may build
MAX_EXPONENT = 10_000


class RenderError(Exception):
    """One point could not be rendered (a missing field, a filter failing on its value):
    where in which template, and what went wrong."""

    def __init__(self, where: Location, problem: str):
        self.where, self.problem = where, problem
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class PromptTemplate:
    label: str            # where it came from: "prompts/tags.user.j2" or "jobs/tags.yaml:14"
    path: str | None      # project-relative file path, None when inline
    source: str
    template: jinja2.Template
    sources_digest: str   # the template's text and every template it includes
    reads: dict[str, Location] = field(default_factory=dict)  # names it reads, where first
    root: Path = Path(".")
    key: str = ""         # the spec key of an inline template, e.g. prompt.user

    @functools.cached_property
    def constant(self) -> str:
        """The text of a template that reads no variable, rendered once."""
        return self.template.render({})


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, read-only (no method that changes a payload value), with `*` and
    `**` bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                if isinstance(items, (str, list, tuple)) and isinstance(times, int) \
                        and len(items) * times > MAX_REPEATED:
                    text = isinstance(items, str)
                    raise SecurityError(
                        f"the template repeats a {'text' if text else 'list'} {times:,} times "
                        f"({len(items) * times:,} {'characters' if text else 'items'}, over "
                        f"{MAX_REPEATED:,})")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) \
                and abs(left) > 1 and right > MAX_EXPONENT:
            raise SecurityError(f"the template raises to the power {right:,}, over "
                                f"{MAX_EXPONENT:,}")
        return super().call_binop(context, operator, left, right)


def environment(root: Path) -> SandboxedEnvironment:
    return Sandbox(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


def is_template_path(value: str) -> bool:
    """A prompt value naming a file: one word (no spaces, no template tags) that ends like
    a template (any case) or has a folder in it. A misspelt path must fail as a missing
    file, not be sent as the prompt's text."""
    text = value.strip()
    if any(mark in text for mark in ("\n", " ", "{{", "{%")):
        return False
    return text.lower().endswith(TEMPLATE_SUFFIXES) or "/" in text


@dataclass(frozen=True)
class _Part:
    """One template text: the prompt itself or a file it includes, and where it is."""

    source: str
    file: str            # project-relative file, or the spec file for inline text
    first_line: int      # the spec line of the text's first line (inline), else 1
    key: str             # the spec key (inline), else ""

    def at(self, line: int | None) -> Location:
        return Location(self.file, self.first_line + (line or 1) - 1, self.key)


def load_template(env: SandboxedEnvironment, value: str, *, root: Path,
                  where: Location) -> PromptTemplate:
    """A spec's prompt value (a path, or inline text starting on `where.line`) as a compiled
    template, checked without rendering: syntax, includes, and no reach past the sandbox."""
    if is_template_path(value):
        rel = value.strip()
        part = _Part(read_text(project_file(root, rel, where, "template file"), rel), rel, 1, "")
        label = rel
    else:
        rel, label = None, f"{where.file}:{where.line}"
        part = _Part(value, where.file, where.line, where.key)
    template = _compile(env, part)
    if rel:
        template.name = template.filename = rel
    parts = _with_includes(env, part, root)
    stored = {n.name for p in parts for n in p[1].find_all(nodes.Name) if n.ctx == "store"}
    reads: dict[str, Location] = {}
    for included, ast in parts:
        _check_sandbox(ast, included)
        for name in sorted(jinja2.meta.find_undeclared_variables(ast) - stored):
            line = next(n.lineno for n in ast.find_all(nodes.Name) if n.name == name)
            reads.setdefault(name, included.at(line))
    sources = {p.file: sha256_hex(p.source.encode()) for p, _ in parts[1:]}
    return PromptTemplate(label, rel, part.source, template,
                          digest({"source": part.source, "includes": sources}), reads, root,
                          "" if rel else where.key)


def project_file(root: Path, rel: str, where: Location, what: str,
                 example: str = "prompts/tags.user.j2") -> Path:
    """A file the spec names, confined to the project (symlinks resolved): templates and
    schemas go into requests, so nothing else on the machine may be read into one."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise SpecError(f"{what} {rel} is outside the project; expected a path under it",
                        where=where)
    if not path.is_file():
        raise SpecError(f"{what} {rel} not found", where=where,
                        hint=f"paths are relative to the project root, e.g. {example}")
    return path


def _compile(env: SandboxedEnvironment, part: _Part) -> jinja2.Template:
    try:
        return env.from_string(part.source)
    except jinja2.TemplateSyntaxError as exc:
        raise SpecError(f"template syntax error: {exc.message}", where=part.at(exc.lineno),
                        hint="Jinja syntax: {{ field }}, {% if … %}…{% endif %}") from None


def _with_includes(env: SandboxedEnvironment, main: _Part,
                   root: Path) -> list[tuple[_Part, nodes.Template]]:
    """The template and every template it includes (or imports, or extends), parsed; an
    include that is not a fixed file name in the project is an error at its line."""
    parts, seen, pending = [], {main.file}, [main]
    while pending:
        part = pending.pop()
        if part is not main:
            _compile(env, part)
        ast = env.parse(part.source)
        parts.append((part, ast))
        for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            target = getattr(node, "template", None)   # each of these kinds names one
            name = target.value if isinstance(target, nodes.Const) else None
            if not isinstance(name, str):
                raise SpecError("expected a fixed template file name (a quoted path)",
                                where=part.at(node.lineno))
            if name not in seen:
                seen.add(name)
                path = project_file(root, name, part.at(node.lineno), "included template")
                pending.append(_Part(read_text(path, name), name, 1, ""))
    return parts


def _check_sandbox(ast: nodes.Template, part: _Part) -> None:
    """Reading `_private` attributes is how sandbox escapes start (`''.__class__`), and
    calling a method that changes a value (`payload.update(...)`) would change what later
    templates of the point see; the sandbox would refuse both on every point at render
    time; refuse them here, once."""
    for call in ast.find_all(nodes.Call):
        assert isinstance(call, nodes.Call)   # what find_all found
        method = call.node.attr if isinstance(call.node, nodes.Getattr) else None
        if method in MUTATORS:
            raise SpecError(f"templates may not call .{method}(): a template reads the point "
                            "and changes nothing; expected payload fields and their values",
                            where=part.at(call.lineno))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))   # what find_all found
        name = _private_name(node)
        inner = [node.node, *node.node.find_all((nodes.Getattr, nodes.Getitem))]
        if name and not any(_private_name(n) for n in inner):  # the first in a chain
            raise SpecError(f"templates may not read {name!r}: the sandbox blocks names "
                            "starting with '_'; expected payload fields and their values",
                            where=part.at(node.lineno))


def _private_name(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        name = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        name = node.arg.value
    else:
        return None
    return name if isinstance(name, str) and name.startswith("_") else None


def context(point_id: Any, payload: dict) -> dict:
    """What a template sees: each payload field by name, plus `id` and `payload`."""
    return {**payload, "id": point_id, "payload": payload}


def render_text(template: PromptTemplate, point_id: Any, payload: dict) -> str:
    try:
        if not template.reads:        # reads nothing from the point: the same for every point
            return template.constant
        return template.template.render(context(point_id, payload))
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError,
            IndexError) as exc:
        raise RenderError(_failed_at(template, exc), _problem(exc)) from None


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def _problem(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateError):
        name = _UNDEFINED_NAME.match(str(exc)) if isinstance(exc, jinja2.UndefinedError) else None
        return f"payload field {name.group(1)!r} is missing" if name else str(exc)
    return f"{type(exc).__name__}: {exc}"


def _written_at(template: PromptTemplate) -> Location:
    """Where a template is written: its file, or the spec line of an inline one."""
    if template.path is not None:
        return Location(template.path)
    file, first = template.label.rsplit(":", 1)
    return Location(file, int(first), template.key)


def _failed_at(template: PromptTemplate, exc: BaseException) -> Location:
    """The template line that failed (Jinja rewrites its traceback so that the innermost
    frames are template lines); inline templates count from their spec line."""
    filename, line = None, 0
    tb = exc.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    if template.path is None:
        file, first = template.label.rsplit(":", 1)
        return Location(file, int(first) + max(line, 1) - 1 if filename == "<template>"
                        else int(first), template.key)
    if filename is None:
        return Location(template.label)
    path = Path(filename)
    if path.is_absolute() and path.is_relative_to(template.root.resolve()):
        filename = str(path.relative_to(template.root.resolve()))
    return Location(filename, line)



def request_frame(job: Job) -> BodyFrame:
    """What every request body of `job` has in common, and which keys vary per point, in
    the body its provider takes (provider/anthropic_body.py for Anthropic's)."""
    spec = job.spec
    if job.dialect == "anthropic":
        from .provider import anthropic_body

        varying = ("messages", "system") if job.system else ("messages",)
        return BodyFrame(anthropic_body.ENDPOINT, anthropic_body.constant_part(
            spec.model, spec.params, job.output_schema), varying, line="params")
    constant: dict[str, Any] = {"model": spec.model, **spec.params}
    if spec.endpoint == "/v1/chat/completions":
        variable: tuple[str, ...] = ("messages",)
        if job.output_schema is not None:
            constant["response_format"] = {"type": "json_schema", "json_schema": {
                "name": job.schema_name, "strict": True, "schema": job.output_schema}}
    elif spec.endpoint == "/v1/responses":
        variable = ("input", "instructions") if job.system else ("input",)
        if job.output_schema is not None:
            constant["text"] = {"format": {"type": "json_schema", "name": job.schema_name,
                                           "strict": True, "schema": job.output_schema}}
    else:  # /v1/embeddings
        variable = ("input",)
    # Azure OpenAI names its batch endpoints without the version: /chat/completions.
    endpoint = spec.endpoint.removeprefix("/v1") if job.dialect == "azure" else spec.endpoint
    return BodyFrame(endpoint, constant, variable)


def render_parts(job: Job, point_id: Any, payload: dict) -> dict:
    """The keys of a request body that come from the point: messages, or input."""
    user = render_text(job.user, point_id, payload)
    system = render_text(job.system, point_id, payload) if job.system else None
    if job.dialect == "anthropic":
        from .provider.anthropic_body import variable_part

        return variable_part(system, user)
    if job.spec.endpoint == "/v1/chat/completions":
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": user})
        return {"messages": messages}
    if job.spec.endpoint == "/v1/responses" and system is not None:
        return {"input": user, "instructions": system}
    if job.spec.endpoint == "/v1/embeddings":
        return {"input": fit_input(job, user)}
    return {"input": user}


def fit_input(job: Job, text: str) -> str:
    """A text to embed, within the model's input limit: cut to it with input.truncate:
    tokens, else a RenderError — a request over the limit would only fail at the API."""
    from .vectors import input_limit_of

    limit = input_limit_of(job.spec)
    # A token is at least one byte: a text of at most `limit` bytes cannot be over it, and
    # most texts are counted without tokenizing them.
    if limit is None or len(text) <= limit // 4 or len(text.encode("utf-8")) <= limit:
        return text
    from .tokens import encoding_for

    encoding = encoding_for(job.spec.model)
    tokens = encoding.encode_ordinary(text)
    if len(tokens) <= limit:
        return text
    if job.spec.input.truncate == "tokens":
        return encoding.decode(tokens[:limit])
    raise RenderError(_written_at(job.user),
                      f"the text to embed is {len(tokens):,} tokens, over the {limit:,}-token "
                      f"input limit of {job.spec.model} (input.truncate: tokens cuts it)")


def render_body(job: Job, point_id: Any, payload: dict) -> dict:
    """The request body sent for one point: exactly what the request key is computed on."""
    return request_frame(job).body(render_parts(job, point_id, payload))
