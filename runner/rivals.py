"""One batch per shard, however many copies of a project submit it.

Two folders of one project (two CI runners, two laptops) share neither a ledger nor a
lock, so both may create a batch for the same shard. Every batch carries its target, job
and shard in its metadata, and whenever batchrun lists batches and finds more than one
for a shard, every copy applies the same rule and so reaches the same answer without
talking to the others: the batch kept is the earliest created (ties: the smallest id) of
those running or completed; the others are cancelled if still running and recorded as
superseded — never adopted, collected or retried. Cancelling a batch that is still
validating costs nothing: none of its requests has run. A copy whose own batch was given
up follows the kept one and collects its answers.

Each copy lists right after creating its batches, so of two creates of one shard, the
later one is always followed by a list that shows both (when the list does not lag), and
a batch cancelled by another copy is noticed at the next poll or run.

What this does not cover: two batches that both leave `validating` before either copy
lists them (a list lagging behind creation by longer than validation takes) run twice; a
given-up batch that had already run some requests is paid for and its answers unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

RUNNING = ("validating", "in_progress", "finalizing")
USABLE = (*RUNNING, "completed")     # a batch whose answers are, or will be, there


class Listed(Protocol):
    """What the rule reads of a batch (the SDK's Batch has it)."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def created_at(self) -> float: ...


B = TypeVar("B", bound=Listed)


@dataclass(frozen=True)
class Settlement(Generic[B]):
    """The decision about the batches of one shard."""

    kept: B | None                                  # None: none running or completed
    cancel: list[B] = field(default_factory=list)   # given up, still running: cancel them
    given_up: list[B] = field(default_factory=list)  # every batch but the kept one


def settle(batches: Sequence[B]) -> Settlement[B]:
    """Which of several batches of one shard to keep, and which to give up. Without a
    batch running or completed there is nothing to choose: each is dealt with alone."""
    usable = [b for b in batches if b.status in USABLE]
    if not usable:
        return Settlement(None)
    kept = min(usable, key=lambda b: (b.created_at, b.id))
    others = [b for b in batches if b.id != kept.id]
    return Settlement(kept, [b for b in others if b.status in RUNNING], others)
