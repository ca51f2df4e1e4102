"""What `plan` and `apply` print: the same facts as readable text and as stable JSON.

Every function here takes results and returns either lines of text or a JSON-able dict;
nothing here computes anything that is not already in the results or the ledger, so the
text and the JSON can never disagree. The other commands' output is tables.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import failedpoints
from .provider import config as providers
from .reasons import field_reasons, pending_reasons, plan_reasons, plural, point_lists, spec_diff

MAX_LISTED_POINTS = 1000   # failed points listed by apply --json (show --failed lists more)

if TYPE_CHECKING:
    from .apply import ApplyResult
    from .datacheck import DataWarning
    from .estimate import CostRange
    from .jobs import Job
    from .reconcile import JobPlan
    from .workspace import Workspace


def money(amount: Decimal | float | None) -> str:
    if amount is None:
        return "unknown"
    amount = Decimal(str(amount))
    if 0 < abs(amount) < Decimal("0.0001"):   # two significant digits, never "$0.0000"
        return f"${amount:.{1 - amount.adjusted()}f}"
    return f"${amount:.4f}" if amount < 1 else f"${amount:,.2f}"


def cost_text(cost: CostRange, close_model: str | None = None) -> str:
    if not cost.known:
        if close_model:
            return f"cost unknown: no model of that name has a price; did you mean {close_model}?"
        return "cost unknown (no price for this model; add one under prices: in batchrun.yaml)"
    high = money(cost.high) if cost.high is not None else "unbounded (no max_tokens)"
    return f"~{money(cost.low)}–{high} at batch prices (estimate)"


def plan_symbol(plan: JobPlan, recorded: bool) -> str:
    if not recorded:
        return "+"
    return "=" if plan.done and not plan.cached else "~"


def empty_line(job: Job) -> str:
    """A job that selects no point: not "up to date", and where to look."""
    source = job.spec.source
    if source.filter:
        return (f"! {job.name} ({job.file}): 0 matched — source.filter selects no point of "
                f"{source.collection!r} ({job.at('source', 'filter')})")
    return f"! {job.name} ({job.file}): 0 matched — collection {source.collection!r} is empty"


def plan_lines(ws: Workspace, plans: dict[str, JobPlan],
               warnings: list[DataWarning] | None = None) -> list[str]:
    recorded = ws.ledger.jobs()
    lines, total_requests, low, high, up_to_date = [], 0, Decimal(0), Decimal(0), 0
    empty = sum(plans[job.name].matched == 0 for job in ws.jobs)
    cached = sum(plan.cached for plan in plans.values())
    unknown = unbounded = False
    several = len({providers.provider_id(job.provider) for job in ws.jobs}) > 1
    for job in ws.jobs:
        plan = plans[job.name]
        symbol = plan_symbol(plan, job.name in recorded)
        head = f"{symbol} {job.name} ({job.file}): {plan.matched:,} matched"
        if plan.matched == 0:
            lines.append(empty_line(job))
            lines.extend(f"    warning: {w.text()}" for w in warnings or () if w.job == job.name)
            continue
        if plan.done and not plan.failed and not plan.point_failures and not plan.unready:
            lines.append(head + ", all up to date")
            up_to_date += 1
            continue
        lines.append(head + " — " + ", ".join(_counts(plan, job)))
        if several:
            lines.append(f"    provider: {providers.label(job.provider)} "
                         f"({providers.provider_id(job.provider)})")
        # the field reasons follow, a line each
        why = pending_reasons(plan, job, recorded.get(job.name))
        if why and (plan.pending or plan.cached):
            lines.append("    why: " + "; ".join(why))
            lines.extend("    " + line for line in spec_diff(job, recorded.get(job.name)))
            lines.extend("    " + line for line in point_lists(plan))
            lines.extend("    " + line for line in field_reasons(plan, job,
                                                                  recorded.get(job.name)))
        if plan.requests:
            est = plan.estimate
            cost = ws.cost_range(job, est)
            cap = ("output uncapped" if est.output_cap is None
                   else "no output tokens" if est.output_cap == 0   # embeddings bill input only
                   else f"≤ {est.output_cap:,} output tokens")
            exact = "exact" if est.input_exact else "approximate"
            lines.append(f"    estimate: {est.input_tokens:,} input tokens ({exact}), {cap}; "
                         + cost_text(cost, ws.prices.close_to(job.spec.model)))
            if cost.known and cost.output_mean is not None:
                lines.append(f"    (the low end assumes {cost.output_mean:,.0f} output tokens a "
                             "request: the average of this job's answers so far)")
            if _over_budget(job, cost):
                lines.append(f"    over budget: up to {money(cost.high)} against "
                             f"budget.max_cost_usd {money(job.spec.budget.max_cost_usd)} "
                             f"({job.at('budget', 'max_cost_usd')}): apply will refuse this job")
            total_requests += plan.requests
            unknown |= not cost.known
            unbounded |= cost.high is None
            low += cost.low or 0
            high += cost.high or 0
        for failures in plan.point_failures.values():
            lines.append(f"    cannot be sent: {failures.reason} on {failures.count:,} "
                         f"point{'s' * (failures.count != 1)} "
                         f"(ids {', '.join(map(str, failures.sample))}"
                         f"{', …' if failures.count > len(failures.sample) else ''})")
    pending_jobs = len(ws.jobs) - up_to_date - empty
    if pending_jobs:
        summary = f"Plan: {plural(pending_jobs, 'job')}, {plural(total_requests, 'request')}"
    else:
        summary = "Plan: nothing to do"
    if total_requests:
        summary += (", cost unknown" if unknown else
                    f", ~{money(low)}–{'unbounded' if unbounded else money(high)} (estimate)")
    if cached:
        summary += f", {plural(cached, 'point')} to write from the result cache (free)"
    tail = [f"{plural(up_to_date, 'job')} up to date"] if up_to_date else []
    if empty:
        tail.append(f"{plural(empty, 'job selects', 'jobs select')} no point")
    lines.append(summary + "".join("; " + part for part in tail) + ".")
    if several:
        for provider, figures in provider_figures(ws, plans).items():
            if figures["requests"]:
                high = figures["cost_usd_high"]
                span = ("cost unknown" if figures["cost_usd_low"] is None else
                        f"~{money(figures['cost_usd_low'])}–"
                        f"{'unbounded' if high is None else money(high)}")
                lines.append(f"  {figures['label']} ({provider}): {figures['requests']:,} "
                             f"requests, {span} (estimate)")
    return lines


def provider_figures(ws: Workspace, plans: dict[str, JobPlan]) -> dict[str, dict[str, Any]]:
    """Per provider: its jobs, the requests they would send, their input tokens and the
    estimated cost range (None: unknown, or unbounded at the high end)."""
    out: dict[str, dict[str, Any]] = {}
    for job in ws.jobs:
        plan = plans[job.name]
        who = providers.provider_id(job.provider)
        entry = out.setdefault(who, {"label": providers.label(job.provider), "jobs": [],
                                     "requests": 0, "input_tokens": 0,
                                     "cost_usd_low": Decimal(0), "cost_usd_high": Decimal(0)})
        entry["jobs"].append(job.name)
        entry["requests"] += plan.requests
        entry["input_tokens"] += plan.estimate.input_tokens
        if not plan.requests:
            continue
        cost = ws.cost_range(job, plan.estimate)
        entry["cost_usd_low"] = None if cost.low is None or entry["cost_usd_low"] is None \
            else entry["cost_usd_low"] + cost.low
        entry["cost_usd_high"] = None if cost.high is None or entry["cost_usd_high"] is None \
            else entry["cost_usd_high"] + cost.high
    return out


def _over_budget(job: Job, cost: CostRange) -> bool:
    """The upper estimate is over the job's own budget: apply will refuse it."""
    limit = job.spec.budget.max_cost_usd
    return limit is not None and cost.high is not None and cost.high > Decimal(str(limit))


