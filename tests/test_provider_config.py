"""Who answers, as data (runner/provider/config.py): a job's provider over the project's,
dialects, ids, where each keeps its ledger, and the keys only one provider takes."""

from __future__ import annotations

import pytest

from runner.provider import PROVIDERS
from runner.provider.config import (
    CAPABILITIES,
    dialect,
    effective,
    key_env,
    provider_id,
    state_subdir,
)
from runner.spec import ProviderConfig

JOB = "jobs/tags.yaml"


def test_a_job_provider_with_another_name_starts_from_that_providers_defaults():
    project = ProviderConfig(name="openai", api_key_env="MY_OPENAI_KEY", poll_interval=5)
    job = ProviderConfig.model_validate({"name": "anthropic"})
    mine = effective(project, job)
    assert mine.name == "anthropic" and mine.poll_interval == 30.0
    assert key_env(mine) == "ANTHROPIC_API_KEY"


def test_a_job_provider_without_a_name_overrides_only_the_keys_it_gives():
    project = ProviderConfig(name="anthropic", base_url="http://x.invalid", poll_interval=5)
    mine = effective(project, ProviderConfig.model_validate({"poll_interval": 1}))
    assert (mine.name, mine.base_url, mine.poll_interval) == ("anthropic", "http://x.invalid", 1)
    assert effective(project, None) is project


@pytest.mark.parametrize(("config", "kind", "who", "sub"), [
    ({"name": "openai"}, "openai", "https://api.openai.com/v1", None),
    ({"name": "openai", "base_url": "https://api.groq.com/openai/v1/"}, "openai",
     "https://api.groq.com/openai/v1", None),
    ({"name": "anthropic"}, "anthropic", "anthropic:https://api.anthropic.com", "anthropic"),
    ({"name": "azure", "base_url": "https://r.openai.azure.com"}, "azure",
     "azure:https://r.openai.azure.com", "azure"),
    ({"name": "emulator"}, "openai", "emulator", "emulator"),
    ({"name": "emulator", "dialect": "anthropic"}, "anthropic", "emulator:anthropic",
     "emulator-anthropic"),
    ({"name": "emulator", "dialect": "azure"}, "azure", "emulator:azure", "emulator-azure"),
])
def test_each_provider_has_its_dialect_id_and_ledger(config, kind, who, sub):
    cfg = ProviderConfig(**config)
    assert (dialect(cfg), provider_id(cfg, environ={}), state_subdir(cfg)) == (kind, who, sub)
    assert dialect(cfg) in CAPABILITIES


def test_the_sdk_reads_the_same_environment_for_the_id():
    env = {"ANTHROPIC_BASE_URL": "http://proxy.invalid/"}
    assert provider_id(ProviderConfig(name="anthropic"), environ=env) == \
        "anthropic:http://proxy.invalid"


def test_only_anthropic_lacks_batch_metadata_and_uploads():
    assert [k for k, c in CAPABILITIES.items() if not c.metadata] == ["anthropic"]
    assert [k for k, c in CAPABILITIES.items() if not c.uploads] == ["anthropic"]
    assert set(PROVIDERS) == set(CAPABILITIES)


def test_dialect_is_for_the_emulator_only(project):
    project.write_config(provider={"name": "openai", "dialect": "anthropic"})
    refused = project.run("validate", expect=1)
    assert "batchrun.yaml:7: provider.dialect: dialect is for the emulator" in refused.stderr


def test_azure_keys_are_refused_for_other_providers_where_the_job_writes_them(project):
    project.edit(JOB, "budget:", "provider:\n  name: anthropic\n  api_version: 2024-10-21\n"
                                 "budget:")
    refused = project.run("validate", JOB, expect=1)
    assert "jobs/tags.yaml:36: provider.api_version: api_version is for provider azure" \
        in refused.stderr


def test_an_unknown_provider_key_in_a_job_is_an_error(project):
    project.edit(JOB, "budget:", "provider: {name: anthropic, base_ulr: x}\nbudget:")
    refused = project.run("validate", JOB, expect=1)
    assert "unknown key 'base_ulr'; did you mean 'base_url'?" in refused.stderr
