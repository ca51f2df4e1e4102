"""Walk through the OpenAI Files + Batches API with nothing but the `openai` SDK.

Run it against `batchrun emulator` (or, paying, against the real API):

    batchrun emulator --port 8765 &
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 python examples/emulator_smoke.py

(At the default speed: with `--speed instant` a batch has finished before the script can
cancel it, and the real API refuses to cancel a finished batch, so step 4 fails.)

Every answer is checked by the SDK's strict response validation. The script uploads a
request file, creates a batch with metadata, polls it to completion, downloads its output
and error files, cancels a second batch, pages through the list of batches, and asks one
of the batch's requests again, synchronously.
"""

from __future__ import annotations

import json
import os
import sys
import time

import openai

TERMINAL = {"completed", "failed", "expired", "cancelled"}
MODEL = "gpt-4o-mini"
SCHEMA = {
    "type": "object",
    "properties": {
        "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
        "category": {"type": "string",
                     "enum": ["Music", "Gaming", "News", "Education", "Entertainment", "Other"]},
    },
    "required": ["topics", "category"],
    "additionalProperties": False,
}
VIDEOS = [
    "Live concert in Berlin: the band plays their new album, music all night",
    "Speedrun of a classic platform game, gaming world record attempt",
    "Evening news: elections, weather and the markets",
    "Learn calculus in ten minutes: derivatives explained for education",
]


def request(custom_id: str, text: str) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": MODEL, "temperature": 0, "max_tokens": 200,
                     "messages": [{"role": "system", "content": "Tag the video."},
                                  {"role": "user", "content": text}],
                     "response_format": {"type": "json_schema", "json_schema": {
                         "name": "tags", "strict": True, "schema": SCHEMA}}}}


def upload(client: openai.OpenAI, requests: list[dict], name: str) -> str:
    data = "".join(json.dumps(r) + "\n" for r in requests).encode("utf-8")
    uploaded = client.files.create(file=(name, data), purpose="batch")
    print(f"uploaded {name}: {uploaded.id}, {uploaded.bytes} bytes")
    return uploaded.id


def poll(client: openai.OpenAI, batch_id: str, timeout: float = 120.0) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    seen = None
    while True:
        batch = client.batches.retrieve(batch_id)
        counts = batch.request_counts
        state = (batch.status, counts.completed if counts else 0, counts.failed if counts else 0)
        if state != seen:
            print(f"  {batch.id}: {batch.status}, {state[1]} completed, {state[2]} failed")
            seen = state
        if batch.status in TERMINAL:
            return batch
        if time.monotonic() > deadline:
            raise SystemExit(f"{batch_id} still {batch.status} after {timeout:.0f}s")
        time.sleep(0.2)


def download(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def main() -> int:
    if not os.environ.get("OPENAI_BASE_URL"):
        print("set OPENAI_BASE_URL, e.g. http://127.0.0.1:8765/v1", file=sys.stderr)
        return 2
    client = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "emulator"),
                           _strict_response_validation=True)

    print("1. upload and create a batch with metadata")
    file_id = upload(client, [request(f"video-{i}", t) for i, t in enumerate(VIDEOS)],
                     "tags.jsonl")
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h",
                                  metadata={"batchrun_job": "smoke", "batchrun_shard": "1"})
    print(f"created {batch.id} ({batch.status}) metadata={batch.metadata}")

    print("2. poll to a terminal state")
    batch = poll(client, batch.id)
    assert batch.status == "completed", batch.status

    print("3. download the output and error files")
    output, errors = download(client, batch.output_file_id), download(client, batch.error_file_id)
    for line in sorted(output, key=lambda line: line["custom_id"]):
        body = line["response"]["body"]
        print(f"  {line['custom_id']}: {body['choices'][0]['message']['content']} "
              f"({body['usage']['prompt_tokens']} + {body['usage']['completion_tokens']} tokens)")
    print(f"  {len(output)} output lines, {len(errors)} error lines")
    assert {line["custom_id"] for line in output + errors} == {f"video-{i}" for i in range(4)}

    print("4. cancel a batch")
    many = [request(f"long-{i}", VIDEOS[i % len(VIDEOS)]) for i in range(40)]
    doomed = client.batches.create(input_file_id=upload(client, many, "long.jsonl"),
                                   endpoint="/v1/chat/completions", completion_window="24h")
    while client.batches.retrieve(doomed.id).status == "validating":
        time.sleep(0.1)  # cancel once it runs, to see partial results kept
    cancelling = client.batches.cancel(doomed.id)
    print(f"cancel {doomed.id}: {cancelling.status}")
    doomed = poll(client, doomed.id)
    assert doomed.status == "cancelled", doomed.status
    finished = download(client, doomed.output_file_id)
    unfinished = download(client, doomed.error_file_id)
    print(f"  {len(finished)} finished lines kept, {len(unfinished)} cancelled lines")

    print("5. page through the batches, newest first")
    page = client.batches.list(limit=1)
    print(f"  first page: {[b.id for b in page.data]}, has_more={page.has_more}")
    listed = [b.id for b in client.batches.list(limit=1)]  # iterating fetches every page
    print(f"  {len(listed)} batches in all")
    assert listed[:2] == [doomed.id, batch.id], listed

    print("6. the same request, answered at once")
    now = client.chat.completions.create(**request("video-0", VIDEOS[0])["body"])
    batched = next(line for line in output if line["custom_id"] == "video-0")
    print(f"  at once:  {now.choices[0].message.content}")
    print(f"  in batch: {batched['response']['body']['choices'][0]['message']['content']}")
    assert now.choices[0].message.content, "an empty answer"
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
