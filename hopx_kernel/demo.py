"""Run a notebook on "HopX Remote Python" and show every output in the terminal as it streams.

``python -m hopx_kernel.demo NOTEBOOK [--output OUT] [--kernel NAME]`` executes the notebook
with nbclient (what nbconvert and papermill use), prints each cell and its output the
moment it arrives, and writes the executed notebook (default ``out/<name>.ipynb``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

BOLD, DIM, RED, RESET = ("\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m") if sys.stdout.isatty() else ("",) * 4


def preview(data: dict) -> str:
    """One terminal line for a MIME bundle: the most readable representation."""
    for mime in ("text/markdown", "text/html", "image/svg+xml", "application/json"):
        if mime in data:
            value = data[mime]
            text = value if isinstance(value, str) else json.dumps(value)
            if mime in ("text/html", "image/svg+xml"):
                text = re.sub(r"<[^>]+>", " ", text)
            text = " ".join(text.split())
            return f"{text[:100]}{'…' if len(text) > 100 else ''}  {DIM}[{mime}]{RESET}"
    for mime, value in data.items():
        if mime.startswith("image/"):
            return f"{DIM}[{mime}, {len(value) * 3 // 4} bytes]{RESET}"
    return str(data.get("text/plain", ""))


class StreamingClient(NotebookClient):
    """An nbclient that echoes outputs to the terminal as they arrive."""

    def __init__(self, nb, out=sys.stdout, **kw):
        super().__init__(nb, **kw)
        self._out = out
        self._t0 = time.monotonic()
        self._code_cells = 0

    def _say(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type == "code":
            self._code_cells += 1
            stamp = f"{time.monotonic() - self._t0:6.2f}s"
            lines = cell.source.strip().splitlines() or [""]
            more = f" {DIM}(+{len(lines) - 1} lines){RESET}" if len(lines) > 1 else ""
            self._say(f"\n{DIM}{stamp}{RESET} {BOLD}In [{self._code_cells}]:{RESET} {lines[0]}{more}\n")
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    def process_message(self, msg, cell, cell_index):
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "stream":
            colour = RED if content["name"] == "stderr" else ""
            self._say(f"{colour}{content['text']}{RESET if colour else ''}")
        elif kind in ("execute_result", "display_data", "update_display_data"):
            mark = "↻ " if kind == "update_display_data" else ""
            self._say(f"{mark}{preview(content.get('data', {}))}\n")
        elif kind == "error":
            self._say(f"{RED}{content['ename']}: {content['evalue']}{RESET}\n")
        return super().process_message(msg, cell, cell_index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hopx_kernel.demo", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--output", type=Path, help="where to write the executed notebook")
    parser.add_argument("--kernel", default="hopx-remote-python", help="kernelspec name")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    out = args.output or Path("out") / args.notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{BOLD}Running {args.notebook} on kernel '{args.kernel}' (outputs stream below){RESET}")
    started = time.monotonic()
    client = StreamingClient(
        nb, kernel_name=args.kernel, timeout=600, resources={"metadata": {"path": str(out.parent)}}
    )
    try:
        client.execute()
    except Exception as exc:  # nbclient's CellExecutionError: say it in one line, keep the notebook
        nbformat.write(nb, out)
        print(f"\n{RED}stopped: {str(exc).strip().splitlines()[-1]}{RESET}\nwrote {out}")
        return 1
    nbformat.write(nb, out)
    print(f"\n{BOLD}done in {time.monotonic() - started:.1f}s{RESET}; executed notebook written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
