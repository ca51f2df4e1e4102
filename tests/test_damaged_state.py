"""A damaged or impossible state directory, a full disk, a Qdrant that went away: each is
said for what it is — the file, the cause, the fix — never "a bug in batchrun" (issue
#11). Derived files (manifest, lock, shards) are rebuilt; the ledger is never rebuilt
silently: its message names `batchrun repair` (tests/test_repair.py)."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, sharded_project
from emulator_fixtures import FakeClock

from runner.emulator import EmulatorConfig

JOB = "jobs/tags.yaml"
REPAIR_HINT = ("  hint: run `batchrun repair`: it moves the file aside (nothing is deleted) and "
               "rebuilds the ledger from the batches the provider has, so none is paid for "
               "again; or restore state.db from a backup (a CI cache)")


def errors(result) -> list[str]:
    return result.stderr.splitlines()


def assert_no_bug(text: str) -> None:
    assert "bug in batchrun" not in text and "Traceback" not in text


# ---- the state directory -------------------------------------------------------------------

@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a /proc that refuses mkdir")
def test_a_state_dir_whose_parent_cannot_be_created_says_which_folder_is_missing(project):
    project.seed(2)
    project.write_config(state_dir="/proc/batchrun-missing/state")
    assert errors(project.run("apply", JOB, expect=1)) == [
        "Error: cannot create the state directory /proc/batchrun-missing/state/emulator: "
        "/proc/batchrun-missing does not exist and cannot be created (No such file or "
        "directory)",
        "  hint: create /proc/batchrun-missing first, or check the path for a typo; or set "
        "state_dir in batchrun.yaml to a folder batchrun may create"]


def test_a_state_dir_that_is_a_file_says_so_and_how_to_move_it(project):
    project.seed(2)
    project.write("notes.txt", "not a folder")
    project.write_config(state_dir="notes.txt")
    file = project.root / "notes.txt"
    assert errors(project.run("apply", JOB, expect=1)) == [
        f"Error: {file} is a file, where batchrun keeps the state directory ({file}/emulator)",
        f"  hint: move the file aside (mv {file} {file}.bak) and rerun; or set state_dir in "
        "batchrun.yaml to a folder batchrun may create"]


# ---- the ledger: the source of truth, never rebuilt silently -------------------------------

def test_a_ledger_overwritten_with_garbage_names_the_file_and_repair(project):
    project.seed(3)
    project.run("apply", JOB)
    ledger = project.state / "state.db"
    ledger.write_bytes(os.urandom(5000))
    assert errors(project.run("apply", JOB, expect=1)) == [
        f"Error: {ledger}: the ledger is damaged: it is not a SQLite database (its first bytes "
        "are not SQLite's header)", REPAIR_HINT]
    assert errors(project.run("status", expect=1))[0].startswith(f"Error: {ledger}: the ledger")


def test_a_ledger_cut_in_half_names_the_file_and_repair(project):
    project.seed(3)
    project.run("apply", JOB)
    ledger = project.state / "state.db"
    whole = ledger.stat().st_size
    os.truncate(ledger, whole // 2)
    assert errors(project.run("apply", JOB, expect=1)) == [
        f"Error: {ledger}: the ledger is damaged: it is cut short ({whole // 2:,} bytes of the "
        f"{whole:,} its header records)", REPAIR_HINT]


def damage_pages(ledger: Path, table: str) -> bytes:
    """Overwrite the pages of one table of a SQLite file, keeping its header and size
    right (damage only a full read finds); returns the file's new bytes."""
    db = sqlite3.connect(ledger)
    try:
        pages = [row[0] for row in db.execute("SELECT pageno FROM dbstat WHERE name=?",
                                              (table,))]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table to find a table's pages with")
    finally:
        db.close()
    data = bytearray(ledger.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    for page in pages:
        data[(page - 1) * size:page * size] = b"\xa5" * size
    ledger.write_bytes(bytes(data))
    return bytes(data)


def test_a_ledger_damaged_inside_names_the_file_and_repair_when_a_read_meets_it(project):
    project.seed(3)
    project.run("apply", JOB)
    ledger = project.state / "state.db"
    damage_pages(ledger, "batches")
    assert errors(project.run("apply", JOB, expect=1)) == [
        f"Error: {ledger}: the ledger is damaged: database disk image is malformed", REPAIR_HINT]


def test_an_intact_ledger_with_its_write_ahead_log_is_not_called_damaged(project):
    # A kill -9 leaves pages in state.db-wal that the main file's header does not count
    # yet: SQLite replays them; the header check must not cry wolf.
    project.seed(3)
    killed = project.spawn("apply", JOB, crash_at="after-record")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    project.run("apply", JOB)
    assert project.run_json("plan", JOB)["pending"] is False


# ---- derived files: rebuilt with a warning ---------------------------------------------------

def test_a_garbage_manifest_is_rebuilt_from_the_ledger_by_any_run_with_a_warning(project):
    project.seed(3)
    project.run("apply", JOB)
    manifest = project.state / "manifest.json"
    before = manifest.read_bytes()
    manifest.write_bytes(b"\x8a\x00garbage")
    result = project.run("apply", JOB)
    assert result.stderr.splitlines()[0] == (
        f"warning: {manifest} was damaged ('utf-8' codec can't decode byte 0x8a in position 0: "
        "invalid start byte); rebuilt it from the ledger")
    assert manifest.read_bytes() == before


def test_a_garbage_lock_file_is_rewritten_with_a_warning_and_blocks_nothing(project):
    project.seed(3)
    lock = project.state / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"\x8c\xff\x00 not who holds it")
    result = project.run("apply", JOB)
    assert result.stderr.splitlines()[0] == (
        f"warning: {lock} was damaged; rewrote it (it only says which run holds the lock)")
    assert project.run_json("plan", JOB)["pending"] is False
    lock.write_text("[1, 2]")      # JSON, but not what batchrun writes
    assert "was damaged; rewrote it" in project.run("apply", JOB).stderr


