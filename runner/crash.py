"""Named crash points, for the tests that prove a kill -9 anywhere loses nothing.

`BATCHRUN_CRASH_AT=after-create` makes the process SIGKILL itself when it reaches that
point (optionally `name:N` for the N-th time). Nothing happens when the variable is unset;
it is read once, at import (or given to `arm`, by a process forked after the import).
"""

from __future__ import annotations

import os
import signal

_NAME = _NTH = ""
_seen = 0

POINTS = (
    "after-pack",          # shards written and recorded, nothing uploaded
    "upload-unrecorded",   # input file uploaded, its id not recorded
    "after-upload",        # input file id recorded, batch not created
    "before-create",       # a create is recorded as begun, not sent: its outcome unknown
    "after-create",        # batch created at the provider, id not recorded
    "after-record",        # batch id recorded
    "after-download",      # output files downloaded, results not stored
    "after-results",       # results stored, not written to Qdrant
    "mid-write",           # some points written back, not all
)
# Where a provider that takes requests inline (no upload: Anthropic) stops instead of
# "upload-unrecorded" and "after-upload".
INLINE_POINTS = (
    "create-begun",        # the create call's start recorded, the call not made
)


def arm(target: str) -> None:
    """Die at `target` (`name` or `name:N`); "" never."""
    global _NAME, _NTH, _seen
    _NAME, _, _NTH = target.partition(":")
    _seen = 0


arm(os.environ.get("BATCHRUN_CRASH_AT", ""))


def point(name: str) -> None:
    global _seen
    if name != _NAME:
        return
    _seen += 1
    if _seen >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
