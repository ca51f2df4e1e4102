"""The project: `batchrun.yaml`, found from where batchrun runs, and what follows from it —
the root, the state directory of the configured provider, who answers and which data a
job writes to. A missing project file means the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import BatchrunError, Location, SpecError
from .keys import digest
from .pricing import PriceTable
from .provider import config as providers
from .spec import Project, ProviderConfig
from .specerrors import shown, validate_model
from .yamlfile import Positions, load

PROJECT_FILE = "batchrun.yaml"


@dataclass(frozen=True)
class Partition:
    """One runner's share of every job: the points whose id falls in slice `index` (1 to
    `count`) of Qdrant's `slice` condition. docs/scale.md says how runners split a job."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        """"2/4" → the second of four partitions."""
        index, sep, count = text.partition("/")
        try:
            partition = cls(int(index), int(count)) if sep else None
        except ValueError:
            partition = None
        if partition is None or not 1 <= partition.index <= partition.count:
            raise BatchrunError(f"--partition {text!r} is not I/N with 1 ≤ I ≤ N",
                                hint="for example --partition 1/4 … --partition 4/4, one "
                                     "per runner")
        return partition

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class ProjectContext:
    root: Path
    config: Project
    file: str | None           # display path of batchrun.yaml, None when absent
    partition: Partition | None = None   # this runner's share of every job (--partition)

    @property
    def state_dir(self) -> Path:
        """The ledger of the configured provider. The emulator keeps its own, inside, so
        trying a job for free never leaves made-up answers where real ones are expected;
        so does every provider but OpenAI (provider/config.py says where). A partition keeps
        its own too: each runner owns its state, as on its own machine."""
        base = (self.root / self.config.state_dir).resolve()
        if self.partition is not None:
            base = base / f"partition-{self.partition.index}-of-{self.partition.count}"
        sub = providers.state_subdir(self.config.provider)
        return base / sub if sub else base

    @property
    def provider_id(self) -> str:
        """Who answers: `emulator`, or the API's base URL. Stamps and the ledger carry it."""
        return providers.provider_id(self.config.provider)

    def for_provider(self, provider: ProviderConfig) -> ProjectContext:
        """The same project answered by `provider` (a job's own, over the project's)."""
        if provider == self.config.provider:
            return self
        return replace(self, config=self.config.model_copy(update={"provider": provider}))

    def target_id(self, collection: str) -> str:
        """Which data a job writes to: the Qdrant server (or embedded folder) and the
        collection. Batches carry it, so projects sharing an OpenAI organisation and a job
        name never adopt each other's batches."""
        cfg = self.config.qdrant
        # Not an absolute path: a CI runner checking the project out elsewhere must still
        # find the batches it created (the folder name tells projects apart).
        where = cfg.url or f"{self.root.name}/{cfg.path or '.qdrant'}"
        if self.partition is not None:
            # Runners of one job never adopt each other's batches: each pays for its share.
            return digest([where, collection, str(self.partition)])[:16]
        return digest([where, collection])[:16]


def load_project(start: Path, environ: Mapping[str, str] | None = None) -> ProjectContext:
    """batchrun.yaml from `start` or the nearest parent holding one; defaults otherwise."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            data, positions = load(candidate, display_path(candidate, start), environ)
            data = {} if data is None else data
            check_root(data, positions, "project file", "qdrant, provider, state_dir")
            if isinstance(data.get("provider"), str):   # `provider: emulator` shorthand
                data["provider"] = {"name": data["provider"]}
            config = validate_model(Project, data, positions)
            check_provider(config.provider, positions, ("provider",))
            _check_prices(config, data, positions)
            return ProjectContext(folder, config, positions.file)
    return ProjectContext(start, Project(), None)


def check_provider(cfg: ProviderConfig, positions: Positions, at: tuple[str, ...]) -> None:
    """Keys that mean something for one provider only are errors elsewhere: a typo of
    the provider's name must not silently send to another API."""
    kind = providers.dialect(cfg)
    if cfg.dialect is not None and cfg.name != "emulator":
        raise SpecError(f"dialect is for the emulator; provider {cfg.name} speaks its own API",
                        where=positions.at((*at, "dialect")),
                        hint="remove dialect, or set name: emulator to try this dialect free")
    for key in ("api_version", "deployments"):
        if kind != "azure" and getattr(cfg, key):
            raise SpecError(f"{key} is for provider azure, not {cfg.name}",
                            where=positions.at((*at, key)), hint=f"remove {key}")


def _check_prices(config: Project, data: dict, positions: Positions) -> None:
    """Price overrides are checked with the project file, so errors point at their line."""
    try:
        PriceTable.load(config.prices, origin=positions.file)
    except BatchrunError as exc:
        if exc.where is None or exc.where.file != positions.file:
            raise
        path = _key_path(data, exc.where.key)
        raise SpecError(exc.message, where=positions.at(path), hint=exc.hint) from None


def _key_path(data: Any, dotted_key: str) -> tuple[str, ...]:
    """"prices.gpt-4.1.batch.input" → ("prices", "gpt-4.1", "batch", "input"): keys may
    hold dots, so the path is found by walking the data."""
    path: list[str] = []
    rest = dotted_key
    while rest and isinstance(data, dict):
        key = next((k for k in sorted(map(str, data), key=len, reverse=True)
                    if rest == k or rest.startswith(k + ".")), None)
        if key is None:
            break
        path.append(key)
        data, rest = data.get(key), rest[len(key) + 1:]
    return (*path, *([rest] if rest else []))


def check_root(data: Any, positions: Positions, what: str, keys: str) -> None:
    if data is None:
        raise SpecError(f"the file is empty; expected a {what} (a mapping with {keys})",
                        where=Location(positions.file, 1))
    if not isinstance(data, dict):
        raise SpecError(f"expected a {what} (a mapping with {keys}), got {shown(data)}",
                        where=Location(positions.file, positions.line(())))


def display_path(path: Path, cwd: Path) -> str:
    """The path as the user names it: relative to where batchrun runs, symlinks kept (a
    linked jobs/tags.yaml is still called that, not the file it points to)."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(cwd)))
    except ValueError:
        return str(path)
