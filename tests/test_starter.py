"""The repository's demo (batchrun.yaml, jobs/, prompts/ at its root, what `make demo` runs)
is the starter project `batchrun init` writes (runner/data/project/, shipped in the wheel):
two copies of real files, so editing one never silently changes the other, and this test
says when they have drifted apart. No symlinks: `sed -i` or an editor replaces a link by a
file, and Windows checkouts turn links into text files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runner.starter import SCHEMA_FILE, starter_files

ROOT = Path(__file__).resolve().parent.parent
DEMO_PARTS = ("batchrun.yaml", "jobs", "prompts")


def repository_demo_files() -> dict[str, bytes]:
    """(relative path → content) of the repository's demo files, as `make demo` reads them."""
    found = {}
    for part in DEMO_PARTS:
        path = ROOT / part
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            found[file.relative_to(ROOT).as_posix()] = file.read_bytes()
    return found


def test_the_repository_demo_is_the_starter_project_init_writes():
    starter = {rel: content for rel, content in starter_files() if rel != SCHEMA_FILE}
    demo = repository_demo_files()
    assert sorted(demo) == sorted(starter), (
        "the repository's demo files and runner/data/project/ list different files: "
        f"only in the repository {sorted(set(demo) - set(starter))}, only in the starter "
        f"{sorted(set(starter) - set(demo))}; add or remove the file in both")
    differing = [rel for rel in starter if demo[rel] != starter[rel]]
    assert not differing, (
        f"not the same at the repository root and in runner/data/project/: {', '.join(differing)}; "
        "`make demo` runs the one and `batchrun init` writes the other: copy your change "
        "into both")


def test_the_demo_files_are_files_not_links():
    for part in DEMO_PARTS:
        path = ROOT / part
        assert not path.is_symlink(), f"{part} is a symlink"
        for inner in path.rglob("*") if path.is_dir() else ():
            assert not inner.is_symlink(), f"{inner.relative_to(ROOT)} is a symlink"


def test_git_tracks_no_symlink():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    links = [line.split("\t", 1)[1] for line in listed if line.startswith("120000 ")]
    assert not links, f"symlinks in the repository: {', '.join(links)}; commit the files instead"
