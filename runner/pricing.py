"""What tokens cost: the shipped price table, overrides, and exact costs.

The table is data (`runner/data/prices.json`), not code: per model family, USD per 1M tokens
for input, cached input and output, at standard prices and at Batch API prices. Batch prices
are the published figures, never derived from the standard ones. Where a price is not
published it is null: a null cached-input rate means cached tokens cost the input rate of
the same tier; a null batch tier means batch cost is unknown. An unknown model is "price
unknown" (`lookup` returns None), never $0.

Costs are exact `Decimal`s; `usd()` rounds one for JSON.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from importlib import resources
from typing import Any

from .errors import BatchrunError, Location
from .results import Usage

PRICES_FILE = "runner/data/prices.json"
# A snapshot suffix: -2024-07-18 (most OpenAI models), -0125 (older ones), -20251001 (Claude).
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")
_ENTRY_KEYS = {"kind", "standard", "batch", "note"}
_RATE_KEYS = {"input", "cached_input", "output", "cache_write", "cache_write_1h"}
_PER_TOKENS = 6  # rates are per 10**6 tokens


@dataclass(frozen=True)
class Rates:
    """USD per 1M tokens. `cached_input` None: not published, cached tokens cost `input`.
    Prompt-cache writes (Anthropic bills them apart): `cache_write` for five minutes,
    `cache_write_1h` for an hour; None: not published, they cost `input` (and an hour's
    write costs `cache_write`)."""

    input: Decimal
    cached_input: Decimal | None
    output: Decimal
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None


@dataclass(frozen=True)
class ModelPrice:
    model: str  # the family key in the table, e.g. "gpt-4o-mini"
    standard: Rates
    batch: Rates | None  # None: no published Batch API price
    note: str = ""


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    source: str
    models: Mapping[str, ModelPrice]

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping] | None = None, *,
             origin: str = "batchrun.yaml") -> PriceTable:
        """The shipped table, with `prices:` overrides from the project file applied.

        An override has the shape of an entry in prices.json. For a model already in the
        table it may give only what changes (`{batch: {input: 0.05}}`); a new model needs
        `standard` (and `batch`, or it has no batch price). Bad overrides raise BatchrunError
        naming `origin` and the key, e.g. `prices.gpt-4o.batch.output`."""
        shipped = json.loads(_shipped_text(), parse_float=Decimal)
        raw_models = {name.lower(): entry for name, entry in shipped["models"].items()}
        overridden: set[str] = set()
        if overrides is not None:
            if not isinstance(overrides, Mapping):
                raise _error(origin, "prices", "expected a mapping of model name to prices")
            for name, override in overrides.items():
                key = f"prices.{name}"
                if not isinstance(name, str) or not isinstance(override, Mapping):
                    raise _error(origin, key, "expected a mapping with standard and batch prices")
                family = name.strip().lower()
                raw_models[family] = _merge(raw_models.get(family), override)
                overridden.add(family)
        models = {}
        for family, entry in raw_models.items():
            file, prefix = (origin, "prices") if family in overridden else (PRICES_FILE, "models")
            models[family] = _model_price(family, entry, Location(file, 0, f"{prefix}.{family}"))
        return cls(as_of=str(shipped["as_of"]), source=str(shipped["source"]), models=models)

    def close_to(self, model: str) -> str | None:
        """A priced model whose name is close to `model` (a typo?), if any."""
        close = difflib.get_close_matches(model.strip().lower(), list(self.models), n=1,
                                          cutoff=0.85)
        return close[0] if close else None

    def lookup(self, model: str) -> ModelPrice | None:
        """The prices of a model id: exact entry first, else its family without the snapshot
        date ("gpt-4o-mini-2024-07-18" → gpt-4o-mini). None when unknown."""
        name = model.strip().lower()
        found = self.models.get(name)
        if found is None and _SNAPSHOT.search(name):
            found = self.models.get(_SNAPSHOT.sub("", name))
        return found


def cost(usage: Usage, rates: Rates) -> Decimal:
    """Exact USD: fresh input at `input`, cached input at `cached_input` (or `input` when not
    published), cache writes at `cache_write` / `cache_write_1h` (module doc of Rates),
    output at `output`. Reasoning tokens are already inside output."""
    cached = min(usage.cached_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    hour = min(usage.cache_write_1h_tokens, written)
    cached_rate = rates.cached_input if rates.cached_input is not None else rates.input
    write_rate = rates.cache_write if rates.cache_write is not None else rates.input
    hour_rate = rates.cache_write_1h if rates.cache_write_1h is not None else write_rate
    total = ((usage.input_tokens - cached - written) * rates.input + cached * cached_rate
             + (written - hour) * write_rate + hour * hour_rate
             + usage.output_tokens * rates.output)
    return Decimal(total).scaleb(-_PER_TOKENS)


def usd(amount: Decimal) -> float:
    """A cost for JSON output, rounded to 1e-8 USD."""
    return float(amount.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN))


@functools.cache
def _shipped_text() -> str:
    return resources.files("runner").joinpath("data", "prices.json").read_text(encoding="utf-8")


def _merge(base: Any, override: Mapping) -> dict:
    """An override laid over a shipped entry, tier by tier."""
    merged = dict(base) if isinstance(base, Mapping) else {}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _model_price(family: str, entry: Any, where: Location) -> ModelPrice:
    if not isinstance(entry, Mapping):
        raise _error(where.file, where.key, "expected a mapping with standard and batch prices")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise _error(where.file, f"{where.key}.{unknown[0]}",
                     f"unknown key; expected one of {', '.join(sorted(_ENTRY_KEYS))}")
    kind = entry.get("kind", "text")
    if kind not in ("text", "embedding"):
        raise _error(where.file, f"{where.key}.kind", "expected 'text' or 'embedding'")
    if entry.get("standard") is None:
        raise _error(where.file, f"{where.key}.standard", "missing: standard prices are required")
    standard = _rates(entry["standard"], where, "standard", kind)
    batch = None if entry.get("batch") is None else _rates(entry["batch"], where, "batch", kind)
    return ModelPrice(family, standard, batch, str(entry.get("note", "")))


def _rates(raw: Any, where: Location, tier: str, kind: str) -> Rates:
    key = f"{where.key}.{tier}"
    if not isinstance(raw, Mapping):
        raise _error(where.file, key, "expected a mapping with input, cached_input and output")
    unknown = sorted(set(raw) - _RATE_KEYS)
    if unknown:
        raise _error(where.file, f"{key}.{unknown[0]}",
                     "unknown key; expected input, cached_input, output, cache_write or "
                     "cache_write_1h")
    if raw.get("input") is None:
        raise _error(where.file, f"{key}.input", "missing: USD per 1M input tokens")
    if raw.get("output") is None and kind != "embedding":
        raise _error(where.file, f"{key}.output", "missing: USD per 1M output tokens")
    def optional(name: str) -> Decimal | None:
        value = raw.get(name)
        return None if value is None else _usd_rate(value, where.file, f"{key}.{name}")

    return Rates(input=_usd_rate(raw["input"], where.file, f"{key}.input"),
                 cached_input=optional("cached_input"),
                 output=_usd_rate(raw.get("output", 0), where.file, f"{key}.output"),
                 cache_write=optional("cache_write"), cache_write_1h=optional("cache_write_1h"))


def _usd_rate(value: Any, file: str, key: str) -> Decimal:
    """A non-negative rate as an exact Decimal (floats from YAML go through their repr)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _error(file, key, f"expected a number of USD per 1M tokens, got {value!r}")
    try:
        rate = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise _error(file, key, f"expected a number of USD per 1M tokens, got {value!r}") from None
    if not rate.is_finite() or rate < 0:
        raise _error(file, key, f"expected a non-negative number, got {value!r}")
    return rate


def _error(file: str, key: str, message: str) -> BatchrunError:
    return BatchrunError(message, where=Location(file, 0, key),
                         hint="prices are USD per 1M tokens, as on the provider's pricing page")
