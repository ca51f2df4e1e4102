"""The emulator's Files API, through the real SDK (strict), in-process and over HTTP."""

from __future__ import annotations

import httpx2
import openai
import pytest
from emulator_fixtures import (  # noqa: F401  (fixtures)
    FakeClock,
    chat_requests,
    client,
    emulator,
    inprocess_client,
    jsonl,
    new_emulator,
    wait,
)

from runner.emulator import EmulatorConfig, start_in_thread


def test_an_uploaded_file_is_described_and_its_content_comes_back_byte_for_byte(client):
    data = jsonl(chat_requests(3)) + "é – ünïcode\n".encode()
    uploaded = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    assert (uploaded.bytes, uploaded.filename, uploaded.purpose) == (len(data), "input.jsonl",
                                                                      "batch")
    assert uploaded.status == "processed"
    assert uploaded.expires_at == uploaded.created_at + 30 * 86_400  # batch files: 30 days
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).content == data


def test_a_large_upload_streams_through_unchanged(client):
    data = jsonl(chat_requests(2)) * 20_000  # about 5 MB, many multipart chunks
    uploaded = client.files.create(file=("big.jsonl", data), purpose="batch")
    assert uploaded.bytes == len(data)
    assert client.files.content(uploaded.id).content == data


def test_files_are_listed_newest_first_filtered_by_purpose_and_paged(client):
    ids = [client.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="batch").id
           for i in range(5)]
    other = client.files.create(file=("notes.txt", b"x"), purpose="user_data").id
    page = client.files.list(purpose="batch", limit=2)
    assert [f.id for f in page.data] == ids[::-1][:2] and page.has_more is True
    assert [f.id for f in client.files.list(purpose="batch", limit=2)] == ids[::-1]
    assert [f.id for f in client.files.list(order="asc")] == [*ids, other]


def test_deleting_a_file_answers_deleted_and_later_reads_are_404(client):
    file_id = client.files.create(file=("a.jsonl", b"{}\n"), purpose="batch").id
    deleted = client.files.delete(file_id)
    assert (deleted.id, deleted.deleted, deleted.object) == (file_id, True, "file")
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            call(file_id)
        assert caught.value.body["message"] == f"No such File object: {file_id}"


@pytest.mark.parametrize("name", ["input.csv", "notes.txt", "input.json", "a.jsonl.txt"])
def test_a_batch_file_named_with_another_extension_is_refused(client, name):
    with pytest.raises(openai.BadRequestError, match="Must be .jsonl") as caught:
        client.files.create(file=(name, b"{}\n"), purpose="batch")
    assert caught.value.body["param"] == "file"


def test_bytes_uploaded_without_a_name_are_a_batch_file_like_curator_sends(client):
    uploaded = client.files.create(file=jsonl(chat_requests(2)), purpose="batch")  # bytes
    assert uploaded.filename == "upload"  # what the SDK names them
    for name in ("REQUESTS.JSONL", "requests"):
        assert client.files.create(file=(name, b"{}\n"), purpose="batch").filename == name
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert wait(client, batch.id).request_counts.completed == 2


def test_the_purpose_must_be_known(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("input.jsonl", b"{}\n"), purpose="training")  # type: ignore
    assert caught.value.body["code"] == "invalid_value"
    assert caught.value.body["param"] == "purpose"


def test_a_file_with_an_expiry_disappears_when_it_expires(new_emulator):
    clock = FakeClock()
    emu = new_emulator(config=EmulatorConfig.instant(), clock=clock)
    client = inprocess_client(emu)
    file_id = client.files.create(file=("a.jsonl", b"{}\n"), purpose="user_data",
                                  expires_after={"anchor": "created_at", "seconds": 3600}).id
    assert client.files.retrieve(file_id).expires_at == int(clock.now) + 3600
    clock.advance(3600)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)
    assert file_id not in [f.id for f in client.files.list()]


def test_a_call_without_a_bearer_token_is_401_in_the_api_error_shape(emulator):
    with start_in_thread(emulator) as server:
        for transport in (httpx2.WSGITransport(app=emulator), httpx2.HTTPTransport()):
            base = "http://emulator.invalid" if isinstance(transport, httpx2.WSGITransport) \
                else server.url.removesuffix("/v1")
            with httpx2.Client(transport=transport) as raw:
                answer = raw.get(f"{base}/v1/files")
            assert answer.status_code == 401
            error = answer.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "invalid_request_error"


def test_an_unknown_route_is_404_invalid_url(client):
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /v1/nothing\)"):
        client.get("/nothing", cast_to=object)
