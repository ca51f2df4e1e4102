"""Reading a job's points: the paging rule (a bounded number of scroll calls per pass on
the embedded engine, `scroll_page` on a server) and partitions, through the real embedded
engine. Calls are counted, never timed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from runner.demo import sample_videos
from runner.errors import BatchrunError
from runner.jobs import Job, load_jobs
from runner.project import Partition, load_project
from runner.select import EMBEDDED_SCROLLS, Selection, page_size

JOB = "jobs/tags.yaml"
SELECTED = {"US", "GB", "CA"}   # the starter job's filter


def collection(points: int) -> QdrantClient:
    """An in-memory embedded Qdrant holding `points` sample videos (ids 1…points)."""
    videos = list(sample_videos())
    client = QdrantClient(location=":memory:")
    client.create_collection("videos", vectors_config={})
    client.upsert("videos", [models.PointStruct(id=i + 1, vector={},
                                                payload=videos[i % len(videos)])
                             for i in range(points)])
    return client


def selected_ids(client: QdrantClient) -> list[int]:
    records, _ = client.scroll("videos", limit=1_000_000, with_payload=["region"])
    return sorted(r.id for r in records if r.payload["region"] in SELECTED)


@pytest.fixture
def job(project: Any) -> Job:
    return load_jobs([JOB], load_project(project.root), project.root)[0]


class ScrollCalls:
    """Counts the scroll calls made on a client (qdrant-client's method, wrapped)."""

    def __init__(self, client: QdrantClient):
        self.limits: list[int] = []
        original = client.scroll

        def scroll(*args: Any, **kwargs: Any) -> Any:
            self.limits.append(kwargs["limit"])
            return original(*args, **kwargs)

        client.scroll = scroll  # type: ignore[method-assign]

    def __len__(self) -> int:
        return len(self.limits)


def read(selection: Selection, **kwargs: Any) -> Iterator[Any]:
    return (point.id for point in selection.points(**kwargs))


@pytest.mark.parametrize("points", [40, 400, 1200])
def test_the_embedded_engine_is_scrolled_a_bounded_number_of_times_per_pass(job, points):
    client = collection(points)
    expected = selected_ids(client)
    calls = ScrollCalls(client)
    ids = list(read(Selection(client, job, page=10, embedded=True)))
    assert ids == expected                          # every selected point, once, in id order
    assert 1 <= len(calls) <= EMBEDDED_SCROLLS      # 400 points no longer take 32 calls


def test_a_server_is_scrolled_in_pages_of_scroll_page(job):
    client = collection(400)   # the same engine, paged as a server is: its scroll is indexed
    expected = selected_ids(client)
    calls = ScrollCalls(client)
    ids = list(read(Selection(client, job, page=10, embedded=False)))
    assert ids == expected
    assert len(calls) == math.ceil(len(ids) / 10) == 34   # grows with the collection
    assert set(calls.limits) == {10}


def test_pages_grow_with_the_collection_only_on_the_embedded_engine():
    assert page_size(1_000_000, 10_000, embedded=True) == 250_000
    assert page_size(20_000, 10_000, embedded=True) == 10_000   # small: scroll_page stands
    assert page_size(1_000_001, 10_000, embedded=True) * EMBEDDED_SCROLLS >= 1_000_001
    assert page_size(1_000_000, 10_000, embedded=False) == 10_000


def test_a_limit_reads_no_more_than_it_needs(job):
    client = collection(400)
    expected = selected_ids(client)[:7]
    calls = ScrollCalls(client)
    ids = list(read(Selection(client, job, page=10, embedded=True), limit=7))
    assert ids == expected
    assert calls.limits == [7]


def test_partitions_are_disjoint_and_together_are_the_selection(job):
    client = collection(300)
    shares = [set(read(Selection(client, job, page=10, embedded=True,
                                 partition=Partition(i, 3)))) for i in (1, 2, 3)]
    assert all(shares)                                  # each runner gets some points
    assert sum(len(s) for s in shares) == len(set().union(*shares))   # none twice
    assert sorted(set().union(*shares)) == selected_ids(client)


@pytest.mark.parametrize("text", ["0/4", "5/4", "1", "a/b", "1/0", "-1/2"])
def test_a_partition_is_i_of_n(text):
    with pytest.raises(BatchrunError, match="is not I/N"):
        Partition.parse(text)
    assert Partition.parse("2/4") == Partition(2, 4)
