"""The make-like rule for one point (runner/decide.py), as a table.

Each row is a situation a point can be in and what apply must do with it; together they
are the README's "what apply sends after a change" table, seen from one point.
"""

from __future__ import annotations

import pytest

from runner.decide import Decision, Rules, Verdict, Why, changed_fields, decide, unchanged
from runner.records import FAILED, QUEUED, RETRY, RequestState, Result

PROVIDER = "https://api.openai.com/v1"
NOW = 1_000_000.0
RULES = Rules(PROVIDER)


def stamp(key: str = "k1", inputs: str = "in1", provider: str = PROVIDER,
          batch: str = "batch_old") -> dict:
    return {"key": key, "inputs": inputs, "provider": provider, "batch": batch}


def cached(key: str = "k2", batch: str = "batch_old") -> Result:
    return Result(key, "json", {"topics": []}, "gpt-4o-mini", batch, "2026-01-01T00:00:00Z")


def request(state: str, attempts: int = 0, not_before: float = 0.0) -> RequestState:
    return RequestState(state, 7, attempts, 0, not_before, None)


@pytest.mark.parametrize("point_stamp, inputs, expected", [
    pytest.param(stamp(), "in1", True, id="nothing changed: not even rendered"),
    pytest.param(stamp(), "in2", False, id="a field it reads changed: rendered again"),
    pytest.param(None, "in1", False, id="never written: rendered"),
    pytest.param(stamp(provider="emulator"), "in1", False,
                 id="answered by another provider: rendered"),
])
def test_a_point_is_rendered_only_when_its_inputs_or_its_provider_changed(
        point_stamp, inputs, expected):
    assert unchanged(point_stamp, inputs, RULES) is expected


ROWS = [
    # (situation, stamp, key now, cached answer, ledger request, decision)
    ("inputs hash differently but render the same request", stamp("k1"), "k1", None, None,
     Decision(Verdict.RESTAMP)),
    ("k points' fields changed: each is one request", stamp("k1"), "k2", None, None,
     Decision(Verdict.PENDING, Why.CHANGED)),
    ("the template changed: a new key for every point", stamp("k1"), "k9", None, None,
     Decision(Verdict.PENDING, Why.CHANGED)),
    ("a change reverted: the old key's answer is cached", stamp("k9"), "k2", cached("k2"), None,
     Decision(Verdict.CACHED)),
    ("a second job with the same prompt: cached, free", None, "k2", cached("k2"), None,
     Decision(Verdict.CACHED)),
    ("k points added", None, "k3", None, None, Decision(Verdict.PENDING, Why.NEW)),
    ("its request is in a batch in flight", None, "k3", None, request(QUEUED),
     Decision(Verdict.IN_FLIGHT)),
    ("its request failed for good", None, "k3", None, request(FAILED, 3),
     Decision(Verdict.FAILED)),
    ("its retry backs off", None, "k3", None, request(RETRY, 1, NOW + 60),
     Decision(Verdict.WAITING)),
    ("its retry is due", None, "k3", None, request(RETRY, 1, NOW - 1),
     Decision(Verdict.PENDING, Why.RETRY)),
    ("its batch expired before it ran", None, "k3", None, request(RETRY, 0),
     Decision(Verdict.PENDING, Why.RERUN)),
    ("its answer came from the emulator", stamp("k1", provider="emulator"), "k1", None, None,
     Decision(Verdict.PENDING, Why.OTHER_PROVIDER)),
]


@pytest.mark.parametrize("point_stamp, key, answer, state, expected",
                         [pytest.param(*row[1:], id=row[0]) for row in ROWS])
def test_what_a_rendered_point_needs(point_stamp, key, answer, state, expected):
    assert decide(point_stamp, key, answer, state, NOW, RULES) == expected


def test_forced_a_stamp_or_answer_counts_only_from_the_batches_this_run_sent():
    forced = Rules(PROVIDER, force=True, fresh_batches=frozenset({"batch_new"}))
    assert not unchanged(stamp(), "in1", forced)
    assert unchanged(stamp(batch="batch_new"), "in1", forced)
    assert decide(None, "k2", cached("k2"), None, NOW, forced) == \
        Decision(Verdict.PENDING, Why.NEW)
    assert decide(None, "k2", cached("k2", batch="batch_new"), None, NOW, forced) == \
        Decision(Verdict.CACHED)


@pytest.mark.parametrize("point_stamp, fields_now, expected", [
    pytest.param({**stamp(), "fields": {"title": "a", "tags": "b"}}, {"title": "x", "tags": "b"},
                 ["title"], id="one field's digest differs: that field"),
    pytest.param({**stamp(), "fields": {"title": "a"}}, {"title": "a", "tags": "b"},
                 ["tags"], id="a field the point lacked before: named"),
    pytest.param({**stamp(), "fields": {"title": "a", "tags": "b"}}, {"title": "a"},
                 ["tags"], id="a field the point no longer has: named"),
    pytest.param({**stamp(), "fields": {"title": "a"}}, {"title": "a"}, [],
                 id="no field changed (the spec did): none named"),
    pytest.param(stamp(), {"title": "a"}, None,
                 id="a stamp written before field digests: cannot say"),
])
def test_the_fields_that_changed_are_named_from_the_stamps_digests(point_stamp, fields_now,
                                                                   expected):
    assert changed_fields(point_stamp, fields_now) == expected
