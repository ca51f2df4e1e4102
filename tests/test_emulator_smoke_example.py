"""examples/emulator_smoke.py, which imports only `openai`, runs clean against a served emulator."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from emulator_fixtures import ROOT, EmulatorProcess

SCRIPT = ROOT / "examples" / "emulator_smoke.py"


def test_the_smoke_script_imports_nothing_but_openai_and_the_standard_library():
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"openai"}


def test_the_smoke_script_walks_the_whole_protocol_against_batchrun_emulator(tmp_path):
    args = ("--port", "0", "--speed", "instant", "--seconds-per-request", "0.05",
            "--cancelling-seconds", "0.2", "--state-dir", str(tmp_path))
    with EmulatorProcess(*args) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "smoke"}
        done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok"
    for step in ("1. upload", "2. poll", "3. download", "4. cancel", "5. page"):
        assert any(line.startswith(step) for line in lines), step
    assert any("finished lines kept" in line for line in lines)
