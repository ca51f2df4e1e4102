"""batchrun in a child process forked from the test process, for the tests that kill it.

A fresh interpreter spends 1–2 s of CPU importing qdrant-client, the SDKs and batchrun
before it does anything; a child forked from the test process, which has imported them
already, starts at once. It is still a process of its own — its own pid, state lock,
SQLite connections and Qdrant handle — that SIGKILL ends as it ends any process, with the
exit status the kernel reports, so what the kill tests prove is unchanged. The child runs
batchrun's click entry point with the given arguments and environment, reads /dev/null,
writes into two pipes, and leaves with `os._exit`: it never runs the exit handlers of the
test process it was copied from.

`Forked` answers the part of `subprocess.Popen` the tests use: pid, returncode, poll,
wait, communicate, send_signal, kill.
"""

from __future__ import annotations

import io
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback


class Forked:
    def __init__(self, args: list[str], env: dict[str, str]):
        self.args = ["batchrun", *args]
        self.returncode: int | None = None
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the child: never returns
            os.close(out_read)
            os.close(err_read)
            _run_batchrun(args, env, out_write, err_write)
        os.close(out_write)
        os.close(err_write)
        self.pid = pid
        self._pipes = {out_read: bytearray(), err_read: bytearray()}
        self._out, self._err = out_read, err_read
        self._ended: set[int] = set()      # pipes read to their end (and closed)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.005)   # polling the exit status, not waiting a guessed time
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Read both pipes to their end, then reap the child: (stdout, stderr)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for fd in set(self._pipes) - self._ended:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0)
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        self._pipes[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
                        os.close(key.fd)
                        self._ended.add(key.fd)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return (self._pipes[self._out].decode("utf-8", "replace"),
                self._pipes[self._err].decode("utf-8", "replace"))

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _run_batchrun(args: list[str], env: dict[str, str], out: int, err: int) -> None:
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        # line-buffered and written through: what PYTHONUNBUFFERED gives a fresh process
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                      line_buffering=True, write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      line_buffering=True, write_through=True)
        os.environ.clear()
        os.environ.update(env)
        from runner import crash
        from runner.cli import cli

        crash.arm(env.get("BATCHRUN_CRASH_AT", ""))
        try:
            cli.main(args=args, prog_name="batchrun")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:   # noqa: BLE001 — the child reports any failure and exits
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:   # noqa: BLE001, S110 — a closed pipe: nothing to flush to
                pass
        os._exit(code)

