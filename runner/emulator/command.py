"""`batchrun emulator`: serve the Files + Batches API emulator on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import click

from runner.errors import BatchrunError

from .config import PRESETS, EmulatorConfig
from .faults import Faults, FileDamage, HttpFault


def _rate(name: str, help: str) -> Any:
    return click.option(name, type=click.FloatRange(0.0, 1.0), default=None, help=help)


def _count(name: str, help: str) -> Any:
    return click.option(name, type=click.IntRange(0), default=None, help=help)


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one (the URL is printed).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep files and batches here, so they survive a restart (default: "
                   "a temporary directory, lost on exit).")
@click.option("--speed", type=click.Choice(PRESETS), default="demo", show_default=True,
              help="instant: every state at the next read; demo: seconds per state.")
@click.option("--validating-seconds", type=float, help="Override: time in `validating`.")
@click.option("--seconds-per-request", type=float, help="Override: time per request.")
@click.option("--finalizing-seconds", type=float, help="Override: time in `finalizing`.")
@click.option("--cancelling-seconds", type=float, help="Override: time in `cancelling`.")
@click.option("--completion-window", "completion_window_seconds", type=float,
              help="Seconds before a batch expires (default 86400, the real 24h).")
@click.option("--base-path", default="/v1", show_default=True,
              help="Serve the OpenAI layout under this path, e.g. /compat/openai/v1 (the "
                   "Azure layout is always under /openai).")
@click.option("--azure-deployment", "azure_deployments", multiple=True, metavar="NAME=MODEL",
              help="An Azure deployment and the model it runs, for the Azure layout (a "
                   "deployment named like a model runs it). Repeatable.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of output order and of every fault draw.")
@click.option("--faults", "faults_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
              help="Read faults from a JSON file (the body POST /_emulator/faults takes); "
                   "the options below override it.")
@click.option("--http-fault", multiple=True, metavar="ROUTE=STATUS[xN][,OPTS]",
              help="Answer N calls to ROUTE with STATUS (429/500/502/503/504), e.g. "
                   "'POST /v1/batches=429x2,retry-after-ms=50'; ',after' makes the call take "
                   "effect before its answer is lost. Repeatable.")
@_rate("--request-failure-rate", "Share of requests answered 500/503 in the error file.")
@_rate("--status-zero-rate", "Share of requests answered status_code 0, empty body.")
@_rate("--invalid-json-rate", "Share of JSON answers that do not parse.")
@_rate("--truncation-rate", "Share of answers cut off (finish_reason: length).")
@_rate("--fence-rate", "Share of JSON answers wrapped in ```json fences.")
@_rate("--refusal-rate", "Share of answers the model refuses (billed, not retried).")
@_rate("--invalid-request-rate", "Anthropic: share of requests errored invalid_request_error.")
@_count("--token-limit-batches", "The next N batches fail with token_limit_exceeded.")
@_count("--enqueued-token-limit", "Enqueued-token limit per model, over unfinished batches.")
@_count("--expire-after-requests", "Every batch expires after executing N requests.")
@_count("--crash-after-calls", "Crash the emulator (exit 86) on the API call after N.")
@click.option("--damage-file", multiple=True, metavar="FILE=DAMAGE[,OPTS]",
              help="Serve batch output or error files damaged: FILE is output or error, "
                   "DAMAGE one of truncated, invalid_utf8, html, empty, duplicate_line, "
                   "unknown_custom_id, no_response; options times=N (only the first N "
                   "downloads), batches=1+3 (those batches only), bytes=N (truncated). "
                   "Repeatable.")
@click.option("--list-lag-seconds", type=click.FloatRange(0.0), default=None,
              help="GET /v1/batches hides batches younger than this many seconds.")
@click.option("--restart-on-crash", is_flag=True,
              help="Restart the emulator after a crash, on the same port (POSIX).")
@click.option("--verbose", is_flag=True, help="Log every HTTP request to stderr.")
def emulator_command(host: str, port: int, state_dir: Path | None, speed: str,
                     base_path: str, azure_deployments: tuple[str, ...],
                     faults_file: Path | None, restart_on_crash: bool, verbose: bool,
                     seed: int, http_fault: tuple[str, ...], damage_file: tuple[str, ...],
                     **options: Any) -> None:
    """Serve an emulator of the OpenAI Files + Batches API (and Anthropic's Messages API).

    Point the `openai` SDK (or batchrun) at it with OPENAI_BASE_URL, the `anthropic` SDK
    with ANTHROPIC_BASE_URL; any API key works. It is not the real API: answers are made
    up from the prompt's words.

    \b
    Examples:
      batchrun emulator
      batchrun emulator --port 0 --speed instant --state-dir .emulator
      batchrun emulator --http-fault 'POST /v1/batches=429x2' --request-failure-rate 0.1
      batchrun emulator --state-dir .emulator --crash-after-calls 20 --restart-on-crash
      batchrun emulator --damage-file output=html,times=1 --list-lag-seconds 30
      batchrun emulator --azure-deployment tagger=gpt-4o-mini --base-path /compat/v1
    """
    from .app import Emulator  # the emulator itself loads when it is served
    from .server import serve, supervise

    timing = {k: options.pop(k) for k in ("validating_seconds", "seconds_per_request",
                                          "finalizing_seconds", "cancelling_seconds",
                                          "completion_window_seconds")}
    try:
        config = EmulatorConfig.preset(speed, seed=seed, base_path=base_path,
                                       azure_deployments=_deployments(azure_deployments),
                                       **timing)
    except ValueError as err:
        raise BatchrunError(f"bad option: {err}", hint="see batchrun emulator --help") \
            from None
    faults = _faults(faults_file, http_fault, damage_file, options, seed)

    def announce(url: str) -> None:
        click.echo(f"batchrun emulator listening on {url}", color=False)
        click.echo(f"export OPENAI_BASE_URL={url}", color=False)
        click.echo(f"export AZURE_OPENAI_ENDPOINT={url.removesuffix(config.base_path)}",
                   color=False)
        if url.endswith("/v1"):  # Anthropic's SDK adds /v1 itself
            click.echo(f"export ANTHROPIC_BASE_URL={url.removesuffix('/v1')}", color=False)

    def run(listener: socket.socket | None, restarted: bool) -> None:
        kept = dataclasses.replace(faults, crash_after_calls=None) if restarted else faults
        app = Emulator(state_dir=state_dir, config=config, faults=kept)
        app.restarted = restarted
        serve(app, host, port, listen_socket=listener, verbose=verbose,
              announce=None if listener else announce)

    if restart_on_crash:
        if state_dir is None:
            raise BatchrunError("--restart-on-crash needs --state-dir",
                                hint="without a state dir a restart loses every file and batch")
        code = supervise(run, host, port, announce, config.base_path)
        if code:
            raise SystemExit(code)
    else:
        run(None, False)


def _deployments(given: tuple[str, ...]) -> dict[str, str]:
    deployments = {}
    for item in given:
        name, _, model = item.partition("=")
        if not name.strip() or not model.strip():
            raise BatchrunError(f"bad --azure-deployment {item!r}",
                                hint="give NAME=MODEL, e.g. tagger=gpt-4o-mini")
        deployments[name.strip()] = model.strip()
    return deployments


def _faults(path: Path | None, http: tuple[str, ...], damages: tuple[str, ...],
            options: dict[str, Any], seed: int) -> Faults:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path else {}
        data.setdefault("seed", seed)
        data.update({k: v for k, v in options.items() if v is not None})
        faults = Faults.from_json(data)
        return dataclasses.replace(
            faults, http=(*faults.http, *map(HttpFault.parse, http)),
            damaged_files=(*faults.damaged_files, *map(FileDamage.parse, damages)))
    except ValueError as err:
        raise BatchrunError(f"bad fault: {err}", hint="see docs/emulator.md, section Faults") \
            from None
