"""Saved plans, for review in CI: `batchrun plan -o plan.json`, then `batchrun apply
plan.json` applies exactly what was reviewed — or refuses, saying what changed.

What a plan commits to, per job: the spec that shapes its requests (its fingerprint, and
the readable shape, to say what changed), the requests it would send (how many, and an
order-independent digest of their keys: the same requests give the same digest, any other
set does not), and how many points it would write from the result cache for free. The file
also holds the plan as `plan --json` shows it, for the reviewer.

`apply plan.json` first runs the same pass as `plan`, under the lock and before it adopts,
sends or writes anything, and compares: a spec that changed, a point whose data changed,
a point added — anything that would make apply send another set of requests — refuses the
whole run, naming each job and why. The points a plan shows waiting for a job they need
are sent once that job has answered them, as the plan said: their requests are only known
then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import changes
from .errors import BatchrunError, Location
from .keys import KEY_SCHEME, KEY_SET_SCHEME
from .reconcile import JobPlan
from .records import utc_now
from .views import plural
from .workspace import Workspace

FORMAT = "batchrun-plan/1"


def save(path: Path, ws: Workspace, plans: dict[str, JobPlan], paths: list[str],
         shown: dict[str, Any]) -> None:
    """Write the plan to `path` (a temp file renamed: never half-written)."""
    root = ws.project.root
    data = {
        "format": FORMAT, "created_at": utc_now(), "provider": ws.project.provider_id,
        "key_scheme": KEY_SCHEME, "key_set_scheme": KEY_SET_SCHEME,
        "paths": [os.path.relpath(Path(p).resolve(), root) for p in paths],
        "jobs": {job.name: {
            "file": job.file, "fingerprint": job.fingerprint,
            "shape": changes.request_shape(job),
            "target": ws.project.target_id(job.spec.source.collection),
            "requests": plans[job.name].requests,
            "keys_digest": plans[job.name].keys.hexdigest(),
            "cached": plans[job.name].cached,
            "unready": plans[job.name].unready} for job in ws.jobs},
        "plan": shown}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def load(path: Path, display: str) -> dict[str, Any]:
    """A saved plan's data; a readable error when it is not one this batchrun wrote."""
    where = Location(display)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BatchrunError("no such saved plan", where=where,
                            hint="`batchrun plan -o plan.json` writes one") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchrunError(f"not a saved plan: {exc}", where=where,
                            hint="`batchrun plan -o plan.json` writes one") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        raise BatchrunError(f"not a saved plan of this batchrun (format {got!r}, expected "
                            f"{FORMAT!r})", where=where,
                            hint="make the plan with the batchrun that applies it")
    if (data.get("key_scheme"), data.get("key_set_scheme")) != (KEY_SCHEME, KEY_SET_SCHEME):
        raise BatchrunError("the plan's request keys were computed another way",
                            where=where, hint="make the plan with the batchrun that applies it")
    return data


def job_paths(data: dict[str, Any], root: Path) -> list[str]:
    """The job specs the plan was made for, as absolute paths (none: the jobs folder)."""
    return [str(root / p) for p in data.get("paths", [])]


def verify(ws: Workspace, data: dict[str, Any], display: str) -> None:
    """Refuse, before anything is sent or written, unless what apply would do now is what
    the saved plan says."""
    if data["provider"] != ws.project.provider_id:
        raise BatchrunError(f"the plan was made for {data['provider']}, and the provider "
                            f"is now {ws.project.provider_id}", where=Location(display),
                            hint="plan again against this provider, review it, apply it")
    saved: dict[str, Any] = data["jobs"]
    now = {job.name for job in ws.jobs}
    problems = []
    if set(saved) != now:
        problems.append(f"the plan covers {_names(set(saved))}, the specs now give "
                        f"{_names(now)}")
    plans = ws.plan()
    if set(saved) == now and _spent(ws.jobs, saved, plans):
        raise BatchrunError("this plan has been applied already: every job it covers is up "
                            "to date now, and a saved plan is spent once applied",
                            where=Location(display),
                            hint="`batchrun plan` shows what is pending now; nothing was sent")
    for job in ws.jobs:
        if job.name in saved:
            problems.extend(f"{job.name}: {p}" for p in _changed(job, saved[job.name],
                                                                 plans[job.name]))
    if problems:
        raise BatchrunError(f"the specs or the data changed since this plan was made, so "
                            f"apply would not do what was reviewed: {'; '.join(problems)}",
                            where=Location(display),
                            hint=f"plan again (`batchrun plan -o {display}`), review it, and "
                                 "apply that; nothing was sent")


def _spent(jobs: list[Any], saved: dict[str, Any], plans: dict[str, JobPlan]) -> bool:
    """The plan had work, its specs are unchanged, and none is left: it was applied."""
    had_work = any(s["requests"] or s["cached"] for s in saved.values())
    return had_work and all(
        saved[job.name]["fingerprint"] == job.fingerprint and not plans[job.name].requests
        and not plans[job.name].cached and not plans[job.name].unready for job in jobs)


def _names(names: set[str]) -> str:
    return ", ".join(sorted(names)) or "no job"


def _changed(job: Any, saved: dict[str, Any], plan: JobPlan) -> list[str]:
    """Why the job's part of the plan no longer holds, most telling first."""
    if saved["fingerprint"] != job.fingerprint:
        described = [line for line in changes.describe(saved["shape"],
                                                       changes.request_shape(job))
                     if not line.startswith("    ")]
        return [f"its spec changed ({', '.join(described) or 'the request shape'})"]
    out = []
    if plan.requests != saved["requests"]:
        out.append(f"it would send {plural(plan.requests, 'request')}, the plan "
                   f"{saved['requests']:,}" + _which(plan))
    elif plan.keys.hexdigest() != saved["keys_digest"]:
        out.append(f"it would send other requests than the plan (as many, "
                   f"{plan.requests:,}): the data they are rendered from changed"
                   + _which(plan))
    if plan.cached != saved["cached"]:
        out.append(f"it would write {plural(plan.cached, 'point')} from the result cache, "
                   f"the plan {saved['cached']:,}")
    return out


def _which(plan: JobPlan) -> str:
    """The points behind a difference, as plan names them."""
    parts = []
    if plan.points.new.count:
        parts.append(f"new now: {', '.join(map(str, plan.points.new.sample))}")
    if plan.points.changed.count:
        parts.append(f"changed now: {', '.join(map(str, plan.points.changed.sample))}")
    return f" ({'; '.join(parts)})" if parts else ""
