"""A starter job that fits a collection: `batchrun init --collection NAME`.

From a sample of the collection's payloads it writes a job that works as written — its
fields are the payload keys the sample has (the most common first), its user prompt shows
each one (with a default where some points lack it, so no point fails to render), and it
asks for one output field — for a person to edit into the job they want, with `render`
and `try` to see what it sends and gets back.
"""

from __future__ import annotations

import json
import keyword
from collections import Counter
from typing import Any

from .datacheck import Sample

MAX_FIELDS = 12
LONG_TEXT = 500           # mean characters above which a field is truncated in the prompt
VECTOR_LENGTH = 32        # a list of this many numbers is an embedding, not an input
# Names a template cannot use bare: Jinja's literals and operators, and what batchrun
# puts beside the payload fields (`id`, `payload`).
_NOT_BARE = {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in",
             "is", "if", "else", "id", "payload", "loop", "self"}


def chosen_fields(data: Sample, output_key: str) -> list[str]:
    """The payload keys a starter job reads: most common first, at most MAX_FIELDS,
    without batchrun's own keys, the job's output key, or stored vectors."""
    seen: Counter[str] = Counter()
    for payload in data.payloads:
        seen.update(key for key, value in payload.items()
                    if not key.startswith("_batchrun_") and key != output_key
                    and not _is_vector(value))
    order = {key: i for i, key in enumerate(data.keys)}
    ranked = sorted(seen, key=lambda key: (-seen[key], order.get(key, 0)))
    return ranked[:MAX_FIELDS]


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= VECTOR_LENGTH and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _reference(name: str) -> str:
    """How a template names a payload field: bare when it can, else payload["name"]."""
    if name.isidentifier() and not keyword.iskeyword(name) and name not in _NOT_BARE:
        return name
    return f"payload[{json.dumps(name, ensure_ascii=False)}]"


def field_line(name: str, data: Sample) -> str:
    """One line of the user prompt: the field's label and its value, as its sampled
    values suggest — text (truncated when long), a list of text joined, anything else as
    Python prints it; with a default when some sampled points lack it."""
    values = [p[name] for p in data.payloads if name in p]
    always = len(values) == len(data.payloads) and None not in values
    ref = _reference(name)
    label = name.replace("_", " ").capitalize()
    if values and all(isinstance(v, str) for v in values if v is not None):
        mean = sum(len(v) for v in values if v) / max(1, len(values))
        value = ref if always else f"{ref} if {ref} is defined and {ref} else '(none)'"
        text = (f"({value})" if value != ref else value) + " | truncate(2000)" \
            if mean > LONG_TEXT else value
    elif values and all(isinstance(v, list) and all(isinstance(i, str) for i in v)
                        for v in values if v is not None):
        text = f'{ref} | join(", ")' if always else \
            f'({ref} if {ref} is defined and {ref} else []) | join(", ") or "(none)"'
    elif always and all(isinstance(v, (int, float, bool)) for v in values):
        text = ref
    else:   # numbers sometimes missing, objects, mixed: as Python prints them
        text = ref if always else f"{ref} if {ref} is defined and {ref} is not none " \
                                  "else '(none)'"
    return f"{label}: {{{{ {text} }}}}"


def job_files(collection: str, data: Sample, job: str) -> dict[str, str]:
    """The job spec and its two prompt templates, by project-relative path."""
    output_key = f"llm_{job}"
    fields = chosen_fields(data, output_key)
    user = "\n".join(field_line(name, data) for name in fields) + "\n"
    system = ("You write a one-sentence summary of a record, for a search index.\n"
              "Use only what the record says; do not guess beyond it.\n")
    steps = [(f"batchrun render {job}", "the exact request apply would send for a point"),
             (f"batchrun try {job}", "answers for 5 points now (synchronous API)"),
             ("batchrun plan", "what apply would send, and what it would cost"),
             ("batchrun apply", "send it as a batch, write the answers into the points")]
    width = max(len(command) for command, _ in steps) + 2
    how = "\n".join(f"#   {command.ljust(width)}{what}" for command, what in steps)
    spec = f"""\
# yaml-language-server: $schema=../schemas/job.schema.json
# Written by `batchrun init --collection {collection}` from a sample of
# {len(data.payloads):,} points. Edit the prompts (prompts/{job}.*.j2) and the output
# fields, then:
{how}
name: {job}
description: A one-sentence summary of each point of {collection}.

source:
  collection: {json.dumps(collection, ensure_ascii=False)}
  fields: {json.dumps(fields, ensure_ascii=False)}

prompt:
  system: prompts/{job}.system.j2
  user: prompts/{job}.user.j2

model: gpt-4o-mini
endpoint: /v1/chat/completions
params: {{temperature: 0, max_tokens: 200}}

output:
  key: {output_key}  # written into each point's payload
  fields:                       # becomes a strict JSON Schema (Structured Outputs)
    summary: {{type: string}}

batch:
  max_attempts: 3

budget:
  max_cost_usd: 1.00            # apply refuses to submit past this estimate
"""
    return {f"jobs/{job}.yaml": spec, f"prompts/{job}.system.j2": system,
            f"prompts/{job}.user.j2": user}
