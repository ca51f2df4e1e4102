"""The rule every copy of a project applies to the batches of one shard: keep the earliest
created of those running or completed (ties: the smallest id), cancel the others still
running, give up the rest — the same answer in every copy, whatever order it lists them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from runner.rivals import settle


@dataclass(frozen=True)
class B:
    id: str
    status: str
    created_at: int


def test_the_earliest_running_batch_is_kept_and_the_later_one_cancelled():
    first, second = B("batch_b", "validating", 100), B("batch_a", "validating", 101)
    decision = settle([second, first])
    assert decision.kept == first
    assert decision.cancel == [second] and decision.given_up == [second]


def test_batches_created_in_the_same_second_are_ordered_by_id():
    # created_at has whole seconds: two copies racing usually share one
    later_id, smaller_id = B("batch_6b12f", "validating", 100), B("batch_6b12a", "in_progress", 100)
    assert settle([later_id, smaller_id]).kept == smaller_id


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_copy_decides_the_same_whatever_order_its_list_shows(order):
    batches = [B("batch_c", "validating", 101), B("batch_b", "in_progress", 100),
               B("batch_a", "cancelled", 99), B("batch_d", "validating", 100)]
    decision = settle([batches[i] for i in order])
    assert decision.kept == batches[1]
    assert sorted(b.id for b in decision.cancel) == ["batch_c", "batch_d"]
    assert sorted(b.id for b in decision.given_up) == ["batch_a", "batch_c", "batch_d"]


def test_a_completed_batch_is_kept_over_a_later_running_one():
    # the first copy's batch finished before the second copy listed: its answers are there
    done, late = B("batch_a", "completed", 100), B("batch_b", "validating", 160)
    decision = settle([late, done])
    assert decision.kept == done and decision.cancel == [late]


@pytest.mark.parametrize("status", ["failed", "expired", "cancelling", "cancelled"])
def test_a_batch_that_will_not_answer_is_never_kept(status):
    dead, running = B("batch_a", status, 100), B("batch_b", "validating", 200)
    decision = settle([dead, running])
    assert decision.kept == running
    assert decision.cancel == [] and decision.given_up == [dead]


def test_without_a_batch_running_or_completed_there_is_nothing_to_choose():
    # an expired batch holds the answers it finished: each is adopted on its own
    decision = settle([B("batch_a", "expired", 100), B("batch_b", "failed", 200)])
    assert decision.kept is None and decision.cancel == [] and decision.given_up == []
