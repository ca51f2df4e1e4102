"""Content-addressed files in the state directory: shards, downloaded output and error
files. Each is `<kind>/<sha256>.jsonl`, written to a temp file and renamed to the hash of
its bytes, so a file that exists is complete, and the same bytes are stored once.

The state directory holds every prompt sent and every answer: its folders are created
0700 and its files 0600 (`private_dir`, `private_file`), whatever the umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .diagnose import PRIVATE_FILE, ensure_dir, os_problem, tighten

# What each kind of file is, in messages about the folder holding them.
KINDS = {"shards": "the shard files", "outputs": "the downloaded output and error files"}


def private_file(path: Path) -> Path:
    """`path` as a file only its owner may read: created empty when missing, tightened
    when it exists and is ours (state written by an older batchrun was 0644)."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_FILE))
    tighten(path, PRIVATE_FILE)
    return path


class Artifacts:
    """Content-addressed files: `<kind>/<sha256>.jsonl`, complete or absent."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, sha: str) -> Path:
        return self.root / kind / f"{sha}.jsonl"

    def exists(self, kind: str, sha: str) -> bool:
        return self.path(kind, sha).is_file()

    def intact(self, kind: str, sha: str) -> bool:
        """The file exists and its bytes still hash to its name (reads it whole)."""
        path = self.path(kind, sha)
        digest = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == sha

    def open(self, kind: str) -> ArtifactWriter:
        what = KINDS.get(kind, f"the {kind} files")
        folder = ensure_dir(self.root / kind, what)
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".jsonl")  # 0600
        except OSError as exc:
            raise os_problem(exc, folder, what) from None
        return ArtifactWriter(os.fdopen(fd, "wb"), Path(tmp), folder, what)

    @contextlib.contextmanager
    def writer(self, kind: str) -> Iterator[ArtifactWriter]:
        writer = self.open(kind)
        try:
            yield writer
        except BaseException:
            writer.discard()
            raise
        writer.commit()

    def put_file(self, kind: str, chunks: Iterator[bytes]) -> str:
        with self.writer(kind) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return writer.sha


class ArtifactWriter:
    """Bytes to a temp file, hashed on the way; `commit` renames it to its hash."""

    def __init__(self, fh: IO[bytes], tmp: Path, folder: Path, what: str = "the files"):
        self.fh, self.tmp, self.folder, self.what = fh, tmp, folder, what
        self.hash = hashlib.sha256()
        self.size = 0
        self.lines = 0
        self.sha = ""

    def write(self, data: bytes) -> None:
        try:
            self.fh.write(data)
        except OSError as exc:   # a full disk, a file-size limit: the user's to fix
            raise os_problem(exc, self.folder, self.what) from None
        self.hash.update(data)
        self.size += len(data)
        self.lines += data.count(b"\n")

    def commit(self) -> None:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
        except OSError as exc:
            raise os_problem(exc, self.folder, self.what) from None
        self.sha = self.hash.hexdigest()
        # Replace even a file already there: these bytes hash to the name, and one that
        # was damaged since is healed rather than trusted.
        os.replace(self.tmp, self.folder / f"{self.sha}.jsonl")

    def discard(self) -> None:
        try:
            self.fh.close()
        except OSError:
            pass   # what could not be written (a full disk) is thrown away anyway
        self.tmp.unlink(missing_ok=True)
