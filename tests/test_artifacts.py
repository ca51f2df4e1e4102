"""The state directory holds every prompt sent and every answer: its folders are 0700 and
its files 0600, whatever the umask, and state left 0644 by an older batchrun is tightened."""

from __future__ import annotations

import os
import sqlite3
import stat

from runner.artifacts import Artifacts, private_file
from runner.diagnose import ensure_dir
from runner.ledger import Ledger
from runner.lock import StateLock

JOB = "jobs/tags.yaml"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_state_dir_is_created_0700_with_its_missing_parents(tmp_path):
    old = os.umask(0)   # the most permissive umask: modes come from batchrun alone
    try:
        ensure_dir(tmp_path / "a" / "b", "the state directory")
        private_file(tmp_path / "a" / "b" / "f")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "f") == 0o600


def test_state_written_0644_by_an_older_batchrun_is_tightened(tmp_path):
    state = tmp_path / ".batchrun"
    state.mkdir(mode=0o755)
    sqlite3.connect(state / "state.db").execute("PRAGMA journal_mode=WAL").close()
    (state / "lock").write_text("")
    for path in (state / "state.db", state / "lock"):
        path.chmod(0o644)
    state.chmod(0o755)
    Ledger(state, "openai").close()
    StateLock(state).acquire()
    assert mode(state) == 0o700
    assert mode(state / "state.db") == mode(state / "lock") == 0o600


def test_the_ledger_and_its_write_ahead_log_are_0600_while_open(tmp_path):
    old = os.umask(0)
    try:
        ledger = Ledger(tmp_path / ".batchrun", "openai")
        with ledger.transaction():
            ledger.record_job("j", file="f", fingerprint="x", endpoint="e", model="m",
                              output_key="k", details={})
        files = {p.name: mode(p) for p in (tmp_path / ".batchrun").iterdir()}
        ledger.close()
    finally:
        os.umask(old)
    assert files == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}


def test_artifacts_are_0600_in_0700_folders(tmp_path):
    sha = Artifacts(tmp_path / "artifacts").put_file("shards", iter([b"{}\n"]))
    assert mode(tmp_path / "artifacts" / "shards" / f"{sha}.jsonl") == 0o600
    assert mode(tmp_path / "artifacts") == mode(tmp_path / "artifacts" / "shards") == 0o700


def test_every_state_file_of_a_real_run_is_private(http_project):
    http_project.seed(12)
    http_project.run("apply", JOB)
    state = http_project.state
    files = [p for p in state.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"state.db", "lock", "manifest.json"} <= names
    assert {p.parent.name for p in files} >= {"shards", "outputs"}
    assert {str(p.relative_to(state)): oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    folders = [state, *(p for p in state.rglob("*") if p.is_dir())]
    assert {str(p): oct(mode(p)) for p in folders if mode(p) != 0o700} == {}