def test_a_damaged_shard_is_packed_again_by_apply_never_uploaded(http_project):
    http_project.seed(10)
    http_project.run("prepare", JOB)
    (shard,) = (http_project.state / "artifacts" / "shards").glob("*.jsonl")
    shard.write_bytes(os.urandom(2000))
    http_project.run("apply", JOB)
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == shard.stem   # healed
    emulator = http_project.emulator
    assert len(emulator.batches_created()) == 1 and len(emulator.sent_keys()) == 10
    assert all(b["status"] == "completed" for b in http_project.manifest()["jobs"]["tags"]
               ["batches"])


def test_a_damaged_shard_is_moved_aside_by_submit_and_nothing_is_sent(http_project):
    http_project.seed(10)
    http_project.run("prepare", JOB)
    (shard,) = (http_project.state / "artifacts" / "shards").glob("*.jsonl")
    shard.write_bytes(os.urandom(2000))
    assert errors(http_project.run("submit", JOB, expect=1)) == [
        f"Error: {shard}: the shard {shard.stem[:12]} of tags is damaged: its bytes do not hash "
        f"to its name; moved it aside to {shard.name}.damaged, nothing was sent",
        "  hint: run `batchrun apply` (or `batchrun prepare`) to pack its requests again"]
    assert shard.with_name(shard.name + ".damaged").is_file()
    assert not http_project.emulator.batches_created()
    http_project.run("apply", JOB)
    assert sorted(http_project.emulator.sent_keys()) == sorted(set(
        http_project.emulator.sent_keys())) and len(http_project.emulator.sent_keys()) == 10


def test_a_file_where_the_outputs_folder_belongs_is_named_and_the_rerun_pays_nothing(
        http_project):
    http_project.seed(10)
    outputs = http_project.state / "artifacts" / "outputs"
    outputs.parent.mkdir(parents=True)
    outputs.write_text("not a folder")
    assert errors(http_project.run("apply", JOB, expect=1))[-2:] == [
        f"Error: {outputs} is a file, where batchrun keeps the downloaded output and error "
        "files",
        f"  hint: move the file aside (mv {outputs} {outputs}.bak) and rerun"]
    outputs.rename(outputs.with_name("outputs.bak"))
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == 10     # the batch was collected, not re-sent
    assert http_project.run_json("plan", JOB)["pending"] is False


