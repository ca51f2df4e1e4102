"""Bad input (issue #4): every malformed spec, project file, template, filter, schema or
batch file is one line naming the file, the line and the key, and saying what was
expected, with a hint where there is a next step; never a traceback without --debug.

Each case breaks the starter project one way (jobs/tags.yaml and its prompts, as
`batchrun init` writes them), runs the real CLI, and asserts the exact first line of the
error, exit code 1, and the same facts in `--json` as {"error": {message, file, line, key}}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import openai
import pytest
import yaml
from conftest import Project

ERROR_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "output" /
                           "error.schema.json").read_text(encoding="utf-8"))
JOB = "jobs/tags.yaml"
USER = "prompts/tags.user.j2"
Breaks = Callable[[Project], None]
SECRET = ("${{{name}}} would put a secret into every request: it would be sent to the model "
          "and stored with the answers; environment variables named *KEY*, *TOKEN*, *SECRET* "
          "or *PASSWORD* are never interpolated into prompts, params or the output schema")
SECRET_HINT = ("write the text itself; a variable that only looks secret (its name holds "
               "{word!r}) must be renamed")



@dataclass(frozen=True)
class Case:
    id: str
    breaks: Breaks
    where: str              # "file[:line][: key]", as the error line starts
    message: str
    hint: str | None = None
    command: tuple[str, ...] = ("validate",)


def edit(old: str, new: str, rel: str = JOB) -> Breaks:
    return lambda project: project.edit(rel, old, new)


def write(rel: str, text: str | bytes) -> Breaks:
    def breaks(project: Project) -> None:
        if isinstance(text, bytes):
            (project.root / rel).write_bytes(text)
        else:
            project.write(rel, text)
    return breaks


def both(*steps: Breaks) -> Breaks:
    def breaks(project: Project) -> None:
        for step in steps:
            step(project)
    return breaks


OUTPUT_FIELDS = """\
  fields:                       # becomes a strict JSON Schema (Structured Outputs)
    topics: {type: array, items: {type: string}, maxItems: 8}
    category:
      type: string
      enum: [Music, Gaming, News, Education, Entertainment, Sports, Comedy, Science, Other]
    language: {type: string}
"""


def output(text: str) -> Breaks:
    """Replace output.fields (lines 23-28) with `text`, which starts on line 23."""
    return edit(OUTPUT_FIELDS, text)


def schema_file(text: str) -> Breaks:
    return both(write("schemas/tags.json", text), output("  schema: schemas/tags.json\n"))


def field_type(text: str) -> Breaks:
    """Line 28 becomes `    language: <text>`."""
    return edit("    language: {type: string}", f"    language: {text}")


def condition(text: str) -> Breaks:
    """Line 10, the filter condition's check, becomes `        <text>`."""
    return edit("match: {any: [US, GB, CA]}", text)


def project_file(text: str) -> Breaks:
    return write("batchrun.yaml", "qdrant: {path: .qdrant}\n" + text)


def seeded(count: int = 6) -> Breaks:
    return lambda project: project.seed(count)


def missing_channel(point_ids: list[int]) -> Breaks:
    def breaks(project: Project) -> None:
        project.seed(6)
        with project.qdrant() as client:
            client.delete_payload("videos", ["channel_title"], points=point_ids)
    return breaks


FIELDS = "title, channel_title, category, tags, description, id, payload"
SOURCE_KEYS = "collection, filter, fields, limit"
SPEC_KEYS = ("name, description, needs, source, prompt, model, endpoint, params, input, "
             "output, batch, budget, provider")
FIELD_CHECKS = ("key, match, range, geo_bounding_box, geo_radius, geo_polygon, values_count, "
                "is_empty, is_null")
SYNTAX_HINT = "Jinja syntax: {{ field }}, {% if … %}…{% endif %}"
SCHEMA_OF = "the output schema of jobs/tags.yaml:23"
TYPES = "array, boolean, integer, null, number, object, string"

