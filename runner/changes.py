"""Why a job's requests changed: comparing what shapes them now with the last apply.

The ledger keeps, per job, the parts of its fingerprint in readable form (model,
endpoint, params, fields, output key, schema, template sources). `plan` compares them
with the spec as it is now and says what changed — "model gpt-4o-mini → gpt-4.1-mini",
"template prompts/tags.user.j2 changed" with a short diff — the way terraform explains a
plan, instead of only "fingerprint differs".
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from .spec import Job

DIFF_LINES = 12


def details(job: Job) -> dict[str, Any]:
    """What shapes a job's request bodies, readable, for the next plan to compare with."""
    spec = job.spec
    templates = {}
    for role, template in (("system", job.system), ("user", job.user)):
        if template is not None:
            templates[role] = {"label": template.label, "source": template.source,
                               "digest": template.sources_digest}
    return {"model": spec.model, "endpoint": spec.endpoint, "params": spec.params,
            "fields": spec.source.fields, "output_key": job.output_key,
            "schema": job.output_schema, "templates": templates}


def describe(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Readable differences, most important first; each may carry indented diff lines."""
    if old is None:
        return []
    lines = []
    for name in ("model", "endpoint", "output_key"):
        if old.get(name) != new.get(name):
            lines.append(f"{name.replace('_', ' ')} {old.get(name)} → {new.get(name)}")
    old_params, new_params = old.get("params") or {}, new.get("params") or {}
    for key in sorted(set(old_params) | set(new_params)):
        if old_params.get(key) != new_params.get(key):
            lines.append(f"params.{key} {_show(old_params.get(key))} → {_show(new_params.get(key))}")
    if old.get("fields") != new.get("fields"):
        lines.append(f"source.fields {_show(old.get('fields'))} → {_show(new.get('fields'))}")
    if old.get("schema") != new.get("schema"):
        lines.append("output schema changed")
    old_t, new_t = old.get("templates") or {}, new.get("templates") or {}
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
