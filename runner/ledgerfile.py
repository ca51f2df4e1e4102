"""state.db as a file: telling a damaged one, moving it aside, salvaging what it holds.

The ledger is the source of truth, so a damaged one is never rebuilt silently: opening it
says which file is damaged and what to do (`batchrun repair`), and repair moves it aside
— never deletes it — before rebuilding the ledger from the provider. Damage is judged from
the SQLite header, which costs one read and no scan: a file that is not SQLite at all, or
shorter than the pages its header records (cut short by a full disk, a bad copy, a
truncated CI cache).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BatchrunError, Location
from .keys import KEY_SCHEME

if TYPE_CHECKING:
    from .ledger import Ledger

FILENAME = "state.db"
SIDE_FILES = ("-wal", "-shm")      # SQLite's write-ahead log and its index, beside the file
_MAGIC = b"SQLite format 3\x00"
_KEY = re.compile(r"^[0-9a-f]{64}$")


class LedgerDamaged(BatchrunError):
    """state.db cannot be read as a ledger."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"the ledger is damaged: {reason}", where=Location(str(path)),
            hint="run `batchrun repair`: it moves the file aside (nothing is deleted) and "
                 "rebuilds the ledger from the batches the provider has, so none is paid "
                 "for again; or restore state.db from a backup (a CI cache)")
        self.path = path


def damage(path: Path) -> str | None:
    """Why `path` is not an intact SQLite database, from its header alone; None when it
    looks intact or does not exist yet."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            header = fh.read(100)
    except FileNotFoundError:
        return None
    if size == 0:
        return None   # SQLite makes a new database of an empty file
    if len(header) < 100 or not header.startswith(_MAGIC):
        return "it is not a SQLite database (its first bytes are not SQLite's header)"
    if _has_log(path):
        return None   # pages may still be in the write-ahead log; SQLite replays it
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size_is_valid = pages and header[24:28] == header[92:96]   # SQLite's own rule
    if size_is_valid and size < pages * page_size:
        return (f"it is cut short ({size:,} bytes of the {pages * page_size:,} its header "
                "records)")
    return None


def scan(path: Path) -> str | None:
    """Why SQLite's own check (`PRAGMA quick_check`, which reads every page) finds `path`
    damaged; None when it passes or the file does not exist. For `repair`: too slow to
    run on every command."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = [row[0] for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it ({exc})"
    if verdict != ["ok"]:
        return f"SQLite's check found damage ({'; '.join(verdict[:3])})"
    return None


def _has_log(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.is_file() and wal.stat().st_size > 0


def sqlite_problem(exc: sqlite3.DatabaseError, state_dir: Path) -> BatchrunError | None:
    """A SQLite error met reading or writing the ledger, as the user's problem; None when
    it is not one (a constraint broken, a busy database: batchrun's own doing)."""
    path = state_dir / FILENAME
    where = Location(str(path))
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        return LedgerDamaged(path, str(exc))
    limit = file_size_limit()
    if name == "SQLITE_FULL" or (limit and name.startswith("SQLITE_IOERR")):
        cause = (f"a file-size limit (`ulimit -f` allows {limit:,} bytes per file)" if limit
                 else "the disk is full")
        return BatchrunError(f"cannot write the ledger: {exc}; {cause}", where=where,
                             hint="raise the limit (`ulimit -f unlimited`) or free some space; "
                                  "nothing is lost: rerun when it is fixed")
    if name.startswith(("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")):
        return BatchrunError(f"cannot read or write the ledger: {exc}", where=where,
                             hint="check that the state directory still exists and this user "
                                  "may write it; nothing is lost: rerun when it is fixed")
    return None


def file_size_limit() -> int | None:
    """This process's limit on the size of a file it writes (`ulimit -f`), if any."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def move_aside(path: Path) -> list[Path]:
    """Rename a damaged ledger and its side files to `state.db.damaged-<UTC time>` (the
    side files keep their suffix, so SQLite still pairs them). Returns the new paths."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    moved = []
    for suffix in ("", *SIDE_FILES):
        source = path.with_name(path.name + suffix)
        if source.exists():
            destination = target.with_name(target.name + suffix)
            source.rename(destination)
            moved.append(destination)
    return moved


def salvage_results(damaged: Path, ledger: Ledger) -> int:
    """Copy the cached answers still readable in a damaged ledger into `ledger`, if it was
    written for the same provider and key scheme. An answer is kept only if it decodes;
    reading stops at the first damaged page. Returns how many were copied."""
    try:
        old = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    copied = 0
    try:
        meta = dict(old.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("provider") != ledger.provider or \
                meta.get("key_scheme", KEY_SCHEME) != KEY_SCHEME:
            return 0
        columns = ["key", "kind", "value", "model", "batch_id", "at"]
        if "via" in {row[1] for row in old.execute("PRAGMA table_info(results)")}:
            columns.append("via")   # answered by a batch or by `batchrun try`
        names = ", ".join(columns)
        cursor = old.execute(f"SELECT {names} FROM results")
        while rows := cursor.fetchmany(1000):
            good = [row for row in rows if _readable(row)]
            ledger.db.executemany(f"INSERT OR IGNORE INTO results ({names}) VALUES "
                                  f"({', '.join('?' * len(columns))})", good)
            copied += len(good)
    except sqlite3.Error:
        pass   # the rest is on damaged pages
    finally:
        old.close()
    return copied


def _readable(row: tuple) -> bool:
    key, kind, value = row[0], row[1], row[2]
    if not isinstance(key, str) or not _KEY.match(key) or not isinstance(value, bytes):
        return False
    if kind == "f32":
        return len(value) % 4 == 0
    if kind != "json":
        return False
    try:
        json.loads(value)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def check_owner(ledger: Ledger) -> None:
    """The ledger belongs to this provider and keys results as this batchrun does:
    who answered the results kept here, and how their keys were computed."""
    recorded = ledger.meta("provider")
    if recorded is None or (recorded != ledger.provider and ledger.empty()):
        # A new ledger, or one where nothing was ever sent or answered (a plan, say):
        # it may change hands.
        with ledger.transaction():
            ledger.set_meta("provider", ledger.provider)
            ledger.set_meta("key_scheme", KEY_SCHEME)
        recorded = ledger.provider
    if recorded != ledger.provider:
        # Results and batches belong to the API that produced them: reusing another's
        # would write its answers (or the emulator's made-up ones) as if they were these.
        raise BatchrunError(
            f"{ledger.dir} holds the batches and results of {recorded}, but the provider "
            f"is now {ledger.provider}",
            hint="give each provider its own state_dir in batchrun.yaml (for example "
                 "state_dir: .batchrun-other), or move this folder away to start over")
    scheme = ledger.meta("key_scheme") or KEY_SCHEME   # ledgers of 0.1 did not record it
    if scheme != KEY_SCHEME:
        raise BatchrunError(
            f"{ledger.dir / FILENAME} keys its results by {scheme}, and this batchrun "
            f"computes request keys by {KEY_SCHEME}: none of its answers would be found, "
            "and every request would be paid for again",
            hint="use the batchrun version that wrote it, or move the folder away to "
                 "start over knowingly")