def _needs_label(job: Job) -> str:
    return f"waiting for {', '.join(job.spec.needs)}"


def _counts(plan: JobPlan, job: Job) -> list[str]:
    parts = []
    for label, value in (("up to date", plan.up_to_date),
                         ("to write from the result cache", plan.cached),
                         ("in flight", plan.in_flight), ("waiting", plan.waiting),
                         ("failed", plan.failed), (_needs_label(job), plan.unready),
                         ("cannot be sent (see below)", plan.point_failed)):
        if value:
            parts.append(f"{value:,} {label}")
    if plan.pending:
        extra = f" ({plan.requests:,} distinct requests)" if plan.requests != plan.pending else ""
        parts.append(f"{plan.pending:,} to submit{extra}")
    return parts


def plan_json(ws: Workspace, plans: dict[str, JobPlan],
              warnings: list[DataWarning] | None = None) -> dict[str, Any]:
    recorded = ws.ledger.jobs()
    jobs = {}
    for job in ws.jobs:
        plan = plans[job.name]
        entry = job_counts(plan)
        entry["status"] = "empty" if plan.matched == 0 else \
            {"+": "new", "~": "changed", "=": "up_to_date"}[plan_symbol(plan, job.name in recorded)]
        entry["reasons"] = plan_reasons(plan, job, recorded.get(job.name))
        entry["points"] = points_json(plan)
        cost = ws.cost_range(job, plan.estimate)
        entry["estimate"] = {
            "requests": plan.estimate.requests, "input_tokens": plan.estimate.input_tokens,
            "input_tokens_exact": plan.estimate.input_exact,
            "output_tokens_max": plan.estimate.output_cap,
            "output_tokens_mean": cost.output_mean,
            "cost_usd_low": _num(cost.low), "cost_usd_high": _num(cost.high),
            "is_estimate": True, "over_budget": _over_budget(job, cost)}
        entry["provider"] = providers.provider_id(job.provider)
        jobs[job.name] = entry
    figures = {who: {**f, "cost_usd_low": _num(f["cost_usd_low"]),
                     "cost_usd_high": _num(f["cost_usd_high"])}
               for who, f in provider_figures(ws, plans).items()}
    return {"jobs": jobs, "providers": figures,
            "pending": any(not p.done for p in plans.values()),
            "warnings": [w.to_json() for w in warnings or ()]}


