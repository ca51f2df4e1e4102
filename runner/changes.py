"""What shapes a job's requests, in one place: its fingerprint, and what changed.

`request_shape(job)` lists everything that decides a job's request bodies and where the
answers go — model, endpoint, params, the fields read, the output key, the output schema
and its name, and the templates (their text and what they include). The fingerprint is
its digest; the ledger keeps the shape of the last apply, and `plan` compares it with the
spec as it is now to say what changed — "model gpt-4o-mini → gpt-4.1-mini", "template
prompts/tags.user.j2 changed" with a short diff — the way terraform explains a plan.
Description, budget, batch sizes and the selection are not in the shape: changing them
sends nothing.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

from .keys import digest

if TYPE_CHECKING:
    from .jobs import Job

DIFF_LINES = 12
# The parts of the shape that are single values, in the order a plan names them.
_SCALARS = (("model", "model"), ("endpoint", "endpoint"), ("output_key", "output key"),
            ("schema_name", "output.name"))


def request_shape(job: Job) -> dict[str, Any]:
    """What shapes a job's request bodies, readable, for the next plan to compare with."""
    spec = job.spec
    templates = {}
    for role, template in (("system", job.system), ("user", job.user)):
        if template is not None:
            templates[role] = {"label": template.label, "source": template.source,
                               "digest": template.sources_digest}
    return {"model": spec.model, "endpoint": spec.endpoint, "params": spec.params,
            "fields": spec.source.fields, "output_key": job.output_key,
            "schema": job.output_schema, "schema_name": job.schema_name,
            "templates": templates}


def fingerprint(shape: dict[str, Any]) -> str:
    """The digest of a shape. A template counts by its text and includes, not its path."""
    templates = shape["templates"]
    return digest({
        "endpoint": shape["endpoint"], "model": shape["model"], "params": shape["params"],
        "system": templates["system"]["digest"] if "system" in templates else None,
        "user": templates["user"]["digest"], "schema": shape["schema"],
        "schema_name": shape["schema_name"], "fields": shape["fields"],
        "output_key": shape["output_key"],
    })


def describe(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Readable differences, most important first; each may carry indented diff lines."""
    if old is None:
        return []
    lines = []
    for name, label in _SCALARS:
        if name in old and old.get(name) != new.get(name):   # older ledgers lack schema_name
            lines.append(f"{label} {old.get(name)} → {new.get(name)}")
    old_params, new_params = old.get("params") or {}, new.get("params") or {}
    for key in sorted(set(old_params) | set(new_params)):
        if old_params.get(key) != new_params.get(key):
            was, now = _show(old_params.get(key)), _show(new_params.get(key))
            lines.append(f"params.{key} {was} → {now}")
    if old.get("fields") != new.get("fields"):
        lines.append(f"source.fields {_show(old.get('fields'))} → {_show(new.get('fields'))}")
    if old.get("schema") != new.get("schema"):
        lines.append("output schema changed")
    old_t: dict[str, dict] = old.get("templates") or {}
    new_t: dict[str, dict] = new.get("templates") or {}
    for role in ("system", "user"):
        before, after = old_t.get(role), new_t.get(role)
        if before == after:
            continue
        if before is None or after is None:
            lines.append(f"{role} prompt {'added' if before is None else 'removed'}")
        elif before["source"] != after["source"]:
            lines.append(f"template {after['label']} changed")
            lines.extend("    " + line for line in _diff(before["source"], after["source"]))
        elif before["digest"] != after["digest"]:
            lines.append(f"a template included by {after['label']} changed")
    return lines


def _diff(before: str, after: str) -> list[str]:
    diff = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                   lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]
    if len(diff) > DIFF_LINES:
        diff = diff[:DIFF_LINES] + [f"… {len(diff) - DIFF_LINES} more changed lines"]
    return diff


def _show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, ensure_ascii=False)
