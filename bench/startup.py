"""startup: how long the commands that need no API take to start, against `python -c pass`.

`batchrun --help`, `--version`, `init` (into a fresh temp folder each time) and
`validate` of the project init wrote (specs, templates and schemas only: no Qdrant, no
API) should answer at once: target ≤ 0.25 s each (issue #12). Each command runs --repeat
times (default 7) in a fresh process, the fastest run counts, next to the interpreter's
own start-up (`python -c pass`) measured the same way in the same run. Peak RSS is the
child's own (`wait4`). batchrun runs from this checkout, the way the `batchrun` script
runs it (`from runner.cli import main; main()`). Only measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.25
# What the installed `batchrun` console script executes; run with cwd=REPO, so this
# checkout's runner/ is the one imported.
BATCHRUN = [sys.executable, "-c", "import sys; from runner.cli import main; sys.exit(main())"]


def run_once(argv: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of `argv`; exits if it fails."""
    env = {**os.environ, "NO_COLOR": "1"}
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}:\n"
                         f"{log.read_text(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024   # Linux: kilobytes


def best_of(repeat: int, make_argv, log: Path) -> tuple[float, float]:
    """The fastest of `repeat` runs, and the peak RSS of that run."""
    runs = [run_once(make_argv(i), log) for i in range(repeat)]
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7,
                        help="runs of each command; the fastest counts (default 7)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="batchrun-startup-"))
    try:
        log = scratch / "output.log"
        project = scratch / "project"
        run_once([*BATCHRUN, "init", str(project)], log)        # what validate reads
        commands = {
            "python -c pass": lambda i: [sys.executable, "-c", "pass"],
            "batchrun --help": lambda i: [*BATCHRUN, "--help"],
            "batchrun --version": lambda i: [*BATCHRUN, "--version"],
            "batchrun init DIR": lambda i: [*BATCHRUN, "init", str(scratch / f"init-{i}")],
            "batchrun validate (spec-only project)":
                lambda i: [*BATCHRUN, "-C", str(project), "validate"],
        }
        results = {name: best_of(args.repeat, argv, log) for name, argv in commands.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    baseline = results["python -c pass"][0]
    print(f"\nstartup — best of {args.repeat} runs, each in a fresh process "
          f"(python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f})")
    print(f"  {'command':<40} {'best':>9} {'peak RSS':>9}")
    for name, (seconds, rss) in results.items():
        print(f"  {name:<40} {seconds:7.3f} s {rss:6.0f} MB")
    met = 0
    for name, (seconds, _) in results.items():
        if name == "python -c pass":
            continue
        ok = seconds <= TARGET_SECONDS
        met += ok
        print(f"ratio  {name + ' / python -c pass':<56} {seconds / baseline:7.1f}×  "
              f"(target: ≤ {TARGET_SECONDS} s; took {seconds:.3f} s)  {'PASS' if ok else 'MISS'}")
    print(f"{met} of {len(results) - 1} commands start within {TARGET_SECONDS} s")

if __name__ == "__main__":
    main()