def points_json(plan: JobPlan) -> dict[str, Any]:
    """Which points are new or changed, and the fields changed on them: the first few
    ids of each, or all of them (`complete`, with `plan --points`)."""
    points = plan.points
    return {"new": {"count": points.new.count, "ids": list(points.ids("new"))},
            "changed": {"count": points.changed.count, "ids": list(points.ids("changed"))},
            "fields": {name: {"count": sample.count, "ids": list(points.ids("changed", name))}
                       for name, sample in sorted(points.fields.items())},
            "fields_unknown": points.unnamed, "complete": points.complete}


def job_counts(plan: JobPlan) -> dict[str, Any]:
    return {"matched": plan.matched, "up_to_date": plan.up_to_date, "cached": plan.cached,
            "in_flight": plan.in_flight, "waiting": plan.waiting, "failed": plan.failed,
            "unready": plan.unready, "to_submit": plan.pending, "requests": plan.requests,
            "render_errors": {f.reason: f.count for f in plan.point_failures.values()},
            "failed_points": plan.point_failed,
            "point_failures": [{"reason": f.reason, "count": f.count, "ids": f.sample}
                               for f in plan.point_failures.values()]}


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value, 8))


def apply_lines(ws: Workspace, out: ApplyResult,
                warnings: list[DataWarning] | None = None) -> list[str]:
    lines = []
    for job in ws.jobs:
        run = out.runs.get(job.name)
        if job.name in out.refused and run is None:
            lines.append(f"{job.name}: not run (refused, see the error below)")
            continue
        if run is None:
            lines.append(f"{job.name}: not run ({out.blocked.get(job.name, 'blocked')})")
            continue
        if run.last.matched == 0:
            lines.append(empty_line(job)[2:])
            lines.extend(f"    warning: {w.text()}" for w in warnings or () if w.job == job.name)
            continue
        parts = [f"{run.last.matched:,} matched"]
        if run.sent:
            parts.append(f"{plural(run.sent, 'request')} sent in "
                         f"{plural(run.shards, 'batch', 'batches')}")
        if run.written:
            cached = run.written_from_cache
            free = f" ({cached:,} from the result cache, nothing sent)" if cached else ""
            parts.append(f"{run.written:,} written{free}")
        for label, value in (("in flight", run.in_flight), ("waiting to be sent", run.unsent),
                             ("failed", run.failed), ("cannot be sent", run.failed_points),
                             (_needs_label(job), run.last.unready)):
            if value:
                parts.append(f"{value:,} {label}")
        if len(parts) == 1:
            parts.append("all up to date")
        if job.name in out.refused:
            parts.append("then stopped by its budget (see the error below)")
        lines.append(f"{job.name}: " + ", ".join(parts))
        if run.prepared:
            lines.append(f"    {run.prepared:,} of the points in flight wait for a shard another "
                         "job prepared: `batchrun submit` sends it")
        for row in ws.ledger.failures(job.name, limit=5) if run.failed else ():
            lines.append(f"    failed {row.key[:12]}: {row.last_error}")
        for point in (failedpoints.listed(ws.ledger_of(job.name), job.name, limit=5)
                      if run.failed_points else ()):
            lines.append(f"    point {point.point} cannot be sent: {point.reason}")
        if run.failed_points > 5:
            lines.append(f"    … {run.failed_points - 5:,} more: `batchrun show {job.name} "
                         "--failed --limit N`")
    lines.append(totals_line(ws, [c.batch_id for c in out.collected], out))
    return lines


