"""The two measured sides of bench/report_page.py, each run in its own child process by
`_common.side("report.<name>", ...)`, so that each peak RSS is that side's own.

- `write`: batchrun's report page of the synthetic run (tests/report_data.py), written
  with `runner.reportpage.render` from generators, as the command will from a scroll.
- `raw`: the pass over the same points that no report can avoid — generate each point
  and `json.dumps` it into a JSONL file — plus, untimed, a plain HTML table of the
  points the report shows (the browser's baseline).
"""

from __future__ import annotations

import html
import json
import sys
import time
from pathlib import Path

import _common  # first: it puts this checkout on sys.path

sys.path.insert(0, str(_common.REPO / "tests"))   # the synthetic run the tests use too
import report_data  # noqa: E402


def write(spec: dict) -> dict:
    from runner.reportpage import render
    started = time.perf_counter()
    info = render(report_data.report(spec["points"]), spec["out"])
    return {"seconds": time.perf_counter() - started, "bytes": info.bytes,
            "shown": info.jobs["tags"][0], "seen": info.jobs["tags"][1]}


def raw(spec: dict) -> dict:
    started = time.perf_counter()
    with open(spec["jsonl"], "w", encoding="utf-8") as fh:
        for row in report_data.points(spec["points"]):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    plain_table(Path(spec["plain"]), spec["shown"], spec["chars"])
    return {"seconds": seconds}


def plain_table(path: Path, rows: int, chars: int) -> None:
    """The first `rows` points as a static table, values cut like the report cuts them."""
    def cell(value: object) -> str:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return html.escape(text[:chars])
    with path.open("w", encoding="utf-8") as fh:
        fh.write("<!doctype html><html lang=en><meta charset=utf-8><title>plain</title>"
                 "<table><thead><tr><th>id</th>"
                 + "".join(f"<th>{name}</th>" for name in report_data.FIELDS)
                 + "<th>result</th></tr></thead><tbody>\n")
        for point_id, inputs, result in report_data.points(rows):
            fh.write(f"<tr><th>{point_id}</th>"
                     + "".join(f"<td>{cell(inputs.get(name))}</td>" for name in report_data.FIELDS)
                     + f"<td>{cell(result)}</td></tr>\n")
        fh.write("</tbody></table></html>\n")


if __name__ == "__main__":
    _common.child_main({"write": write, "raw": raw})
