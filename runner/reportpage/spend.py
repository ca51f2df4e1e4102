"""Tokens and dollars per day and in total, from the batches of the contract.

A batch whose cost was not computed (no price for its model, or not collected yet)
counts its tokens but not its dollars, and the totals say how many such batches there
are; the saving is summed only over batches whose batch *and* standard prices are known.
Days are UTC calendar days of completion (creation for a batch not finished), as in
`batchrun costs --by day`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from .contract import BatchReport, Tokens

TOKEN_KINDS = ("input", "cached_input", "output", "reasoning")


@dataclass
class Spend:
    batches: int = 0
    requests: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_KINDS, 0))
    cost_usd: Decimal = Decimal(0)             # over the batches with a known cost
    cost_standard_usd: Decimal = Decimal(0)    # over the batches with both prices known
    saving_usd: Decimal = Decimal(0)
    unpriced: int = 0                          # batches whose cost is unknown
    compared: int = 0                          # batches with both prices known

    def add(self, batch: BatchReport) -> None:
        self.batches += 1
        self.requests += batch.requests
        tokens = batch.tokens or Tokens()
        for kind in TOKEN_KINDS:
            self.tokens[kind] += getattr(tokens, kind)
        if batch.cost_usd is None:
            self.unpriced += 1
            return
        self.cost_usd += batch.cost_usd
        if batch.cost_standard_usd is not None:
            self.compared += 1
            self.cost_standard_usd += batch.cost_standard_usd
            self.saving_usd += batch.cost_standard_usd - batch.cost_usd

    @property
    def any_cost(self) -> bool:
        return self.batches > self.unpriced

    @property
    def uncached_input(self) -> int:
        return max(self.tokens["input"] - self.tokens["cached_input"], 0)


def day_of(batch: BatchReport) -> str:
    when = batch.completed_at or batch.created_at
    return when.strftime("%Y-%m-%d") if when else "unknown day"


@dataclass
class Spending:
    total: Spend
    by_day: dict[str, Spend]          # sorted by day, "unknown day" last
    by_job: dict[str, Spend]


def spending(batches: Iterable[BatchReport]) -> Spending:
    total = Spend()
    by_day: defaultdict[str, Spend] = defaultdict(Spend)
    by_job: defaultdict[str, Spend] = defaultdict(Spend)
    for batch in batches:
        total.add(batch)
        by_day[day_of(batch)].add(batch)
        by_job[batch.job].add(batch)
    days = sorted(by_day, key=lambda day: (day == "unknown day", day))
    return Spending(total, {day: by_day[day] for day in days}, dict(sorted(by_job.items())))
