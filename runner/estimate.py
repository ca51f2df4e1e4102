"""Estimates of what pending requests will cost, before anything is sent.

Input tokens are counted exactly with the model's tokenizer (tokens.py); output tokens
cannot be known, so the estimate is a range: the low end assumes the output the job has
averaged so far (nothing, for a job without history), the high end assumes every request
uses its whole `max_tokens`. Without a cap the high end is unknown, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .tokens import TokenCount

MILLION = Decimal(1_000_000)


@dataclass
class Estimate:
    requests: int = 0
    input_tokens: int = 0
    input_exact: bool = True
    output_cap: int | None = 0     # sum of per-request output caps; None once one is uncapped

    def add(self, tokens: TokenCount, cap: int | None) -> None:
        self.requests += 1
        self.input_tokens += tokens.tokens
        self.input_exact = self.input_exact and tokens.exact
        if cap is None or self.output_cap is None:
            self.output_cap = None
        else:
            self.output_cap += cap

    def merge(self, other: Estimate) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.input_exact = self.input_exact and other.input_exact
        if other.output_cap is None or self.output_cap is None:
            self.output_cap = None
        else:
            self.output_cap += other.output_cap


@dataclass(frozen=True)
class CostRange:
    low: Decimal | None            # None: the model's price is unknown
    high: Decimal | None           # None: unknown (no price, or output uncapped)
    output_mean: float | None      # observed output tokens per request, when there is history

    @property
    def known(self) -> bool:
        return self.low is not None


def cost_range(estimate: Estimate, input_rate: Decimal | None, output_rate: Decimal | None,
               output_mean: float | None) -> CostRange:
    """USD range for `estimate` at per-1M-token rates (batch rates, normally)."""
    if input_rate is None or output_rate is None:
        return CostRange(None, None, output_mean)
    input_cost = Decimal(estimate.input_tokens) * input_rate / MILLION
    expected_output = Decimal(str(output_mean or 0)) * estimate.requests
    if estimate.output_cap is not None:
        expected_output = min(expected_output, Decimal(estimate.output_cap))
    low = input_cost + expected_output * output_rate / MILLION
    high = (None if estimate.output_cap is None
            else input_cost + Decimal(estimate.output_cap) * output_rate / MILLION)
    return CostRange(low, high, output_mean)
