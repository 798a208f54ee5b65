"""Run a notebook on "HopX Remote Python" and show every output in the terminal as it streams.

``python -m hopx_kernel.demo NOTEBOOK [--output OUT] [--kernel NAME]`` executes the notebook
with nbclient (what nbconvert and papermill use), prints each cell and its output the
moment it arrives, and writes the executed notebook (default ``out/<name>.ipynb``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

BOLD, DIM, RED, RESET = ("\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m") if sys.stdout.isatty() else ("",) * 4


class StreamingClient(NotebookClient):
    """An nbclient that echoes outputs to the terminal as they arrive."""

    def __init__(self, nb, out=sys.stdout, **kw):
        super().__init__(nb, **kw)
        self._out = out
        self._t0 = time.monotonic()

    def _say(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type == "code":
            stamp = f"{time.monotonic() - self._t0:6.2f}s"
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            self._say(f"\n{DIM}{stamp}{RESET} {BOLD}In [{cell_index}]:{RESET} {first}\n")
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    def process_message(self, msg, cell, cell_index):
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "stream":
            colour = RED if content["name"] == "stderr" else ""
            self._say(f"{colour}{content['text']}{RESET if colour else ''}")
        elif kind in ("execute_result", "display_data", "update_display_data"):
            data = content.get("data", {})
            kinds = ", ".join(k for k in data if k != "text/plain")
            text = data.get("text/plain", "")
            self._say(f"{text}{f'  {DIM}[{kinds}]{RESET}' if kinds else ''}\n")
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
