"""Costs of real batches equal the figures worked out by hand from the printed rates.

Token totals are recomputed from the raw usage blocks (test_results.raw_usage) and checked
against the literals used in the hand arithmetic, so a parsing slip and a pricing slip both fail.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest
from test_results import chat_line, outcomes, raw_usage, total  # tests/ is on sys.path

from runner.errors import BatchrunError
from runner.pricing import PriceTable, Rates, cost, usd
from runner.results import Expect, Usage, parse_line

TABLE = PriceTable.load()
REQUIRED = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5",
            "gpt-5-mini", "gpt-5-nano", "o3", "o4-mini", "gpt-3.5-turbo",
            "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]


def batch_cost_of(relative: str, expect: Expect, model: str) -> Decimal:
    results = outcomes(relative, expect)
    assert {o.model for o in results} == {model}
    return cost(total(results), TABLE.lookup(model).batch)


def test_gpt_4o_mini_chat_batch_costs_what_the_batch_rates_say():
    assert raw_usage("chat-plain/gpt-4o-mini.output.jsonl") == Usage(67_762, 0, 208, 0)
    # batch gpt-4o-mini: $0.075 in, $0.30 out per 1M tokens
    #   67,762 × 0.075 = 5,082.15;  208 × 0.30 = 62.40;  5,144.55 / 1e6 = $0.00514455
    got = batch_cost_of("chat-plain/gpt-4o-mini.output.jsonl", Expect.TEXT,
                        "gpt-4o-mini-2024-07-18")
    assert got == Decimal("0.00514455")
    # standard: 67,762 × 0.15 = 10,164.30;  208 × 0.60 = 124.80;  10,289.10 / 1e6
    assert cost(Usage(67_762, 0, 208), TABLE.lookup("gpt-4o-mini").standard) \
        == Decimal("0.0102891")


def test_gpt_5_nano_reasoning_tokens_are_billed_once_as_output():
    assert raw_usage("chat-plain/gpt-5-nano.output.jsonl") == Usage(67_662, 0, 121_826, 120_640)
    # batch gpt-5-nano: $0.025 in, $0.20 out; the 120,640 reasoning tokens are inside 121,826
    #   67,662 × 0.025 = 1,691.55;  121,826 × 0.20 = 24,365.20;  26,056.75 / 1e6
    got = batch_cost_of("chat-plain/gpt-5-nano.output.jsonl", Expect.TEXT,
                        "gpt-5-nano-2025-08-07")
    assert got == Decimal("0.02605675")


def test_json_mode_on_a_dated_gpt_4o_costs_gpt_4o_batch_rates():
    assert raw_usage("chat-json-mode/output.jsonl") == Usage(46_440, 0, 21_571, 0)
    # batch gpt-4o: $1.25 in, $5.00 out
    #   46,440 × 1.25 = 58,050;  21,571 × 5 = 107,855;  165,905 / 1e6 = $0.165905
    got = batch_cost_of("chat-json-mode/output.jsonl", Expect.JSON, "gpt-4o-2024-08-06")
    assert got == Decimal("0.165905")


def test_responses_api_batches_cost_their_family_batch_rates():
    assert raw_usage("responses-api/valzaak.output.jsonl") == Usage(161, 0, 133, 0)
    # batch gpt-4.1-nano: $0.05 in, $0.20 out
    #   161 × 0.05 = 8.05;  133 × 0.20 = 26.60;  34.65 / 1e6 = $0.00003465
    assert batch_cost_of("responses-api/valzaak.output.jsonl", Expect.TEXT,
                         "gpt-4.1-nano-2025-04-14") == Decimal("0.00003465")
    assert raw_usage("responses-api/ayush.output.first300.jsonl") == Usage(240_946, 0, 7_773, 0)
    # batch gpt-4o-mini: 240,946 × 0.075 = 18,070.95;  7,773 × 0.30 = 2,331.90;  20,402.85 / 1e6
    assert batch_cost_of("responses-api/ayush.output.first300.jsonl", Expect.JSON,
                         "gpt-4o-mini-2024-07-18") == Decimal("0.02040285")


def test_embeddings_cost_input_only_and_ada_002_has_no_published_batch_price():
    results = outcomes("embeddings/output.jsonl", Expect.EMBEDDING)
    assert total(results) == raw_usage("embeddings/output.jsonl") == Usage(18, 0, 0, 0)
    ada = TABLE.lookup("text-embedding-ada-002")
    # standard ada-002: 18 × $0.10 / 1e6 = $0.0000018
    assert cost(total(results), ada.standard) == Decimal("0.0000018")
    assert ada.batch is None  # unknown, never $0
    # batch text-embedding-3-small: 1,000,000 × $0.01 / 1e6 = $0.01
    assert cost(Usage(1_000_000), TABLE.lookup("text-embedding-3-small").batch) == Decimal("0.01")


def test_cached_tokens_are_priced_at_the_cached_rate():
    usage = Usage(input_tokens=10_000, cached_tokens=4_000, output_tokens=500)
    # batch gpt-5-nano: 6,000 × 0.025 = 150;  4,000 × 0.0025 = 10;  500 × 0.20 = 100;  260 / 1e6
    assert cost(usage, TABLE.lookup("gpt-5-nano").batch) == Decimal("0.00026")
    # standard gpt-4o-mini: 6,000 × 0.15 = 900;  4,000 × 0.075 = 300;  500 × 0.60 = 300
    assert cost(usage, TABLE.lookup("gpt-4o-mini").standard) == Decimal("0.0015")


def test_cached_tokens_cost_the_input_rate_where_no_cached_price_is_published():
    usage = Usage(input_tokens=10_000, cached_tokens=4_000, output_tokens=500)
    rates = TABLE.lookup("gpt-4o-mini").batch
    assert rates.cached_input is None
    # 10,000 × 0.075 = 750;  500 × 0.30 = 150;  900 / 1e6
    assert cost(usage, rates) == Decimal("0.0009")


def test_cached_tokens_reported_through_a_real_shaped_line_reach_the_cost():
    usage = {"prompt_tokens": 2_048, "completion_tokens": 100, "total_tokens": 2_148,
             "prompt_tokens_details": {"cached_tokens": 1_024}}
    outcome = parse_line(chat_line("hi", usage=usage), expect=Expect.TEXT)
    # batch gpt-5: 1,024 × 0.625 = 640;  1,024 × 0.0625 = 64;  100 × 5 = 500;  1,204 / 1e6
    assert cost(outcome.usage, TABLE.lookup("gpt-5").batch) == Decimal("0.001204")


@pytest.mark.parametrize("model,family", [
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4o-2024-11-20", "gpt-4o"),
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
    ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
    ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
    ("o3-2025-04-16", "o3"),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
    ("GPT-4o-Mini", "gpt-4o-mini"),
])
def test_dated_ids_resolve_to_their_family(model, family):
    assert TABLE.lookup(model).model == family


@pytest.mark.parametrize("model", ["llama-3.1-8b-instant", "o3-mini", "gpt-5.2", "gpt-4o-mini-tts",
                                   "ft:gpt-4o-mini-2024-07-18:org::abc", ""])
def test_unknown_models_have_no_price_rather_than_a_wrong_one(model):
    assert TABLE.lookup(model) is None


def test_the_table_ships_every_required_family_with_its_source_and_date():
    assert TABLE.as_of == "2026-09-13"
    assert TABLE.source.startswith("https://")
    for family in REQUIRED:
        assert TABLE.lookup(family) is not None, family


def test_published_batch_prices_never_exceed_standard_ones():
    for price in TABLE.models.values():
        if price.batch is not None:
            assert price.batch.input <= price.standard.input, price.model
            assert price.batch.output <= price.standard.output, price.model


def test_batch_prices_are_data_in_the_shipped_file():
    raw = json.loads(resources.files("runner").joinpath("data", "prices.json").read_text())
    assert raw["models"]["gpt-4o-mini"]["batch"] == {"input": 0.075, "cached_input": None,
                                                     "output": 0.30}


def test_overrides_add_models_and_change_single_rates():
    table = PriceTable.load({
        "llama-3.1-8b-instant": {"standard": {"input": 0.05, "output": 0.08},
                                 "batch": {"input": 0.025, "output": 0.04}},
        "gpt-4o-mini": {"batch": {"cached_input": 0.0375}},
        "text-embedding-ada-002": {"batch": {"input": "0.05"}},
    })
    assert table.lookup("llama-3.1-8b-instant").batch == Rates(Decimal("0.025"), None,
                                                               Decimal("0.04"))
    mini = table.lookup("gpt-4o-mini-2024-07-18").batch
    assert (mini.input, mini.cached_input, mini.output) == (Decimal("0.075"), Decimal("0.0375"),
                                                            Decimal("0.30"))
    assert table.lookup("text-embedding-ada-002").batch.input == Decimal("0.05")
    assert PriceTable.load().lookup("gpt-4o-mini").batch.cached_input is None  # not shared


@pytest.mark.parametrize("overrides,key", [
    ({"gpt-4o": {"batch": {"output": "lots"}}}, "prices.gpt-4o.batch.output"),
    ({"gpt-4o": {"batch": {"output": -1}}}, "prices.gpt-4o.batch.output"),
    ({"gpt-4o": {"batch": {"input": True}}}, "prices.gpt-4o.batch.input"),
    ({"gpt-4o": {"batch": {"ouput": 1}}}, "prices.gpt-4o.batch.ouput"),
    ({"gpt-4o": {"priority": {}}}, "prices.gpt-4o.priority"),
    ({"new-model": {"batch": {"input": 1, "output": 2}}}, "prices.new-model.standard"),
    ({"new-model": {"standard": {"input": 1}}}, "prices.new-model.standard.output"),
    ({"new-model": 3}, "prices.new-model"),
])
def test_bad_overrides_name_the_file_and_key(overrides, key):
    with pytest.raises(BatchrunError) as caught:
        PriceTable.load(overrides, origin="batchrun.yaml")
    assert (caught.value.where.file, caught.value.where.key) == ("batchrun.yaml", key)


def test_yaml_floats_become_the_decimal_they_were_written_as():
    table = PriceTable.load({"m": {"standard": {"input": 0.1, "output": 0.7}}})
    assert table.lookup("m").standard.input == Decimal("0.1")


@pytest.mark.parametrize("amount,json_value", [
    (Decimal("0.00514455"), 0.00514455),
    (Decimal("0.000000015"), 0.00000002),  # half-even at 1e-8
    (Decimal("0.000000025"), 0.00000002),
    (Decimal("12.3456789012"), 12.3456789),
])
def test_usd_rounds_to_1e_8_for_json(amount, json_value):
    assert usd(amount) == json_value