CASES = [
    # ---- the file itself ------------------------------------------------------------
    Case("yaml-unclosed-bracket", edit("model: gpt-4o-mini", "model: [gpt-4o-mini"),
         "jobs/tags.yaml:18: model",
         "invalid YAML: expected ',' or ']', but got ':' "
         "(while parsing a flow sequence started on line 17)",
         "check the indentation, brackets and quoting on that line"),
    Case("yaml-tab-indent", edit("        match:", "\tmatch:"),
         "jobs/tags.yaml:10: source.filter.must[0].match",
         "invalid YAML: a tab character; YAML indents with spaces only",
         "replace the tabs on that line with spaces"),
    Case("yaml-bad-indentation", edit("    language: {type: string}", "   language: {}"),
         "jobs/tags.yaml:28: output.fields.category.language", "invalid YAML: the indentation "
         "does not match the lines above (while parsing a block mapping started on line 22)",
         "indent the keys of one mapping by the same number of spaces"),
    Case("yaml-colon-in-plain-value",
         edit("description: Topics,", "description: Note: topics,"),
         "jobs/tags.yaml:3: description", "invalid YAML: mapping values are not allowed here",
         "check the indentation, brackets and quoting on that line"),
    Case("yaml-duplicate-key", edit("endpoint:", "model: gpt-4o\nendpoint:"),
         "jobs/tags.yaml:18: model", "duplicate key 'model' (first on line 17)",
         "only the last one would count; remove or merge the other"),
    Case("yaml-merge-key", edit("model: gpt-4o-mini", "model: gpt-4o-mini\nbase: &base "
                                "{temperature: 0}\nparameters:\n  <<: *base"),
         "jobs/tags.yaml:20: parameters", "YAML merge keys (<<) are not supported",
         "write the keys out; an anchor (&name, *name) can still repeat a whole value"),
    Case("spec-not-utf8", write(JOB, "name: tags\ndescription: caf\xe9\n".encode("latin-1")),
         "jobs/tags.yaml:2", "not UTF-8 text: byte 0xe9 at column 17", "save the file as UTF-8"),
    Case("spec-empty", write(JOB, "# nothing yet\n"), "jobs/tags.yaml:1",
         "the file is empty; expected a job spec (a mapping with source, prompt, model and "
         "output)"),
    Case("spec-is-a-list", write(JOB, "- name: tags\n- model: gpt-4o-mini\n"), "jobs/tags.yaml:1",
         "expected a job spec (a mapping with source, prompt, model and output), got a list"),
    Case("empty-jobs-folder", lambda project: (project.root / JOB).unlink(), "jobs",
         "no job specs (*.yaml) in this folder",
         "run `batchrun init` for an example, or name a spec file"),
    Case("no-such-spec", lambda project: None, "jobs/tag.yaml", "no such file or folder; "
         "expected a job spec or a folder of them", "job specs live in jobs/ by default",
         command=("validate", "jobs/tag.yaml")),
    Case("no-such-jobs-folder", project_file("jobs: specs\n"), "specs", "no such file or "
         "folder; expected a job spec or a folder of them", "batchrun.yaml sets jobs: specs"),
    Case("duplicate-job-names", write("jobs/copy.yaml", "name: tags\nsource: {collection: v}\n"
                                      "prompt: {user: hi}\nmodel: gpt-4o-mini\n"),
         "jobs/tags.yaml:2: name", "duplicate job name 'tags', also the name of jobs/copy.yaml; "
         "expected a name unique in the project", "set a different `name:` in one of them"),
    Case("job-name-escapes-state-dir", edit("name: tags", "name: ../../etc"),
         "jobs/tags.yaml:2: name", "job name '../../etc' may only use letters, digits, '_', '.' "
         "and '-', at most 64, starting with a letter or digit",
         "job names become payload keys and state file names"),
    Case("job-name-from-file-name", both(
        lambda project: (project.root / JOB).rename(project.root / "jobs" / "my tags.yaml"),
        edit("name: tags\n", "", rel="jobs/my tags.yaml")),
         "jobs/my tags.yaml:2: name", "job name 'my tags' (from the file name) may only use "
         "letters, digits, '_', '.' and '-', at most 64, starting with a letter or digit",
         "job names become payload keys and state file names"),
    Case("env-var-unset", edit("model: gpt-4o-mini", "model: ${BATCHRUN_TEST_UNSET}"),
         "jobs/tags.yaml:17: model", "environment variable BATCHRUN_TEST_UNSET is not set",
         "export BATCHRUN_TEST_UNSET=… or write ${BATCHRUN_TEST_UNSET:-default}"),
    # ---- keys and values --------------------------------------------------------------
    Case("misspelled-key", edit("  collection: videos", "  colection: videos"),
         "jobs/tags.yaml:6: source.colection", "unknown key 'colection'; did you mean "
         f"'collection'? expected one of: {SOURCE_KEYS}"),
    Case("key-in-the-wrong-section", edit("model: gpt-4o-mini", "model: gpt-4o-mini\n"
                                          "limit: 10"),
         "jobs/tags.yaml:18: limit", "unknown key 'limit'; 'limit' belongs at source.limit; "
         f"expected one of: {SPEC_KEYS}"),
    Case("request-param-at-top-level", edit("model: gpt-4o-mini", "model: gpt-4o-mini\n"
                                            "temprature: 0"),
         "jobs/tags.yaml:18: temprature", "unknown key 'temprature'; request parameters go "
         f"under params: (params: {{temperature: …}}); expected one of: {SPEC_KEYS}"),
    Case("endpoint-typo", edit("/v1/chat/completions", "/v1/chat/completion"),
         "jobs/tags.yaml:18: endpoint", "expected one of '/v1/chat/completions', "
         "'/v1/responses', '/v1/embeddings' or '/v1/messages', got \"/v1/chat/completion\"; "
         "did you mean '/v1/chat/completions'?", "Batch API endpoint (/v1/messages: "
         "Anthropic's Messages API; with provider anthropic, /v1/chat/completions means it "
         "too)."),
    Case("model-empty", edit("model: gpt-4o-mini", "model: ''"),
         "jobs/tags.yaml:17: model", 'expected a non-empty string, got ""',
         "Model id, e.g. gpt-4o-mini."),
    Case("model-a-number", edit("model: gpt-4o-mini", "model: 4"),
         "jobs/tags.yaml:17: model", "expected a string, got 4", "Model id, e.g. gpt-4o-mini."),
    Case("model-missing", edit("model: gpt-4o-mini\n", ""),
         "jobs/tags.yaml:2: model", "missing required key 'model'", "Model id, e.g. gpt-4o-mini."),
    Case("prompt-without-user", edit("  user: prompts/tags.user.j2\n", ""),
         "jobs/tags.yaml:13: prompt.user", "missing required key 'user'",
         "User prompt (for /v1/embeddings: the text to embed): a template file path or "
         "inline text."),
    Case("prompt-a-string", edit("prompt:\n  system: prompts/tags.system.j2\n  user: "
                                 "prompts/tags.user.j2", "prompt: 'Tag {{ title }}'"),
         "jobs/tags.yaml:13: prompt", 'expected a mapping, got "Tag {{ title }}"',
         "How a point becomes a request: user (and system), each a template file or inline "
         "text."),
    Case("list-where-a-mapping-goes", edit("params: {temperature: 0, max_tokens: 200}",
                                           "params: [temperature, 0]"),
         "jobs/tags.yaml:19: params", "expected a mapping, got a list",
         "Other body parameters: temperature, max_tokens…"),
    Case("string-where-a-list-goes", edit("  fields: [title, channel_title, category, "
                                          "tags, description]", "  fields: title"),
         "jobs/tags.yaml:11: source.fields", 'expected a list, got "title"',
         "Payload fields the template sees (default: all but batchrun's own)."),
    Case("needs-a-string", edit("name: tags", "name: tags\nneeds: summaries"),
         "jobs/tags.yaml:3: needs", 'expected a list, got "summaries"',
         "Jobs whose output this job reads."),
    Case("output-name-with-a-space", edit("  key: llm_tags ", "  name: tags v2\n  key: llm_tags "),
         "jobs/tags.yaml:22: output.name",
         'expected text matching ^[A-Za-z0-9_-]{1,64}$, got "tags v2"',
         "Schema name sent to the API (default: the job name)."),
    Case("params-sets-messages", edit("max_tokens: 200}", "messages: []}"),
         "jobs/tags.yaml:19: params.messages",
         "'messages' is set by batchrun from the spec and cannot be a param",
         "use model:, prompt: and output: instead"),
    Case("params-typo", edit("max_tokens: 200}", "max_token: 200}"),
         "jobs/tags.yaml:19: params.max_token",
         "unknown param 'max_token' for /v1/chat/completions; did you mean 'max_tokens'?",
         "params go into every request as written, and the openai SDK "
         f"{openai.__version__} knows no such param for /v1/chat/completions (a newer SDK may)"),
    Case("params-sets-response-format", edit("max_tokens: 200}",
                                             "response_format: {type: json_object}}"),
         "jobs/tags.yaml:19: params.response_format",
         "'response_format' is set by batchrun from the spec and cannot be a param",
         "use model:, prompt: and output: instead"),
    Case("max-requests-over-api-limit", edit("max_requests: 100", "max_requests: 60000"),
         "jobs/tags.yaml:31: batch.max_requests", "batch.max_requests 60,000 is over the "
         "emulator's limit of 50,000 per batch", "lower batch.max_requests"),
    Case("max-requests-over-any-limit", edit("max_requests: 100", "max_requests: 200000"),
         "jobs/tags.yaml:31: batch.max_requests", "expected at most 100,000, got 200000",
         "Requests per shard (limit: OpenAI 50,000; Azure and Anthropic 100,000)."),
    Case("max-bytes-over-api-limit", edit("max_attempts: 3", "max_bytes: 220MB"),
         "jobs/tags.yaml:32: batch.max_bytes", "batch.max_bytes 220,000,000 is over the "
         "emulator's limit of 200,000,000 per batch", "lower batch.max_bytes"),
    Case("max-bytes-not-a-size", edit("max_attempts: 3", "max_bytes: lots"),
         "jobs/tags.yaml:32: batch.max_bytes",
         'expected a size such as 200MB, 500kB or 1000000, got "lots"',
         "Bytes per shard, e.g. 200MB (limit: OpenAI and Azure 200 MB; Anthropic 256 MB)."),
    Case("max-attempts-zero", edit("max_attempts: 3", "max_attempts: 0"),
         "jobs/tags.yaml:32: batch.max_attempts", "expected at least 1, got 0",
         "Attempts per request, across batches."),
    Case("negative-budget", edit("max_cost_usd: 1.00", "max_cost_usd: -1"),
         "jobs/tags.yaml:35: budget.max_cost_usd", "expected at least 0, got -1",
         "Refuse to submit when the estimated cost of what would be sent exceeds this."),
    Case("limit-not-a-number", edit("  collection: videos", "  collection: videos\n"
                                    "  limit: ten"),
         "jobs/tags.yaml:7: source.limit", 'expected an integer, got "ten"',
         "Read at most this many points (trial runs)."),
    Case("needs-unknown-job", edit("name: tags", "name: tags\nneeds: [summaries]"),
         "jobs/tags.yaml:3: needs[0]", "needs unknown job 'summaries'",
         "known jobs: tags; name its spec on the command line too"),
    Case("needs-cycle", both(edit("name: tags", "name: tags\nneeds: [other]"),
                             write("jobs/other.yaml", "needs: [tags]\nsource: {collection: v}\n"
                                   "prompt: {user: hi}\nmodel: gpt-4o-mini\n")),
         "jobs/other.yaml:1: needs",
         "jobs depend on each other in a cycle: other → tags → other",
         "a job can only need jobs that do not need it back"),
    Case("output-key-a-stamp", edit("  key: llm_tags ", "  key: _batchrun_tags "),
         "jobs/tags.yaml:22: output.key",
         "output key '_batchrun_tags' starts with '_batchrun_', which batchrun keeps for its "
         "stamps", "choose another output.key"),
    Case("output-key-read-by-the-job", edit("  key: llm_tags ", "  key: tags "),
         "jobs/tags.yaml:22: output.key",
         "the job reads 'tags', its own output key: each answer would change its own request, "
         "and be paid for again on every apply",
         "remove tags from source.fields and the template, or write the output under another "
         "output.key"),
    Case("two-jobs-one-output-key", write("jobs/other.yaml", "output: {key: llm_tags, fields: "
                                          "{a: {type: string}}}\nsource: {collection: videos}\n"
                                          "prompt: {user: hi}\nmodel: gpt-4o-mini\n"),
         "jobs/tags.yaml:22: output.key",
         "tags writes its output to 'llm_tags', where other (jobs/other.yaml) writes too; each "
         "would overwrite the other's answers and resend its own forever",
         "give one of them another output.key"),
    Case("embeddings-with-system-prompt", edit("/v1/chat/completions", "/v1/embeddings"),
         "jobs/tags.yaml:14: prompt.system",
         "/v1/embeddings takes no system prompt; expected only prompt.user, the text to embed",
         "remove prompt.system"),
    Case("embeddings-with-output-fields", both(
        edit("  system: prompts/tags.system.j2\n", ""), edit("/v1/chat/completions",
                                                             "/v1/embeddings")),
         "jobs/tags.yaml:20: output",
         "/v1/embeddings returns vectors; expected no output.fields or output.schema",
         "remove them: the embedding itself is written back"),
    # ---- batchrun.yaml ----------------------------------------------------------------
    Case("provider-typo", project_file("provider:\n  name: azur\n"),
         "batchrun.yaml:3: provider.name", "expected one of 'openai', 'anthropic', 'azure' or "
         "'emulator', got \"azur\"; did you mean 'azure'?",
         "openai (the real API or any compatible base_url), anthropic (Message Batches), "
         "azure (Azure OpenAI), or emulator (batchrun's own, in-process, free)."),
    Case("project-file-unknown-key", project_file("provider: emulator\nstate_dri: .state\n"),
         "batchrun.yaml:3: state_dri", "unknown key 'state_dri'; did you mean 'state_dir'? "
         "expected one of: qdrant, provider, state_dir, jobs, prices"),
    Case("price-override-not-a-number", project_file(
        "provider: emulator\nprices:\n  gpt-4.1:\n    batch:\n      input: 1\n"
        "      output: lots\n"),
         "batchrun.yaml:7: prices.gpt-4.1.batch.output",
         "expected a number of USD per 1M tokens, got 'lots'",
         "prices are USD per 1M tokens, as on the provider's pricing page"),
    Case("project-file-unclosed-quote", project_file("provider: {name: 'emulator}\n"),
         "batchrun.yaml:3: provider.name", "invalid YAML: found unexpected end of stream "
         "(while scanning a quoted scalar started on line 2)",
         "check the indentation, brackets and quoting on that line"),
    Case("project-file-env-var-unset", project_file("provider:\n  name: openai\n"
                                                    "  base_url: ${BATCHRUN_TEST_URL}\n"),
         "batchrun.yaml:4: provider.base_url", "environment variable BATCHRUN_TEST_URL is not set",
         "export BATCHRUN_TEST_URL=… or write ${BATCHRUN_TEST_URL:-default}"),
    Case("project-file-a-list", write("batchrun.yaml", "- qdrant\n"), "batchrun.yaml:1",
         "expected a project file (a mapping with qdrant, provider, state_dir), got a list"),
    # ---- templates --------------------------------------------------------------------
    Case("template-file-missing", edit("user: prompts/tags.user.j2", "user: prompts/tag.j2"),
         "jobs/tags.yaml:15: prompt.user", "template file prompts/tag.j2 not found",
         "paths are relative to the project root, e.g. prompts/tags.user.j2"),
    Case("template-outside-project", edit("user: prompts/tags.user.j2",
                                          "user: ../../etc/motd.txt"),
         "jobs/tags.yaml:15: prompt.user",
         "template file ../../etc/motd.txt is outside the project; expected a path under it"),
    Case("template-syntax-error", write(USER, "Title: {{ title }}\nTags: {{ tags }\n"),
         "prompts/tags.user.j2:2", "template syntax error: unexpected '}'", SYNTAX_HINT),
    Case("template-unclosed-block", write(USER, "{% if tags %}\n{{ tags }}\n"),
         "prompts/tags.user.j2:2", "template syntax error: Unexpected end of template. Jinja "
         "was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost "
         "block that needs to be closed is 'if'.", SYNTAX_HINT),
    Case("inline-template-syntax-error", edit("user: prompts/tags.user.j2",
                                              "user: |\n    Title: {{ title }}\n"
                                                   "    Tags: {{ tags | jion }}"),
         "jobs/tags.yaml:17: prompt.user", "template syntax error: No filter named 'jion'.",
         SYNTAX_HINT),
    Case("template-reads-unselected-field", write(USER, "Title: {{ title }}\n{{ chanel }}\n"),
         "prompts/tags.user.j2:2", "the template reads 'chanel', which source.fields does not "
         f"select; did you mean 'channel_title'? expected one of: {FIELDS}",
         "add chanel to source.fields (jobs/tags.yaml:11), or fix the name"),
    Case("include-missing", write(USER, "{{ title }}\n{% include 'prompts/footer.j2' %}\n"),
         "prompts/tags.user.j2:2", "included template prompts/footer.j2 not found",
         "paths are relative to the project root, e.g. prompts/tags.user.j2"),
    Case("include-outside-project", write(USER, "{{ title }}\n{% include '../secrets.j2' %}\n"),
         "prompts/tags.user.j2:2",
         "included template ../secrets.j2 is outside the project; expected a path under it"),
    Case("include-by-variable", write(USER, "{{ title }}\n{% include category %}\n"),
         "prompts/tags.user.j2:2", "expected a fixed template file name (a quoted path)"),
    Case("included-template-broken", both(write(USER, "{% include 'prompts/head.j2' %}\n"),
                                          write("prompts/head.j2", "A\n{% for %}\n")),
         "prompts/head.j2:2",
         "template syntax error: Expected an expression, got 'end of statement block'",
         SYNTAX_HINT),
    Case("sandbox-escape", write(USER, "{{ title }}\n{{ ''.__class__.__mro__[1] }}\n"),
         "prompts/tags.user.j2:2", "templates may not read '__class__': the sandbox blocks "
         "names starting with '_'; expected payload fields and their values"),
    Case("inline-sandbox-escape", edit("user: prompts/tags.user.j2",
                                       "user: 'Title: {{ title.__class__ }}'"),
         "jobs/tags.yaml:15: prompt.user", "templates may not read '__class__': the sandbox "
         "blocks names starting with '_'; expected payload fields and their values"),
    Case("template-not-utf8", write(USER, b"Title: {{ title }}\n\xff\n"), "prompts/tags.user.j2:2",
         "not UTF-8 text: byte 0xff at column 1", "save the file as UTF-8"),
    Case("template-changes-the-payload",
         write(USER, "{{ title }}\n{{ payload.update({'title': 'x'}) }}\n"),
         "prompts/tags.user.j2:2", "templates may not call .update(): a template reads the "
         "point and changes nothing; expected payload fields and their values"),
    Case("inline-template-appends-to-a-field", edit("user: prompts/tags.user.j2",
                                                    "user: '{% set _ = tags.append(1) %}x'"),
         "jobs/tags.yaml:15: prompt.user", "templates may not call .append(): a template reads "
         "the point and changes nothing; expected payload fields and their values"),
    # ---- secrets never go into a request -----------------------------------------------
    Case("inline-prompt-reads-a-key", edit("system: prompts/tags.system.j2",
                                           "system: 'Use key ${OPENAI_API_KEY}'"),
         "jobs/tags.yaml:14: prompt.system", SECRET.format(name="OPENAI_API_KEY"),
         SECRET_HINT.format(word="KEY")),
    Case("param-reads-a-token", edit("params: {temperature: 0, max_tokens: 200}",
                                     "params: {temperature: 0, max_tokens: 200, "
                                     "user: '${GITHUB_TOKEN:-x}'}"),
         "jobs/tags.yaml:19: params.user", SECRET.format(name="GITHUB_TOKEN"),
         SECRET_HINT.format(word="TOKEN")),
    Case("yaml-schema-reads-a-password",
         both(write("schemas/tags.yaml", "type: object\ndescription: ${DB_Password}\n"),
              output("  schema: schemas/tags.yaml\n")),
         "schemas/tags.yaml:2: description", SECRET.format(name="DB_Password"),
         SECRET_HINT.format(word="Password")),
    # ---- output schemas ---------------------------------------------------------------
    Case("schema-file-invalid-json",
         schema_file('{\n  "type": "object",\n  "properties": {\n    "a": {"type": "string"},\n'
                     '  }\n}\n'),
         "schemas/tags.json:5: properties", "invalid JSON: Expecting property name enclosed in "
         "double quotes (column 3)", "JSON allows no trailing commas, comments or single quotes"),
    Case("schema-additional-properties-true",
         schema_file('{\n  "type": "object",\n  "properties": {"a": {"type": "string"}},\n'
                     '  "required": ["a"],\n  "additionalProperties": true\n}\n'),
         "schemas/tags.json:5: additionalProperties", "strict mode needs additionalProperties: "
         "false on every object, got true", SCHEMA_OF),
    Case("schema-root-an-array", schema_file('{"type": "array", "items": {"type": "string"}}'),
         "schemas/tags.json:1", "expected an object schema at the root (type: object), got "
         "type: array; wrap other values in a property", SCHEMA_OF),
    Case("schema-file-a-json-list", schema_file('[{"type": "object"}]'), "schemas/tags.json:1",
         "expected a JSON Schema object, got a list", SCHEMA_OF),
    Case("schema-file-outside-project", output("  schema: /etc/passwd\n"),
         "jobs/tags.yaml:23: output.schema",
         "schema file /etc/passwd is outside the project; expected a path under it"),
    Case("schema-file-linked-outside-project",
         both(lambda project: (project.root / "schemas").mkdir(),
              lambda project: (project.root / "schemas" / "tags.json").symlink_to(
                  project.root.parent / "elsewhere.json"),
              lambda project: (project.root.parent / "elsewhere.json").write_text("{}"),
              output("  schema: schemas/tags.json\n")),
         "jobs/tags.yaml:23: output.schema",
         "schema file schemas/tags.json is outside the project; expected a path under it"),
    Case("schema-file-missing", output("  schema: schemas/nope.json\n"),
         "jobs/tags.yaml:23: output.schema", "schema file schemas/nope.json not found",
         "paths are relative to the project root, e.g. schemas/tags.json"),
    Case("fields-and-schema-together", output(OUTPUT_FIELDS + "  schema: schemas/tags.json\n"),
         "jobs/tags.yaml:29: output.schema", "expected output.fields or output.schema, not both",
         "fields builds a strict schema for you; schema names a file"),
    Case("schema-keyword-strict-mode-rejects",
         schema_file('{\n  "type": "object",\n  "properties": {},\n  "additionalProperties": '
                     'false,\n  "allOf": [{"type": "object"}]\n}\n'),
         "schemas/tags.json:5: allOf", "strict mode does not support 'allOf'", SCHEMA_OF),
    Case("output-fields-empty", output("  fields: {}\n"), "jobs/tags.yaml:23: output.fields",
         "expected at least one output field, got none"),
    Case("output-type-typo", field_type("{type: strin}"), "jobs/tags.yaml:28: "
         "output.fields.language.type", f"'strin' is not a JSON Schema type; did you mean "
         f"'string'? expected one of: {TYPES}"),
    Case("output-keyword-strict-mode-rejects", field_type("{type: array, uniqueItems: true}"),
         "jobs/tags.yaml:28: output.fields.language.uniqueItems",
         "strict mode does not support 'uniqueItems'"),
    Case("output-optional-property", output("  schema:\n    type: object\n    properties:\n"
                                            "      a: {type: string}\n    required: []\n"),
         "jobs/tags.yaml:27: output.schema.required", "strict mode needs every property listed "
         "as required; missing: a (make optional fields nullable instead: type: [string, "
         "'null'])"),
    Case("output-field-not-a-schema", field_type("string"),
         "jobs/tags.yaml:28: output.fields.language", 'expected a mapping, got "string"',
         "Output fields as JSON Schema fragments; becomes a strict JSON Schema."),
    # ---- filters ----------------------------------------------------------------------
    Case("filter-key-typo", condition("mtch: {any: [US, GB, CA]}"),
         "jobs/tags.yaml:10: source.filter.must[0].mtch", "unknown key 'mtch' in field "
         f"condition; did you mean 'match'? expected one of: {FIELD_CHECKS}"),
    Case("filter-value-a-list", condition("match: {value: [US, GB]}"),
         "jobs/tags.yaml:10: source.filter.must[0].match.value",
         "expected a string, an integer or a boolean, got a list",
         'to match any of several values, write match: {any: ["US", "GB"]}'),
    Case("filter-root-key-typo", edit("    must:", "    mus:"), "jobs/tags.yaml:8: "
         "source.filter.mus", "unknown key 'mus' in filter; did you mean 'must'? expected one "
         "of: must, should, must_not, min_should"),
    Case("filter-a-list", edit("  filter:                       # Qdrant's filter syntax; drop it "
                               "to tag every video\n    must:\n      - key: region\n"
                               "        match: {any: [US, GB, CA]}", "  filter: [region]"),
         "jobs/tags.yaml:7: source.filter", "expected a mapping, got a list",
         "A Qdrant filter, in the JSON shape of Qdrant's REST API."),
    Case("filter-match-a-string", condition("match: US"),
         "jobs/tags.yaml:10: source.filter.must[0].match", "expected a mapping with one of: "
         'value, text, any, except, phrase, text_any (e.g. match: {value: US}), got "US"'),
    Case("filter-geo-missing-lon", condition("geo_radius: {center: {lat: 48.8}, radius: 1000}"),
         "jobs/tags.yaml:10: source.filter.must[0].geo_radius.center.lon", "missing key 'lon'"),
    Case("filter-range-mixes-dates-and-numbers",
         condition('range: {gte: "2024-01-01T00:00:00Z", lt: 5}'),
         "jobs/tags.yaml:10: source.filter.must[0].range",
         "expected all bounds numbers or all date-times, not both"),
    Case("filter-is-empty-not-a-boolean", condition("is_empty: maybe"),
         "jobs/tags.yaml:10: source.filter.must[0].is_empty",
         'expected true or false, got "maybe"'),
    Case("filter-range-not-a-number", condition('range: {gte: "abc"}'),
         "jobs/tags.yaml:10: source.filter.must[0].range.gte", "expected a number or an RFC "
         '3339 date-time (2024-01-31T00:00:00Z), got "abc"'),
    Case("filter-match-a-decimal", condition("match: {value: 1.5}"),
         "jobs/tags.yaml:10: source.filter.must[0].match.value",
         "expected a string, an integer or a boolean, got 1.5",
         "Qdrant matches exact values only; use range: {gte: …, lte: …} for numbers with "
         "decimals"),
    Case("filter-condition-a-string", edit("    must:\n      - key: region\n        match: "
                                           "{any: [US, GB, CA]}", "    must: [region]"),
         "jobs/tags.yaml:8: source.filter.must[0]", "expected a condition (a mapping such as "
         '{key: region, match: {value: US}}), got "region"'),
    Case("filter-two-checks", condition("match: {value: US}\n        range: {gt: 1}"),
         "jobs/tags.yaml:9: source.filter.must[0]", "a field condition needs exactly one of "
         "match, range, geo_bounding_box, geo_radius, geo_polygon, values_count, is_empty, "
         "is_null; got match, range"),
    # ---- against Qdrant ---------------------------------------------------------------
    Case("unknown-collection", both(seeded(), edit("collection: videos",
                                                   "collection: video")),
         "jobs/tags.yaml:6: source.collection",
         "collection 'video' not found in Qdrant (collections: videos)",
         "name a collection that exists", command=("plan",)),
    Case("no-collection-yet", edit("collection: videos", "collection: videos"),
         "jobs/tags.yaml:6: source.collection",
         "collection 'videos' not found in Qdrant (no collections exist yet)",
         "point qdrant: in batchrun.yaml at your data (path or url), or run `batchrun demo` "
         "here to load the sample videos", command=("plan",)),
    # By default such points fail and the others are sent (tests/test_bad_points.py);
    # --strict keeps the all-or-nothing.
    Case("points-missing-a-field", missing_channel([1, 3]), "prompts/tags.user.j2:2",
         "payload field 'channel_title' is missing on 2 of 6 points (ids 1, 3)",
         "give the template a default ({{ field | default('') }}) or narrow source.filter "
         "in jobs/tags.yaml", command=("apply", "--strict")),
    Case("points-missing-a-field-in-plan", missing_channel([2]), "prompts/tags.user.j2:2",
         "payload field 'channel_title' is missing on 1 of 6 points (ids 2)",
         "give the template a default ({{ field | default('') }}) or narrow source.filter "
         "in jobs/tags.yaml", command=("plan", "--strict")),
]

