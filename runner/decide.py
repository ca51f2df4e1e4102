"""The make-like rule for one point, as pure functions: what does it need?

reconcile.py gathers the facts about a point (its stamp, the digest of its inputs, its
request key, a cached answer, the request's state in the ledger) and acts on the verdict;
the verdict itself is decided here, with no I/O, so the rule can be tested as a table.

    unchanged since its stamp           → up to date (not even rendered)
    rendered to the stamp's key, and    → up to date (the stamp's digest is renewed)
      written where the job writes now
    its key has a cached answer         → cached: written now, for free
    its key is in a batch in flight     → in flight
    its key failed for good             → failed
    its key backs off before a retry    → waiting
    anything else                       → pending, and why: new, changed, a retry, a
                                          rerun (its batch ended before it ran), or an
                                          answer that came from another provider
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .records import FAILED, QUEUED, RETRY, RequestState, Result


class Verdict(enum.Enum):
    UP_TO_DATE = "up_to_date"
    RESTAMP = "restamp"          # up to date; the stamp's inputs digest is renewed
    CACHED = "cached"
    IN_FLIGHT = "in_flight"
    FAILED = "failed"
    WAITING = "waiting"
    PENDING = "pending"


class Why(enum.Enum):
    """Why a pending point must be sent."""

    NEW = "new"                  # never written
    CHANGED = "changed"          # its inputs (or the spec) changed since its stamp
    RETRY = "retry"              # an earlier attempt failed
    RERUN = "rerun"              # its batch ended before it ran (expired, cancelled, full)
    OTHER_PROVIDER = "other_provider"   # its answer came from another provider


@dataclass(frozen=True)
class Rules:
    """What this run counts as current. Forced (`apply --force`), stamps and cached
    answers count only when they come from `fresh_batches`, the batches this run sent."""

    provider: str
    force: bool = False
    fresh_batches: frozenset[str] = frozenset()
    writes: str | None = None    # where the job writes its result now (Job.writes)

    def counts(self, batch_id: str | None) -> bool:
        return not self.force or batch_id in self.fresh_batches


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    why: Why | None = None       # for PENDING


def stamp_counts(stamp: dict | None, rules: Rules) -> bool:
    """A stamp counts only for the provider that wrote it: switching from the emulator to
    the real API must send every request for real."""
    return stamp is not None and stamp.get("provider") == rules.provider \
        and rules.counts(stamp.get("batch"))


def unchanged(stamp: dict | None, inputs: str, rules: Rules) -> bool:
    """Up to date without rendering: the stamp was written from these very inputs."""
    return stamp_counts(stamp, rules) and stamp is not None and stamp.get("inputs") == inputs


def decide(stamp: dict | None, key: str, cached: Result | None,
           request: RequestState | None, now: float, rules: Rules) -> Decision:
    """The verdict for a rendered point whose request key is `key`."""
    if stamp_counts(stamp, rules) and stamp is not None and stamp.get("key") == key \
            and stamp.get("to", rules.writes) == rules.writes:
        return Decision(Verdict.RESTAMP)
    if cached is not None and rules.counts(cached.batch_id):
        return Decision(Verdict.CACHED)
    if request is not None and request.state == QUEUED:
        return Decision(Verdict.IN_FLIGHT)
    if request is not None and request.state == FAILED:
        return Decision(Verdict.FAILED)
    if request is not None and request.state == RETRY and request.not_before > now:
        return Decision(Verdict.WAITING)
    return Decision(Verdict.PENDING, _why(stamp, request, rules))


def _why(stamp: dict | None, request: RequestState | None, rules: Rules) -> Why:
    if request is not None and request.attempts:
        return Why.RETRY
    if request is not None:
        return Why.RERUN       # known to the ledger, never failed: its batch ended first
    if stamp is not None and stamp.get("provider") != rules.provider:
        return Why.OTHER_PROVIDER
    if stamp is not None:
        return Why.CHANGED
    return Why.NEW


def changed_fields(stamp: dict | None, fields: dict[str, str]) -> list[str] | None:
    """The fields whose digest differs from the one the stamp recorded, sorted; None when
    the stamp recorded none (written before stamps had field digests): it cannot say."""
    old = (stamp or {}).get("fields")
    if not isinstance(old, dict):
        return None
    return sorted(name for name in set(old) | set(fields) if old.get(name) != fields.get(name))
