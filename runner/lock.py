"""The lock that keeps two runs that change one state directory apart.

An flock on `<state_dir>/lock`: the kernel releases it when its process dies, so a lock
left by a killed run is never mistaken for a live one. The file also says who holds it
(pid, host, command, since), for the message a second run gets.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from .artifacts import private_file
from .diagnose import ensure_dir
from .errors import LockHeld


class StateLock:
    """One mutating batchrun per state directory. The kernel releases an flock when its
    process dies, so a lock left by a killed run is never mistaken for a live one."""

    def __init__(self, state_dir: Path):
        ensure_dir(state_dir, "the state directory",
                   fix="set state_dir in batchrun.yaml to a folder batchrun may create")
        self.path = state_dir / "lock"
        self.fh: IO[str] | None = None
        self.previous: dict | None = None
        self.damaged = False   # the file held something else than who holds the lock

    def acquire(self, timeout: float = 0.0, command: str = "") -> None:
        private_file(self.path)   # 0600, like every state file
        # errors="replace": the file only says who holds the lock (the flock is the lock),
        # so damaged bytes are read as unknown, and rewritten once the lock is ours.
        fh = open(self.path, "a+", encoding="utf-8", errors="replace")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder(fh)
                    fh.close()
                    raise LockHeld(
                        f"another batchrun is using {self.path.parent} "
                        f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                        f"{holder.get('command', 'a command')} since {holder.get('since', '?')})",
                        hint="wait for it to finish, or pass --lock-timeout SECONDS to wait") \
                        from None
                time.sleep(0.2)
        fh.seek(0)
        left = _read_holder(fh.read())
        self.damaged = left is None
        self.previous = left or None   # left by a run that was killed
        fh.seek(0)
        fh.truncate()
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": since, "command": command}))
        fh.flush()
        self.fh = fh

    @staticmethod
    def holder_of(state_dir: Path) -> dict:
        """Who holds (or last held) the lock, as it wrote itself down; {} when unknown."""
        try:
            text = (state_dir / "lock").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return {}
        return _read_holder(text) or {}

    @staticmethod
    def _holder(fh: IO[str]) -> dict:
        fh.seek(0)
        return _read_holder(fh.read()) or {}

    def release(self) -> None:
        if self.fh is not None:
            self.fh.seek(0)
            self.fh.truncate()
            self.fh.flush()
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def _read_holder(text: str) -> dict | None:
    """What a lock file says of its holder ({} when empty: released); None when it holds
    something batchrun never writes (damaged)."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
