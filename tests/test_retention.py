"""`batchrun gc` and the automatic policy remove what nothing needs, and nothing else:
never a result in the cache, never a file of a batch not yet collected. state.db gives
its free pages back (incremental vacuum, migration 0004)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from runner import migrations, retention
from runner.ledger import Ledger
from runner.writeback import stamp_key

JOB = "jobs/tags.yaml"


def files(project, kind: str) -> set[str]:
    folder = project.state / "artifacts" / kind
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def emulator_files(project) -> set[str]:
    return {p.name for p in (project.state / "server" / "files").glob("*.data")}


def sharded(project, points: int = 30, shard: int = 10) -> None:
    project.seed(points)
    project.edit(JOB, "max_requests: 100", f"max_requests: {shard}")


def test_gc_never_removes_a_file_of_a_batch_not_yet_collected(project):
    sharded(project)
    project.run("prepare", JOB)
    shards = files(project, "shards")
    assert len(shards) == 3
    assert project.run_json("gc")["files"] == 0            # intents: not even uploaded yet
    assert files(project, "shards") == shards
    project.run("submit", JOB)
    uploaded = emulator_files(project)
    assert project.run_json("gc")["total_bytes"] == 0      # in flight: nothing to free
    assert files(project, "shards") == shards and emulator_files(project) == uploaded
    project.run("collect", JOB, "--wait")
    assert len(files(project, "outputs")) == 3
    removed = project.run_json("gc")
    assert removed["files"] == 6 and removed["provider_files"] == 6
    assert files(project, "shards") == files(project, "outputs") == set()
    assert emulator_files(project) == set()


def test_the_result_cache_outlives_gc(project):
    sharded(project)
    project.run("apply", JOB)
    project.run("gc")
    with project.qdrant() as client:   # the collection is rebuilt: every result is wanted again
        client.delete_payload("videos", ["llm_tags", stamp_key("tags")], list(range(1, 31)))
    again = project.run_json("apply", JOB)["jobs"]["tags"]
    assert again["sent"] == 0 and again["written_from_cache"] == 30


def test_gc_keeps_an_output_downloaded_for_a_batch_a_killed_collect_left(project):
    project.seed(20)
    killed = project.spawn("apply", JOB, crash_at="after-download")
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    downloaded = files(project, "outputs")
    assert downloaded                                     # on disk, recorded nowhere yet
    shards = files(project, "shards")
    project.run("gc")
    assert files(project, "outputs") == downloaded and files(project, "shards") == shards
    assert project.run_json("apply", JOB)["jobs"]["tags"]["sent"] == 0   # collects what ran
    project.run("gc")
    assert files(project, "outputs") == files(project, "shards") == set()
    project.run("plan", JOB, "--detailed-exitcode", expect=0)


def test_gc_removes_shards_nobody_records_and_what_killed_writers_left(project):
    sharded(project, points=10)
    project.run("apply", JOB)
    folder = project.state / "artifacts" / "shards"
    orphan = folder / ("0" * 64 + ".jsonl")
    orphan.write_text('{"custom_id": "x"}\n')
    stale, fresh = folder / ".tmp-stale.jsonl", folder / ".tmp-fresh.jsonl"
    stale.write_text("half")
    fresh.write_text("being written")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    project.run("gc", "--keep", "7d")                     # spares the collected batch
    assert not orphan.exists() and not stale.exists()
    assert fresh.exists() and len(files(project, "shards")) == 2   # its shard, and `fresh`


def test_commands_tidy_what_was_collected_over_a_day_ago(project):
    sharded(project, points=10)
    project.run("apply", JOB)
    project.run("apply", JOB)                   # collected just now: kept for a look
    assert files(project, "shards") and files(project, "outputs")
    ledger = Ledger(project.state, "emulator")
    try:
        tomorrow = time.time() + retention.AUTOMATIC_KEEP + 60
        later = retention.find_garbage(ledger, keep=retention.AUTOMATIC_KEEP, now=tomorrow)
        assert {p.name for p in later.files} == files(project, "shards") | files(project, "outputs")
        now = retention.find_garbage(ledger, keep=retention.AUTOMATIC_KEEP)
        assert now.files == []
    finally:
        ledger.close()


def test_status_says_what_gc_would_free(project):
    sharded(project, points=10)
    project.run("apply", JOB)
    status = project.run_json("status")
    assert status["gc"]["files"] == 2 and status["gc"]["total_bytes"] > 0
    assert "`batchrun gc` would free" in project.run("status").stdout
    assert project.run_json("gc", "--dry-run")["total_bytes"] == status["gc"]["total_bytes"]
    assert files(project, "shards")                        # a dry run removes nothing
    project.run("gc")
    assert "batchrun gc" not in project.run("status").stdout    # nothing left: no line


def test_state_db_gives_its_free_pages_back(tmp_path):
    ledger = Ledger(tmp_path, "emulator")
    try:
        with ledger.transaction():
            ledger.put_results([(f"{i:064x}", "json", b"x" * 500, "m", "b") for i in range(5000)])
        for i in range(5000):
            ledger.forget_result(f"{i:064x}")
        assert retention.free_bytes(ledger) > 2_000_000
        assert retention.release_free_pages(ledger) > 2_000_000
        assert retention.free_bytes(ledger) == 0
    finally:
        ledger.close()
    assert (tmp_path / "state.db").stat().st_size < 500_000


def test_a_ledger_from_before_0004_turns_to_incremental_vacuum_when_opened(tmp_path):
    old = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    old.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, "
                "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    migrations.MIGRATIONS[0].apply(old)
    old.execute("INSERT INTO migrations (name) VALUES ('0001_ledger')")
    assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    old.close()
    Ledger(tmp_path, "emulator").close()
    reopened = sqlite3.connect(tmp_path / "state.db")
    assert reopened.execute("PRAGMA auto_vacuum").fetchone()[0] == migrations.INCREMENTAL
    assert "0004_incremental_vacuum" in migrations.applied_names(reopened)
    reopened.close()


def test_a_reader_never_waits_on_a_writer_to_vacuum(tmp_path):
    Ledger(tmp_path, "emulator").close()
    db = sqlite3.connect(Path(tmp_path) / "state.db", isolation_level=None)
    db.execute("PRAGMA auto_vacuum = NONE")
    db.execute("VACUUM")                      # as a ledger written before 0004 would be
    writer = sqlite3.connect(Path(tmp_path) / "state.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")         # another process is writing
    try:
        assert migrations.finish_incremental_vacuum(db) is False   # at once, not after 30 s
    finally:
        writer.execute("ROLLBACK")
    assert migrations.finish_incremental_vacuum(db) is True
    db.close()
    writer.close()