def run_limited(project: Project, limit: int) -> subprocess.CompletedProcess:
    """`batchrun apply` in a process that may write no file larger than `limit` bytes."""
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "-C", str(project.root), "apply", JOB],
        capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))


def test_a_file_size_limit_met_by_a_shard_is_named_with_its_size_and_the_rerun_resumes(
        http_project):
    http_project.seed(200)
    http_project.edit(JOB, "max_requests: 100", "max_requests: 200")
    limit = 400_000        # the shard of 200 requests (445 kB) is larger; the ledger is not, yet
    process = run_limited(http_project, limit)
    assert process.returncode == 1
    shards = http_project.state / "artifacts" / "shards"
    assert process.stderr.splitlines()[-2:] == [
        f"Error: cannot write the shard files {shards}: the file-size limit of this shell "
        f"stopped it (`ulimit -f` allows {limit:,} bytes per file)",
        "  hint: raise it (`ulimit -f unlimited`) or run batchrun where files may grow; nothing "
        "is lost: rerun when it is fixed"]
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == 200


def test_a_file_size_limit_met_by_the_ledger_is_named_with_its_size(http_project):
    http_project.seed(20)
    limit = 16_384         # the ledger's write-ahead log outgrows it before any shard does
    process = run_limited(http_project, limit)
    assert process.returncode == 1
    assert process.stderr.splitlines()[-2:] == [
        f"Error: {http_project.state / 'state.db'}: cannot write the ledger: disk I/O error; a "
        f"file-size limit (`ulimit -f` allows {limit:,} bytes per file)",
        "  hint: raise the limit (`ulimit -f unlimited`) or free some space; nothing is lost: "
        "rerun when it is fixed"]
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == 20


# ---- Qdrant ----------------------------------------------------------------------------------

def test_an_unreachable_qdrant_url_is_named_with_the_fix(project):
    with socket.socket() as probe:        # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    project.write_config(qdrant={"url": f"http://127.0.0.1:{port}"})
    result = project.run("plan", JOB, expect=1)
    assert errors(result) == [
        f"Error: batchrun.yaml: qdrant.url: cannot reach Qdrant at http://127.0.0.1:{port} "
        "([Errno 111] Connection refused)",
        "  hint: start the server, or correct qdrant.url; nothing is lost: rerun when it "
        "answers"]


def test_the_embedded_qdrant_deleted_mid_run_is_named_and_the_rerun_pays_nothing(
        serve_emulator, tmp_path, api_key):
    clock = FakeClock(time.time())
    emulator = serve_emulator(EmulatorConfig(validating_seconds=10, seconds_per_request=1,
                                             finalizing_seconds=1), clock=clock)
    project: Project = sharded_project(tmp_path / "project", emulator, points=10)
    running = project.spawn("apply", JOB)
    deadline = time.monotonic() + 60
    while not emulator.batches_created():
        assert time.monotonic() < deadline and running.poll() is None, running.communicate()
        time.sleep(0.02)
    saved = tmp_path / "qdrant-backup"
    (project.root / ".qdrant").rename(saved)          # deleted, as far as batchrun can tell
    clock.advance(3600)                               # the batch finishes
    out, err = running.communicate(timeout=120)
    assert running.returncode == 1
    assert err.splitlines()[-2:] == [
        "Error: batchrun.yaml: qdrant.path: the embedded Qdrant folder .qdrant was deleted "
        "while batchrun was using it",
        "  hint: restore it (or load your points again) and rerun; answers already collected "
        "are kept in the ledger and written without paying again"]
    saved.rename(project.root / ".qdrant")
    project.run("apply", JOB)
    assert len(emulator.sent_keys()) == 10 and all(
        n == 1 for n in emulator.emulator.executions().values())
    assert project.run_json("plan", JOB)["pending"] is False
