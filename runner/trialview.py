"""What `batchrun try` prints: each point's inputs beside its validated answer — a table
on a terminal, plain lines anywhere else, or JSON — then what it cost and what was kept.
Failed and invalid answers are shown with their reason, never hidden."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .trial import CACHED, OK, Trial, TrialPoint, estimate_text
from .views import money, plural

if TYPE_CHECKING:
    from rich.table import Table

WIDTH = 80    # characters of an input value shown


def _short(value: Any, width: int = WIDTH) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _answer_text(entry: TrialPoint, *, indent: int | None = None) -> str:
    if entry.status in (OK, CACHED):
        text = entry.answer if isinstance(entry.answer, str) else json.dumps(
            entry.answer, ensure_ascii=False, indent=indent)
        return text + ("  (from the result cache)" if entry.status == CACHED else "")
    return f"{entry.status}: {entry.problem}"


def try_lines(trial: Trial) -> list[str]:
    """Plain lines: each point, its inputs, and → its answer (or ✗ and why)."""
    lines = []
    for entry in trial.points:
        key = f" ({entry.request.key[:12]})" if entry.request else ""
        lines.append(f"point {entry.point.id}{key}")
        lines.extend(f"  {name}: {_short(value)}" for name, value in entry.point.payload.items())
        mark = "→" if entry.status in (OK, CACHED) else "✗"
        lines.append(f"  {mark} {trial.job.writes}: {_answer_text(entry)}")
    return lines + summary_lines(trial)


def try_table(trial: Trial) -> Table:
    """A rich table for a terminal: point, inputs, answer side by side."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{trial.job.name}: {plural(len(trial.points), 'point')}",
                  show_lines=True, expand=True)
    table.add_column("point", no_wrap=True)
    table.add_column("inputs", ratio=3)
    table.add_column(trial.job.writes, ratio=2)
    for entry in trial.points:
        inputs = "\n".join(f"{name}: {_short(value)}"
                           for name, value in entry.point.payload.items())
        style = "" if entry.status == OK else "dim" if entry.status == CACHED else "red"
        table.add_row(str(entry.point.id), Text(inputs),
                      Text(_answer_text(entry, indent=1), style=style))
    return table


def summary_lines(trial: Trial) -> list[str]:
    """What was sent and what it cost (standard prices), what was kept and written."""
    cached = sum(entry.status == CACHED for entry in trial.points)
    lines = []
    if trial.estimate.requests:
        lines.append(f"Estimate: {plural(trial.estimate.requests, 'request')}, "
                     + estimate_text(trial))
        usage = [c.usage for c in trial.calls]
        spent = trial.spent
        lines.append(f"Spent: {plural(len(trial.calls), 'call')}, "
                     f"{sum(u.input_tokens for u in usage):,} input / "
                     f"{sum(u.output_tokens for u in usage):,} output tokens, "
                     + (f"{money(spent)} at standard prices" if spent is not None
                        else "cost unknown (no price for the model)") + ".")
    else:
        lines.append("Nothing sent: every answer came from the result cache.")
    if cached and trial.estimate.requests:
        lines.append(f"{plural(cached, 'answer')} came from the result cache, free.")
    if trial.kept:
        lines.append(f"Kept {plural(trial.kept, 'answer')} in the result cache: the next apply "
                     "writes those points without sending them again.")
    if trial.failed:
        lines.append(f"{plural(trial.failed, 'point')} without a valid answer (✗ above).")
    lines.append(f"Wrote {plural(trial.written, 'point')} to Qdrant." if trial.written else
                 "Nothing was written to Qdrant (--write writes the valid answers).")
    return lines


def try_json(trial: Trial) -> dict[str, Any]:
    spent = trial.spent
    est, cost_ = trial.estimate, trial.cost
    return {
        "job": trial.job.name,
        "points": [{
            "id": entry.point.id, "inputs": entry.point.payload,
            "custom_id": entry.request.key if entry.request else None,
            "status": entry.status, "answer": entry.answer if entry.status in (OK, CACHED)
            else None, "reason": entry.problem,
            "input_tokens": entry.call.usage.input_tokens if entry.call else None,
            "output_tokens": entry.call.usage.output_tokens if entry.call else None,
            "cost_usd": _num(entry.call.cost_usd) if entry.call else None}
            for entry in trial.points],
        "estimate": {"requests": est.requests, "input_tokens": est.input_tokens,
                     "input_tokens_exact": est.input_exact, "output_tokens_max": est.output_cap,
                     "cost_usd_low": _num(cost_.low), "cost_usd_high": _num(cost_.high),
                     "price": "standard", "is_estimate": True},
        "spent": {"calls": len(trial.calls), "billed": sum(c.billed for c in trial.calls),
                  "input_tokens": sum(c.usage.input_tokens for c in trial.calls),
                  "output_tokens": sum(c.usage.output_tokens for c in trial.calls),
                  "cost_usd": _num(spent), "price": "standard"},
        "cached": sum(entry.status == CACHED for entry in trial.points),
        "kept": trial.kept, "written": trial.written, "failed": trial.failed}


def _num(value: Any) -> float | None:
    return None if value is None else float(round(value, 8))
