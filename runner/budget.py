"""Budgets: refuse to submit what the upper cost estimate says would go over a limit.

Two limits, checked before anything of a pass is uploaded:
- `budget.max_cost_usd` in a job spec caps what one run of `apply` may send for that job,
  across all its passes (retries and queue-limited waves included);
- `--max-cost USD` caps what the whole run may send, all jobs together.

A pass is checked with everything it leaves pending — the requests it packs and those
held back for a later wave — so a run is refused up front, not halfway through its
waves. What a pass packs is charged; what it holds back is reserved, so another job of
the same run cannot take the room a later wave will need.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from .errors import BudgetExceeded
from .estimate import CostRange, Estimate
from .jobs import Job
from .reconcile import JobPlan

CostOf = Callable[[Job, Estimate], CostRange]


class Budget:
    def __init__(self, max_cost: float | None, cost_of: CostOf):
        self.max_cost = Decimal(str(max_cost)) if max_cost is not None else None
        self.cost_of = cost_of
        self.spent = Decimal(0)                  # upper estimate packed in this run
        self.spent_by_job: dict[str, Decimal] = {}
        self.reserved: dict[str, Decimal] = {}   # held back by each job's latest pass

    def applies(self, job: Job) -> bool:
        return self.max_cost is not None or job.spec.budget.max_cost_usd is not None

    def charge(self, job: Job, plan: JobPlan) -> None:
        """Refuse the pass (BudgetExceeded) or charge what it packed."""
        if not self.applies(job):
            return
        # Its latest pass decides what the job holds back; refused, it holds nothing.
        self.reserved.pop(job.name, None)
        if not (plan.requests or plan.held_back.requests):
            return
        pending = Estimate()
        pending.merge(plan.estimate)
        pending.merge(plan.held_back)
        estimate = self.cost_of(job, pending)
        if estimate.low is None:
            raise BudgetExceeded(f"{job.name}: the price of {job.spec.model} is unknown, so "
                                 "the budget cannot be checked",
                                 where=self._where(job),
                                 hint="add its price under prices: in batchrun.yaml")
        if estimate.high is None:
            raise BudgetExceeded(f"{job.name}: output is uncapped, so {pending.requests:,} "
                                 "requests have no upper cost bound to check the budget against",
                                 where=job.at("params"),
                                 hint="set params.max_tokens (or max_completion_tokens)")
        job_spent = self.spent_by_job.get(job.name, Decimal(0))
        limit = job.spec.budget.max_cost_usd
        if limit is not None:
            self._check(job, pending, estimate.high, Decimal(str(limit)) - job_spent,
                        "the job's budget (budget.max_cost_usd)", job.at("budget", "max_cost_usd"))
        if self.max_cost is not None:
            others = sum(self.reserved.values())
            self._check(job, pending, estimate.high, self.max_cost - self.spent - others,
                        "this run's --max-cost", None)
        packed = self.cost_of(job, plan.estimate).high or Decimal(0)
        self.spent += packed
        self.spent_by_job[job.name] = job_spent + packed
        self.reserved[job.name] = estimate.high - packed

    @staticmethod
    def _where(job: Job):
        return job.at("budget", "max_cost_usd") if job.spec.budget.max_cost_usd is not None \
            else None

    @staticmethod
    def _check(job: Job, pending: Estimate, high: Decimal, remaining: Decimal, what: str,
               where) -> None:
        if high <= remaining:
            return
        from .views import money

        requests = (f"{pending.requests:,} request is" if pending.requests == 1
                    else f"{pending.requests:,} requests are")
        if remaining <= 0:
            # Spent by earlier passes or jobs of this run (or a limit of 0): a "$0.0000
            # left" would read like a rounding error.
            message = (f"{job.name}: {requests} estimated at up to {money(high)}, and "
                       f"nothing is left of {what}")
        else:
            per_request = high / pending.requests
            fit = int(remaining / per_request) if per_request > 0 else pending.requests
            message = (f"{job.name}: {requests} estimated at up to {money(high)}, "
                       f"{money(high - remaining)} over what is left of {what}, "
                       f"{money(remaining)}; about {fit:,} requests would fit")
        raise BudgetExceeded(message, where=where,
                             hint="raise the budget (budget.max_cost_usd or --max-cost), or "
                                  "narrow source.filter / source.limit")
