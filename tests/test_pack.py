"""Shards: never over the request or byte limit, named by their bytes, identical for
identical pending requests, complete or absent."""

from __future__ import annotations

import hashlib
import json

import pytest

from runner.artifacts import Artifacts
from runner.errors import BatchrunError
from runner.keys import BodyFrame
from runner.pack import SHARDS, Packer, Shard


class Ledger:
    """What the packer tells the ledger, kept in memory for the test."""

    def __init__(self):
        self.keys: dict[int, list[str]] = {}
        self.closed: list[Shard] = []

    def open_shard(self) -> int:
        self.keys[len(self.keys) + 1] = []
        return len(self.keys)

    def add_key(self, seq, key):
        self.keys[seq].append(key)

    def close_shard(self, shard):
        self.closed.append(shard)


FRAME = BodyFrame("/v1/embeddings", {"model": "text-embedding-3-small"}, ("input",))


def lines(count, size=10):
    return [(f"k{i:05d}", FRAME.line(f"k{i:05d}", FRAME.serialise({"input": "x" * size})))
            for i in range(count)]


def pack(tmp_path, items, **limits):
    ledger = Ledger()
    packer = Packer(Artifacts(tmp_path), ledger, **limits)
    for key, line in items:
        packer.add(key, line)
    return packer.close(), ledger


def test_a_shard_holds_at_most_max_requests_lines(tmp_path):
    shards, ledger = pack(tmp_path, lines(25), max_requests=10, max_bytes=10**9)
    assert [s.requests for s in shards] == [10, 10, 5]
    assert [len(k) for k in ledger.keys.values()] == [10, 10, 5]


def test_a_shard_never_exceeds_max_bytes_and_fills_up_to_it_exactly(tmp_path):
    items = lines(10)
    size = len(items[0][1])
    shards, _ = pack(tmp_path, items, max_requests=50_000, max_bytes=size * 3)
    assert [s.bytes for s in shards] == [size * 3, size * 3, size * 3, size]
    for shard in shards:
        assert (tmp_path / SHARDS / f"{shard.sha}.jsonl").stat().st_size == shard.bytes


def test_a_shard_is_named_by_the_sha256_of_its_bytes(tmp_path):
    shards, _ = pack(tmp_path, lines(3), max_requests=10, max_bytes=10**9)
    data = (tmp_path / SHARDS / f"{shards[0].sha}.jsonl").read_bytes()
    assert hashlib.sha256(data).hexdigest() == shards[0].sha
    assert [json.loads(line)["custom_id"] for line in data.splitlines()] == ["k00000", "k00001",
                                                                              "k00002"]


def test_the_same_pending_requests_make_the_same_shard(tmp_path):
    first, _ = pack(tmp_path / "a", lines(7), max_requests=5, max_bytes=10**9)
    again, _ = pack(tmp_path / "b", lines(7), max_requests=5, max_bytes=10**9)
    assert [s.sha for s in first] == [s.sha for s in again]


def test_a_request_larger_than_a_whole_shard_is_refused(tmp_path):
    with pytest.raises(BatchrunError, match="over the shard limit"):
        pack(tmp_path, lines(1, size=500), max_requests=10, max_bytes=100)


def test_an_aborted_shard_leaves_no_file_behind(tmp_path):
    packer = Packer(Artifacts(tmp_path), Ledger(), max_requests=10, max_bytes=10**9)
    for key, line in lines(3):
        packer.add(key, line)
    packer.abort()
    assert list((tmp_path / SHARDS).iterdir()) == []


def test_50000_requests_fill_exactly_one_full_shard(tmp_path):
    shards, _ = pack(tmp_path, lines(50_001, size=1), max_requests=50_000, max_bytes=200_000_000)
    assert [s.requests for s in shards] == [50_000, 1]
