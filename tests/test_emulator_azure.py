"""The Azure OpenAI URL layout (openai.AzureOpenAI over HTTP) and the OpenAI layout under
another base path."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from click.testing import CliRunner
from emulator_fixtures import (  # noqa: F401  (fixtures)
    PACED,
    EmulatorProcess,
    chat_request,
    chat_requests,
    clock,
    jsonl,
    read_lines,
    run_batch,
    sdk_client,
    wait,
)

from runner.emulator import Emulator, EmulatorConfig, Faults, HttpFault, start_in_thread
from runner.emulator.command import emulator_command
from runner.errors import BatchrunError
from runner.keys import request_key

API_VERSION = "2024-10-21"
DEPLOYMENTS = {"tagger-batch": "gpt-4o-mini", "vectors": "text-embedding-3-small"}


class Recorder:
    """The app, recording what each HTTP call asked for and how it authenticated."""

    def __init__(self, app: Emulator):
        self.app = app
        self.calls: list[dict[str, Any]] = []

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.calls.append({"call": f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}",
                           "query": environ.get("QUERY_STRING", ""),
                           "api_key": environ.get("HTTP_API_KEY"),
                           "authorization": environ.get("HTTP_AUTHORIZATION")})
        return self.app(environ, start_response)


@pytest.fixture
def azure() -> Iterator[tuple[Any, Recorder, Emulator]]:
    """An emulator with two Azure deployments, served on 127.0.0.1 behind a Recorder."""
    emu = Emulator(config=EmulatorConfig.instant(azure_deployments=DEPLOYMENTS))
    recorder = Recorder(emu)
    with start_in_thread(recorder) as server:  # type: ignore[arg-type]
        yield server, recorder, emu
    emu.close()


def azure_client(server: Any, **options: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=server.origin, api_version=API_VERSION,
                              api_key="azure-key", _strict_response_validation=True,
                              **options)


def azure_lines(count: int, deployment: str = "tagger-batch") -> list[dict[str, Any]]:
    """Batch input lines as Azure's documentation writes them: url without /v1, the
    deployment as model."""
    return [{**line, "url": "/chat/completions", "body": {**line["body"], "model": deployment}}
            for line in chat_requests(count)]


def test_an_azure_client_runs_a_batch_over_the_azure_layout(azure):
    server, recorder, emu = azure
    client = azure_client(server)
    uploaded = client.files.create(file=("requests.jsonl", jsonl(azure_lines(3))),
                                   purpose="batch")
    created = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                    completion_window="24h", metadata={"job": "tags"})
    batch = wait(client, created.id)
    assert batch.status == "completed" and batch.endpoint == "/chat/completions"
    assert batch.model == "gpt-4o-mini-2024-07-18"  # the model the deployment runs
    output = read_lines(client, batch.output_file_id)
    assert sorted(line["custom_id"] for line in output) == ["r0", "r1", "r2"]
    assert {line["response"]["body"]["model"] for line in output} == {"gpt-4o-mini-2024-07-18"}
    assert [b.id for b in client.batches.list()] == [batch.id]
    assert client.files.retrieve(uploaded.id).filename == "requests.jsonl"
    calls = {c["call"] for c in recorder.calls}
    assert {"POST /openai/files", "POST /openai/batches", f"GET /openai/batches/{batch.id}",
            "GET /openai/batches", f"GET /openai/files/{batch.output_file_id}/content"} <= calls
    assert all(c["query"] == f"api-version={API_VERSION}" and c["api_key"] == "azure-key"
               and c["authorization"] is None for c in recorder.calls)
    assert sum(emu.executions(billed=True).values()) == 3


def test_an_azure_batch_is_cancelled_with_what_it_finished(clock):
    emu = Emulator(config=dataclasses.replace(PACED, azure_deployments=DEPLOYMENTS),
                   clock=clock)
    with start_in_thread(emu) as server:
        client = azure_client(server)
        uploaded = client.files.create(file=("r.jsonl", jsonl(azure_lines(6))),
                                       purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                      completion_window="24h")
        clock.advance(12)  # validated, two requests done
        assert client.batches.cancel(batch.id).status == "cancelling"
        clock.advance(100)
        done = client.batches.retrieve(batch.id)
        assert done.status == "cancelled" and done.endpoint == "/chat/completions"
        assert len(read_lines(client, done.output_file_id)) == 2
        assert len(read_lines(client, done.error_file_id)) == 4
    emu.close()


def test_a_line_naming_no_deployment_fails_the_batch(azure):
    server, _, _ = azure
    client = azure_client(server)
    lines = azure_lines(1) + [
        {**azure_lines(1, deployment="no-such-deployment")[0], "custom_id": "x"}]
    uploaded = client.files.create(file=("r.jsonl", jsonl(lines)), purpose="batch")
    batch = wait(client, client.batches.create(input_file_id=uploaded.id,
                                               endpoint="/chat/completions",
                                               completion_window="24h").id)
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("model_not_found", 2)]


def test_azure_sync_calls_name_the_deployment_in_the_path(azure):
    server, recorder, emu = azure
    client = azure_client(server)
    messages = chat_request("x", "Video 3: a cooking show")["body"]["messages"]
    chat = client.chat.completions.create(model="tagger-batch", messages=messages)
    vector = client.embeddings.create(model="vectors", input="a cooking show",
                                      encoding_format="float")
    reply = client.responses.create(model="tagger-batch", input="a cooking show")
    assert chat.model == "gpt-4o-mini-2024-07-18" and len(vector.data[0].embedding) == 1536
    assert reply.output_text
    pinned = azure_client(server, azure_deployment="tagger-batch")
    again = pinned.chat.completions.create(model="ignored-by-azure", messages=messages)
    assert again.choices[0].message.content == chat.choices[0].message.content
    calls = [c["call"] for c in recorder.calls]
    assert calls == ["POST /openai/deployments/tagger-batch/chat/completions",
                     "POST /openai/deployments/vectors/embeddings",
                     "POST /openai/responses",
                     "POST /openai/deployments/tagger-batch/chat/completions"]
    body = {"model": "tagger-batch", "messages": messages}
    assert emu.executions()[request_key("/v1/chat/completions", body)] == 1


def test_azure_errors_for_an_unknown_deployment_a_missing_version_or_key(azure):
    server, _, _ = azure
    with pytest.raises(openai.NotFoundError) as unknown:
        azure_client(server).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "DeploymentNotFound"
    with httpx2.Client() as raw:
        unversioned = raw.get(server.origin + "/openai/batches",
                              headers={"api-key": "azure-key"})
        keyless = raw.get(server.origin + f"/openai/batches?api-version={API_VERSION}")
    assert unversioned.status_code == 404
    assert unversioned.json()["error"]["message"] == "Resource not found"
    assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "401"


def test_http_faults_name_the_emulator_route_whatever_the_layout(azure):
    server, _, emu = azure
    emu.faults = Faults(http=(HttpFault("POST /v1/batches", 429, times=1),))
    client = azure_client(server, max_retries=0)
    uploaded = client.files.create(file=("r.jsonl", jsonl(azure_lines(1))), purpose="batch")
    with pytest.raises(openai.RateLimitError):
        client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                              completion_window="24h")


def test_the_azure_v1_api_is_the_openai_layout_under_openai_v1(azure):
    server, recorder, _ = azure
    client = openai.OpenAI(base_url=server.origin + "/openai/v1/", api_key="azure-key",
                           _strict_response_validation=True)
    lines = [{**line, "body": {**line["body"], "model": "tagger-batch"}}
             for line in chat_requests(2)]  # url /v1/chat/completions, model a deployment
    batch, output, errors = run_batch(client, lines)
    assert batch.status == "completed" and len(output) == 2 and errors == []
    assert recorder.calls[0]["call"] == "POST /openai/v1/files"
    assert recorder.calls[0]["authorization"] == "Bearer azure-key"
    assert all(c["query"] == "" for c in recorder.calls)  # the v1 API needs no api-version


def test_the_openai_layout_can_be_served_under_another_base_path(tmp_path):
    emu = Emulator(config=EmulatorConfig.instant(base_path="/compat/openai/v1/"))
    try:
        with start_in_thread(emu) as server:
            assert server.url.endswith("/compat/openai/v1")
            client = sdk_client(server.url)
            batch, output, _ = run_batch(client, chat_requests(2))
            assert batch.status == "completed" and len(output) == 2
            chat = client.chat.completions.create(**chat_requests(1)[0]["body"])
            assert chat.choices[0].message.content
            with httpx2.Client() as raw:
                elsewhere = raw.get(server.origin + "/v1/batches",
                                    headers={"Authorization": "Bearer k"})
                health = raw.get(server.origin + "/_emulator/health")
            assert elsewhere.status_code == 404 and "/compat/openai/v1" in elsewhere.text
            assert health.json()["config"]["base_path"] == "/compat/openai/v1"
    finally:
        emu.close()


def test_the_command_line_serves_a_base_path_and_azure_deployments():
    with EmulatorProcess("--port", "0", "--speed", "instant", "--base-path", "/compat/v1",
                         "--azure-deployment", "tagger-batch=gpt-4o-mini") as server:
        assert server.url.endswith("/compat/v1")
        origin = server.url.removesuffix("/compat/v1")
        client = openai.AzureOpenAI(azure_endpoint=origin, api_version=API_VERSION,
                                    api_key="k")
        chat = client.chat.completions.create(
            model="tagger-batch", messages=[{"role": "user", "content": "a cooking show"}])
        assert chat.model == "gpt-4o-mini-2024-07-18"
        plain = sdk_client(server.url).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a cooking show"}])
        assert plain.choices[0].message.content == chat.choices[0].message.content
        with httpx2.Client() as raw:
            config = raw.get(origin + "/_emulator/health").json()["config"]
    assert config["azure_deployments"] == {"tagger-batch": "gpt-4o-mini"}
    assert config["base_path"] == "/compat/v1"


@pytest.mark.parametrize("args,named", [(["--azure-deployment", "tagger"], "tagger"),
                                        (["--base-path", "/"], "base path"),
                                        (["--base-path", "/openai/v1"], "/openai")])
def test_a_bad_layout_option_is_refused_before_serving(args, named):
    result = CliRunner().invoke(emulator_command, args)
    assert isinstance(result.exception, BatchrunError)
    assert named in str(result.exception)
