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

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner may enter: created with its missing parents (each
    0700), or tightened when it exists and is ours."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner may read: created empty when missing, tightened
    when it exists and is ours (state written by an older batchrun was 0644)."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_FILE))
    _tighten(path, PRIVATE_FILE)
    return path


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        info = path.stat()
        if info.st_mode & 0o777 & ~mode and info.st_uid == os.getuid():
            path.chmod(mode)


class Artifacts:
    """Content-addressed files: `<kind>/<sha256>.jsonl`, complete or absent."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, sha: str) -> Path:
        return self.root / kind / f"{sha}.jsonl"

    def exists(self, kind: str, sha: str) -> bool:
        return self.path(kind, sha).is_file()

    def open(self, kind: str) -> ArtifactWriter:
        folder = private_dir(self.root / kind)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".jsonl")  # 0600
        return ArtifactWriter(os.fdopen(fd, "wb"), Path(tmp), folder)

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

    def __init__(self, fh: IO[bytes], tmp: Path, folder: Path):
        self.fh, self.tmp, self.folder = fh, tmp, folder
        self.hash = hashlib.sha256()
        self.size = 0
        self.lines = 0
        self.sha = ""

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.hash.update(data)
        self.size += len(data)
        self.lines += data.count(b"\n")

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        self.sha = self.hash.hexdigest()
        final = self.folder / f"{self.sha}.jsonl"
        if final.exists():
            self.tmp.unlink()
        else:
            os.replace(self.tmp, final)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)
