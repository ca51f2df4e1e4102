"""Why a job has work pending, in words: what changed in its spec since the last apply
(and the diff of a changed template), which points are new or changed (their first ids),
and which fields changed on them. Plan's text and JSON, and the report page, say it the
same way from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import changes

if TYPE_CHECKING:
    from .jobs import Job
    from .reconcile import JobPlan


def plural(count: int, word: str, many: str | None = None) -> str:
    """"1 point", "2 points" (or `many`)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def id_list(ids: Iterable[Any], count: int) -> str:
    """The ids shown, then "… N more" for the rest."""
    shown = list(ids)
    text = ", ".join(str(i) for i in shown)
    return text + (f" … {count - len(shown):,} more" if count > len(shown) else "")


def plan_reasons(plan: JobPlan, job: Job, recorded: Any) -> list[str]:
    """Why work is pending: what changed in the spec since the last apply, then which
    points (their first ids), then which fields changed on them."""
    return pending_reasons(plan, job, recorded) + field_reasons(plan, job, recorded)


def pending_reasons(plan: JobPlan, job: Job, recorded: Any) -> list[str]:
    reasons = []
    points = plan.points
    if recorded is None:
        reasons.append("new job (never applied)")
    elif recorded.fingerprint != job.fingerprint:
        old = recorded.details
        described = [line for line in changes.describe(old, changes.request_shape(job))
                     if not line.startswith("    ")]
        reasons.extend(described or ["spec changed"])
    if plan.new_points:
        # Every point of a job never applied is new: its ids would say nothing.
        ids = "" if recorded is None or points.complete else \
            ": " + id_list(points.ids("new"), points.new.count)
        reasons.append(plural(plan.new_points, "new point") + ids)
    if plan.changed_points and not _spec_changed(job, recorded):
        ids = "" if points.complete else ": " + id_list(points.ids("changed"),
                                                        points.changed.count)
        reasons.append(f"{plural(plan.changed_points, 'point')} changed{ids}")
    if plan.retry_points:
        reasons.append(f"{plural(plan.retry_points, 'failed attempt')} to retry")
    if plan.rerun_points:
        reasons.append(f"{plan.rerun_points:,} never ran (their batch expired, was cancelled "
                       "or found the queue full)")
    for provider, count in sorted(plan.other_provider.items()):
        reasons.append(f"{plural(count, 'point was', 'points were')} answered by another "
                       f"provider ({provider})")
    return reasons


def _spec_changed(job: Job, recorded: Any) -> bool:
    return recorded is not None and recorded.fingerprint != job.fingerprint


def field_reasons(plan: JobPlan, job: Job, recorded: Any) -> list[str]:
    """"title changed on 2 points: 20, 103", per field, most points first; and how many
    changed points have a stamp too old to say which field changed."""
    points = plan.points
    if not points.changed.count or _spec_changed(job, recorded):
        return []
    lines = []
    for name, sample in sorted(points.fields.items(), key=lambda item: (-item[1].count,
                                                                         item[0])):
        ids = id_list(points.ids("changed", name), sample.count)
        lines.append(f"{name} changed on {plural(sample.count, 'point')}: {ids}")
    if points.unnamed and points.fields:
        lines.append(f"{plural(points.unnamed, 'other point')}: no field it reads changed "
                     "since its stamp, or the stamp is too old to say which")
    elif points.unnamed:
        lines.append("which fields changed is unknown: their stamps were written before "
                     "batchrun recorded a digest per field (the next plan can say)")
    return lines


def point_lists(plan: JobPlan) -> list[str]:
    """Every new and changed point's id (`plan --points`), one line per list."""
    points = plan.points
    if not points.complete:
        return []
    lines = []
    if points.new.count:
        lines.append(f"new points ({points.new.count:,}): "
                     + ", ".join(map(str, points.ids("new"))))
    if points.changed.count:
        lines.append(f"changed points ({points.changed.count:,}): "
                     + ", ".join(map(str, points.ids("changed"))))
    return lines


def spec_diff(job: Job, recorded: Any) -> list[str]:
    """The indented diff lines of changed templates, for the text plan."""
    if recorded is None or recorded.fingerprint == job.fingerprint or not recorded.details:
        return []
    lines = changes.describe(recorded.details, changes.request_shape(job))
    return [line for line in lines if line.startswith("    ")]
