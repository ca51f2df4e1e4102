"""Packing pending requests into shards: JSONL input files named by their content hash.

A shard never exceeds the job's `max_requests` lines or `max_bytes` bytes (the Batch API
allows 50,000 and 200 MB per file). Lines are streamed to a temp file and hashed on the
way; closing a shard renames it to `artifacts/shards/<sha256>.jsonl`, so an existing
shard is always complete, and the same pending requests always make the same shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .artifacts import Artifacts, ArtifactWriter
from .errors import BatchrunError

SHARDS = "shards"


@dataclass(frozen=True)
class Shard:
    seq: int              # the batch row recorded for it
    sha: str
    requests: int
    bytes: int
    est_input_tokens: int


class ShardSink(Protocol):
    """Where the packer records what it packs (the state ledger, in apply)."""

    def open_shard(self) -> int: ...
    def add_key(self, seq: int, key: str) -> None: ...
    def close_shard(self, shard: Shard) -> None: ...


class Packer:
    def __init__(self, artifacts: Artifacts, sink: ShardSink, *, max_requests: int,
                 max_bytes: int):
        self.artifacts = artifacts
        self.sink = sink
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.shards: list[Shard] = []
        self._writer: ArtifactWriter | None = None
        self._seq = 0
        self._tokens = 0

    def add(self, key: str, line: bytes, tokens: int = 0) -> None:
        if len(line) > self.max_bytes:
            raise BatchrunError(f"request {key[:12]} is {len(line):,} bytes, over the shard "
                                f"limit of {self.max_bytes:,} bytes",
                                hint="shorten the prompt, or raise batch.max_bytes (≤ 200MB)")
        writer = self._writer
        if writer is not None and (writer.lines >= self.max_requests
                                   or writer.size + len(line) > self.max_bytes):
            self._close()
            writer = None
        if writer is None:
            writer = self._writer = self.artifacts.open(SHARDS)
            self._seq = self.sink.open_shard()
            self._tokens = 0
        writer.write(line)
        self._tokens += tokens
        self.sink.add_key(self._seq, key)

    def _close(self) -> None:
        assert self._writer is not None
        writer = self._writer
        writer.commit()
        shard = Shard(self._seq, writer.sha, writer.lines, writer.size, self._tokens)
        self.sink.close_shard(shard)
        self.shards.append(shard)
        self._writer = None

    def close(self) -> list[Shard]:
        if self._writer is not None:
            self._close()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (the ones closed already are complete files)."""
        if self._writer is not None:
            self._writer.discard()
            self._writer = None