WHERE = re.compile(r"^(?P<file>[^:]+)(?::(?P<line>\d+))?(?:: (?P<key>.+))?$")


def test_the_corpus_has_at_least_45_distinct_cases():
    assert len({case.id for case in CASES}) == len(CASES) >= 45
    assert len({(case.where, case.message) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_naming_file_line_and_key(project, case):
    case.breaks(project)
    result = project.run(*case.command, expect=1)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == f"Error: {case.where}: {case.message}"
    hint = lines[1].removeprefix("  hint: ") if len(lines) > 1 else None
    assert hint == case.hint and len(lines) <= 2

    out = project.run(*case.command, "--json", expect=1)
    assert "Traceback" not in out.stderr
    where = WHERE.match(case.where)
    line = int(where["line"]) if where["line"] else None
    expected = {"message": case.message, "file": where["file"], "line": line,
                "key": where["key"], **({"hint": case.hint} if case.hint else {})}
    assert json.loads(out.stdout) == {"error": expected}
    jsonschema.validate(json.loads(out.stdout), ERROR_SCHEMA)


# ---- batch JSONL files: `validate FILE.jsonl` lists every problem ------------------------

def request_line(custom_id: str) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": "hi"}]}})


BATCH_CASES = [
    ("invalid-json-on-line-3",
     [request_line("a"), request_line("b"), '{"custom_id": "c", "method": "POST",'],
     3, "", "invalid JSON: Expecting property name enclosed in double quotes at char 37"),
    ("duplicate-custom-id", [request_line("a"), request_line("b"), request_line("a")],
     3, "custom_id", "duplicate 'a' (first on line 1)"),
    ("50001-requests", [request_line(f"r{i}") for i in range(50_001)],
     50_001, "", "more than 50,000 requests, the Batch API's limit per file; split it"),
    ("not-utf8", [request_line("a"), '{"custom_id": "caf\udce9"}'],
     2, "", "not UTF-8: byte 0xe9 at offset 18"),
    ("method-get", [request_line("a").replace('"POST"', '"GET"')],
     1, "method", "expected POST, got 'GET'"),
    ("stream-true", [request_line("a").replace('"model"', '"stream": true, "model"')],
     1, "body.stream", "stream: true is not allowed in a batch"),
    ("empty", [], None, "", "empty file: no requests"),
]


@pytest.mark.parametrize("lines,line,key,message", [c[1:] for c in BATCH_CASES],
                         ids=[c[0] for c in BATCH_CASES])
def test_a_malformed_batch_file_names_its_line_and_key(project, lines, line, key, message):
    path = project.root / "batch.jsonl"
    path.write_bytes("".join(f"{text}\n" for text in lines).encode("utf-8", "surrogateescape"))
    expected = f"batch.jsonl{f':{line}' if line else ''}: {key + ': ' if key else ''}{message}"
    result = project.run("validate", "batch.jsonl", expect=1)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout.splitlines()[1] == expected
    report = project.run_json("validate", "batch.jsonl", expect=1)
    assert report["problems"] == [expected]
    assert report["checked"][0]["ok"] is False


def test_a_missing_batch_file_is_an_error_not_a_traceback(project):
    result = project.run("validate", "nope.jsonl", expect=1)
    assert result.stderr.splitlines() == ["Error: nope.jsonl: file not found",
                                          "  hint: name a batch input or output .jsonl file"]


# ---- the opposite: what must work -------------------------------------------------------

def test_payload_text_with_template_syntax_is_sent_literally(project):
    project.seed(1)
    title = "{{ 7 * 7 }} {% if true %}yes{% endif %} {{ ''.__class__ }}"
    with project.qdrant() as client:
        client.set_payload("videos", {"title": title}, points=[1])
    project.run("prepare")
    shards = list((project.state / "artifacts" / "shards").glob("*.jsonl"))
    body = json.loads(shards[0].read_text().splitlines()[0])["body"]
    assert f"Title: {title}\n" in body["messages"][1]["content"]


# ---- and a bug in batchrun is said to be one --------------------------------------------

def test_an_unexpected_exception_is_reported_as_a_bug_in_one_line(project, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the parser fell over\nsecond line")
    monkeypatch.setattr(yaml, "compose", broken)
    result = project.run("validate", expect=1)
    message, hint = result.stderr.splitlines()
    assert message == ("Error: internal error (RuntimeError: the parser fell over); this is a "
                       "bug in batchrun")
    # the traceback is kept for the report, in a log file under the state directory
    log = Path(hint.removeprefix("  hint: the traceback is in ")
               .removesuffix("; please report it with that file"))
    assert log.parent == project.root / ".batchrun" / "logs"
    assert "RuntimeError: the parser fell over" in log.read_text()
    error = json.loads(project.run("validate", "--json", expect=1).stdout)
    assert error["error"]["message"] == ("internal error (RuntimeError: the parser fell over); "
                                         "this is a bug in batchrun")
    assert error["error"]["hint"].startswith(f"the traceback is in {log.parent}")
    jsonschema.validate(error, ERROR_SCHEMA)
    debug = project.run("--debug", "validate", expect=1)
    assert "Traceback" in debug.stderr and "RuntimeError: the parser fell over" in debug.stderr
