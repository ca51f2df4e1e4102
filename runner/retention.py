"""What the state directory still needs, and `gc`: removing what nothing needs.

The result cache (the ledger's `results`, in state.db) is the asset and is never touched.
Shards, downloaded output and error files, and the emulator's copies of them are caches
of the provider's files: needed while their batch is in progress, not after.

Needed, whatever their age:
- the shard of every batch not yet collected (to upload, to create, to read what its
  requests asked for when it is collected), and the provider files of those batches;
- every downloaded output or error file while any batch is not yet collected (a download
  is recorded only when its batch is collected, so an unrecorded file may be one that a
  collect interrupted will read).

Not needed: the shard and downloaded files of a collected batch (its answers are in the
result cache, its failures in the ledger), a shard no batch records (a pass refused by
its budget, or killed before it committed), a temporary file a killed writer left, and
the ledger's free pages. `batchrun gc` removes them at once (`--keep` spares recent ones);
every command that holds the state lock removes them on its way out once their batch has
been collected for `AUTOMATIC_KEEP` (the files of the latest runs stay for a look), and
gives the ledger's free pages back to the file system.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import migrations
from .collect import OUTPUTS
from .errors import ProviderError
from .ledger import Ledger
from .pack import SHARDS

if TYPE_CHECKING:
    from .provider import BatchAPI

AUTOMATIC_KEEP = 86_400.0    # seconds a collected batch's files stay before a command tidies
TEMP_AGE = 3_600.0           # a temporary file this old was left by a killed writer


@dataclass
class Garbage:
    """What a gc would remove, and how many bytes that frees."""

    files: list[Path] = field(default_factory=list)           # in the state directory
    file_bytes: int = 0
    provider_files: dict[str, int] = field(default_factory=dict)   # emulator copies: id → bytes
    ledger_bytes: int = 0      # free pages of state.db

    @property
    def total_bytes(self) -> int:
        return self.file_bytes + sum(self.provider_files.values()) + self.ledger_bytes

    def __add__(self, other: Garbage) -> Garbage:
        """Two state directories' garbage (one per provider, lanes.py), as one gc's."""
        return Garbage(self.files + other.files, self.file_bytes + other.file_bytes,
                       {**self.provider_files, **other.provider_files},
                       self.ledger_bytes + other.ledger_bytes)

    def as_json(self) -> dict[str, int]:
        return {"files": len(self.files), "file_bytes": self.file_bytes,
                "provider_files": len(self.provider_files),
                "provider_bytes": sum(self.provider_files.values()),
                "ledger_bytes": self.ledger_bytes, "total_bytes": self.total_bytes}


def find_garbage(ledger: Ledger, *, keep: float, provider_files: dict[str, int] | None = None,
                 now: float | None = None) -> Garbage:
    """What nothing needs any more (see the module docstring): files of batches collected
    more than `keep` seconds ago, orphans, and, given the provider's stored files (id →
    bytes; the emulator's), those of the same batches."""
    now = time.time() if now is None else now
    rows = ledger.batches()
    open_rows = [r for r in rows if r.collected_at is None]
    old = [r for r in rows if r.collected_at is not None and r.collected_at <= now - keep]
    needed_shards = {r.shard for r in open_rows}
    recorded_shards = {r.shard for r in rows}
    old_shards = {r.shard for r in old} - needed_shards
    old_outputs = {sha for r in old for sha in (r.output_file, r.error_file) if sha}
    recorded_outputs = {sha for r in rows for sha in (r.output_file, r.error_file) if sha}
    garbage = Garbage()
    root = ledger.artifacts.root
    for path in _files(root / SHARDS):
        if _temp(path):
            if path.stat().st_mtime < now - TEMP_AGE:
                garbage.files.append(path)
        elif path.stem in old_shards or path.stem not in recorded_shards:
            garbage.files.append(path)
    for path in _files(root / OUTPUTS):
        if _temp(path):
            if path.stat().st_mtime < now - TEMP_AGE:
                garbage.files.append(path)
        elif path.stem in old_outputs or (path.stem not in recorded_outputs and not open_rows):
            garbage.files.append(path)
    garbage.file_bytes = sum(_size(path) for path in garbage.files)
    if provider_files:
        needed = {i for r in open_rows for i in _provider_ids(r.input_file_id, r.info)}
        done = {i for r in old for i in _provider_ids(r.input_file_id, r.info)} - needed
        garbage.provider_files = {i: provider_files[i] for i in sorted(done & set(provider_files))}
    garbage.ledger_bytes = free_bytes(ledger)
    return garbage


def remove(garbage: Garbage, ledger: Ledger, api: BatchAPI | None) -> list[str]:
    """Remove what `find_garbage` found (run it under the state lock, and at once: it
    was true when found). Returns problems (a provider file that could not be deleted);
    the rest is removed regardless."""
    for path in garbage.files:
        path.unlink(missing_ok=True)
    problems = []
    if api is not None:
        for file_id in garbage.provider_files:
            try:
                api.delete_file(file_id)
            except ProviderError as exc:
                problems.append(exc.message)
    release_free_pages(ledger)
    return problems


def free_bytes(ledger: Ledger) -> int:
    """Bytes of state.db held by pages no row uses any more."""
    free = ledger.db.execute("PRAGMA freelist_count").fetchone()[0]
    return int(free) * int(ledger.db.execute("PRAGMA page_size").fetchone()[0])


def release_free_pages(ledger: Ledger) -> int:
    """Give state.db's free pages back to the file system (an incremental vacuum: at most
    seconds); returns the bytes released. It writes: only under the state lock, between
    transactions (inside one it does nothing)."""
    if ledger.db.in_transaction:
        return 0
    free = free_bytes(ledger)
    if not free or not migrations.finish_incremental_vacuum(ledger.db):
        return 0
    # executescript steps the pragma to its end; execute() would free one page
    ledger.db.executescript("PRAGMA incremental_vacuum;")
    return free - free_bytes(ledger)


def _provider_ids(input_file_id: str | None, info: dict) -> Iterator[str]:
    for file_id in (input_file_id, info.get("output_file_id"), info.get("error_file_id")):
        if file_id:
            yield file_id


def _files(folder: Path) -> Iterable[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _temp(path: Path) -> bool:
    return path.name.startswith(".tmp-")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