def totals_line(ws: Workspace, batch_ids: list[str], out: ApplyResult) -> str:
    rows = [r for r in ws.ledger.batches() if r.batch_id in set(batch_ids)]
    tokens_in = sum(r.input_tokens or 0 for r in rows)
    tokens_out = sum(r.output_tokens or 0 for r in rows)
    costs = [r.cost_usd for r in rows]
    standard = [r.cost_standard_usd for r in rows]
    text = (f"Done: {out.submitted} batch{'es' * (out.submitted != 1)} submitted, "
            f"{len(rows)} collected")
    if rows:
        text += f", {tokens_in:,} input / {tokens_out:,} output tokens"
        if all(c is not None for c in costs):
            spent = sum((Decimal(c) for c in costs if c is not None), Decimal(0))
            text += f", {money(spent)} at batch prices"
            if all(s is not None for s in standard):
                at_standard = sum((Decimal(s) for s in standard if s is not None), Decimal(0))
                text += f" ({money(at_standard)} at standard prices)"
        else:
            text += ", cost unknown for some batches (no price for the model)"
    if out.in_flight:
        text += f"; {out.in_flight:,} points still in flight or to send (run apply again)"
    return text + "."


def apply_json(ws: Workspace, out: ApplyResult,
               warnings: list[DataWarning] | None = None) -> dict[str, Any]:
    jobs = {}
    for job in ws.jobs:
        run = out.runs.get(job.name)
        entry: dict[str, Any]
        if run is None and job.name in out.refused:
            entry = {"refused": out.refused[job.name].one_line()}
        elif run is None:
            entry = {"blocked": out.blocked.get(job.name) or "blocked"}
        else:
            entry = {"matched": run.last.matched, "up_to_date": run.up_to_date,
                     "in_flight": run.in_flight, "waiting": run.unsent, "failed": run.failed,
                     "unready": run.last.unready, "sent": run.sent, "written": run.written,
                     "written_from_cache": run.written_from_cache, "batches": run.shards,
                     "failed_points": run.failed_points, "point_failures": [
                         {"point": r.point, "reason": r.reason}
                         for r in failedpoints.listed(ws.ledger_of(job.name), job.name,
                                                     limit=MAX_LISTED_POINTS)]}
            if job.name in out.refused:   # stopped by its budget after a first pass
                entry["refused"] = out.refused[job.name].one_line()
        entry["failures"] = [{"key": r.key, "attempts": r.attempts, "reason": r.last_error}
                             for r in ws.ledger.failures(job.name)]
        jobs[job.name] = entry
    return {"jobs": jobs, "submitted": out.submitted, "adopted": out.adopted,
            "collected": [{"batch_id": c.batch_id, "job": c.job, "status": c.status,
                           "lines": dict(c.seen), "cost_usd": _num(c.cost_usd),
                           "problems": c.problems, "note": c.note}
                          for c in out.collected],
            "failed": out.failed, "failed_points": out.failed_points,
            "in_flight": out.in_flight,
            "refused": sorted(out.refused), "stalled": out.stalled,
            "warnings": [w.to_json() for w in warnings or ()]}
