"""The report page (issue 16): one self-contained HTML file showing what a run did —
counts per job, what changed, the answers beside their inputs, their distributions, the
costs, and every failure.

`render(ReportData, out)` writes it; `contract` says what it is made from, so the command
that gathers the data from the ledger, the manifest and Qdrant stays a thin adapter.
"""

from __future__ import annotations

from .contract import (
    BatchReport,
    FailedRequest,
    JobCounts,
    JobReport,
    PointRow,
    RenderError,
    ReportData,
    Tokens,
)
from .table import TableLimits
from .writer import PageInfo, render

__all__ = ["BatchReport", "FailedRequest", "JobCounts", "JobReport", "PageInfo", "PointRow",
           "RenderError", "ReportData", "TableLimits", "Tokens", "render"]
