"""What a failure of the machine around batchrun means to its user.

A full disk, a file-size limit (`ulimit -f`), a read-only or foreign folder, a file where
a folder should be: none of these is a bug in batchrun, and each has a fix the user can
make. `os_problem` turns an OSError met while writing a named path into that message;
`ensure_dir` creates a folder batchrun keeps, or says why it cannot; `environment` is the
error handler's last look at an unexpected exception before calling it a bug.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path
from types import TracebackType

from .errors import BatchrunError, Location

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
NOTHING_LOST = "nothing is lost: rerun when it is fixed"


def ensure_dir(path: Path, what: str, *, where: Location | None = None,
               fix: str = "") -> Path:
    """Create `path` (and its missing parents) as folders only their owner may enter
    (0700), or tighten it when it exists and is ours (state written by an older batchrun
    was 0755); a BatchrunError naming the path, the cause and the fix when it cannot be.
    `what` names the folder ("the state directory"); `fix` is a second way out (e.g.
    choosing another state_dir)."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    try:
        for folder in reversed(missing):
            folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    except OSError as exc:
        raise os_problem(exc, path, what, where=where, fix=fix) from None
    tighten(path, PRIVATE_DIR)
    return path


def tighten(path: Path, mode: int) -> None:
    """Take away from `path` every permission beyond `mode`, if it is ours to change."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        info = path.stat()
        if info.st_mode & 0o777 & ~mode and info.st_uid == os.getuid():
            path.chmod(mode)


def os_problem(exc: OSError, path: Path, what: str, *, where: Location | None = None,
               fix: str = "") -> BatchrunError:
    """An OSError met while creating or writing `path` (part of `what`), as the user's
    problem: what stopped it and what to do."""
    also = f"; or {fix}" if fix else ""
    code = exc.errno
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(path) or path
        inside = f" ({path})" if blocker != path else ""
        return BatchrunError(
            f"{blocker} is a file, where batchrun keeps {what}{inside}", where=where,
            hint=f"move the file aside (mv {blocker} {blocker}.bak) and rerun{also}")
    if code == errno.ENOENT:
        missing = _first_missing(path)
        return BatchrunError(
            f"cannot create {what} {path}: {missing} does not exist and cannot be created "
            f"({exc.strerror})", where=where,
            hint=f"create {missing} first, or check the path for a typo{also}")
    stopped = _why(exc, path)
    if stopped is not None:
        message, hint = stopped
        return BatchrunError(f"cannot write {what} {path}: {message}", where=where,
                             hint=hint + also)
    return BatchrunError(f"cannot write {what} {path}: {exc.strerror or exc}", where=where,
                         hint=f"check that this user may write there; {NOTHING_LOST}{also}")


def _why(exc: OSError, path: Path | None) -> tuple[str, str] | None:
    """(what stopped the write, what to do) for the causes a user meets and can fix."""
    code = exc.errno
    if code == errno.EFBIG:
        from .ledgerfile import file_size_limit

        limit = file_size_limit()
        allows = f"`ulimit -f` allows {limit:,} bytes per file" if limit else "a file-size limit"
        return (f"the file-size limit of this shell stopped it ({allows})",
                f"raise it (`ulimit -f unlimited`) or run batchrun where files may grow; "
                f"{NOTHING_LOST}")
    if code == errno.ENOSPC:
        return "no space is left on the device", f"free some space; {NOTHING_LOST}"
    if code == errno.EDQUOT:
        return "the disk quota is exceeded", f"free some space; {NOTHING_LOST}"
    if code == errno.EROFS:
        return "the file system is read-only", f"use a writable folder; {NOTHING_LOST}"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied", f"make it writable for this user; {NOTHING_LOST}"
    return None


def environment(exc: BaseException, state_dir: Path) -> BatchrunError | None:
    """The user's problem behind an exception nobody caught, when it is one: a full disk,
    a file-size limit, a damaged ledger. None: it is a bug in batchrun."""
    if isinstance(exc, OSError):
        path = Path(exc.filename) if isinstance(exc.filename, str) else None
        stopped = _why(exc, path)
        if stopped is None:
            return None
        message, hint = stopped
        where = f" {path}" if path else f" under {state_dir}"
        return BatchrunError(f"cannot write{where}: {message}", hint=hint)
    if isinstance(exc, sqlite3.DatabaseError) and _raised_in(exc.__traceback__, "ledger"):
        from .ledgerfile import sqlite_problem

        return sqlite_problem(exc, state_dir)
    return None


def _raised_in(tb: TracebackType | None, module: str) -> bool:
    """Whether a traceback passes through runner/<module>.py."""
    wanted = os.path.join("runner", f"{module}.py")
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(wanted):
            return True
        tb = tb.tb_next
    return False


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest of `path` and its parents that exists and is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _first_missing(path: Path) -> Path:
    """The outermost folder of `path` that does not exist."""
    missing = path
    for parent in path.parents:
        if parent.exists():
            break
        missing = parent
    return missing
