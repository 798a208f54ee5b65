"""The same notebook gives the same outputs on HopX Remote Python as on a local ``python3``
ipykernel: every notebook in notebooks/ and the parity notebook (parity.py), run with
nbclient on both, compared message by message in order after normalising ids, timings,
memory addresses and paths. Completion and inspection are compared through jupyter_client.

Where the outputs cannot be equal, ``PARITY_EXCEPTIONS`` (cells) and ``NOTEBOOK_EXCEPTIONS``
(cells of notebooks/) say which and why; their execution counts must still agree.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from jupyter_core.utils import run_sync

from ..support.notebooks import NotebookClient
from .parity import (
    ASSIST_REQUESTS,
    PARITY_EXCEPTIONS,
    PIP_PROGRESS,
    STREAM_ORDER,
    normalise,
    normalise_text,
    parity_notebook,
    rendered_streams,
    streams_per_run,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LOCAL, HOPX = "python3", "hopx-remote-python"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

#: (notebook stem, code cell index) → (kind, why its outputs differ by nature); kinds as
#: in parity.PARITY_EXCEPTIONS
NOTEBOOK_EXCEPTIONS = {
    ("04-environment-variables", 0): ("skip", "HOME, the working directory and PATH are the sandbox's own"),
    ("05-error-handling", 1): ("stream-order", STREAM_ORDER),
    ("05-error-handling", 2): ("stream-order", STREAM_ORDER),
}

#: debugpy's "frozen modules" warnings from the sandbox's kernel: issue 11 removes them
FOREIGN_NOISE = re.compile(r"Debugger warning|frozen modules|-Xfrozen_modules|PYDEVD_DISABLE_FILE_VALIDATION")


class RecordingClient(NotebookClient):
    """An nbclient that keeps every message of every cell, in arrival order."""

    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.messages: dict[int, list[tuple[str, dict]]] = {}

    def process_message(self, msg, cell, cell_index):
        self.messages.setdefault(cell_index, []).append((msg["msg_type"], msg["content"]))
        return super().process_message(msg, cell, cell_index)


def run(nb, kernel: str, folder: Path, stderr_path: Path, assist: bool = False):
    """Run ``nb`` on ``kernel``: (per-cell messages, execution counts, assist replies)."""
    client = RecordingClient(
        nb, kernel_name=kernel, timeout=90, allow_errors=True, resources={"metadata": {"path": str(folder)}}
    )
    replies = []
    with stderr_path.open("w") as err, client.setup_kernel(stderr=err):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        if assist:
            for kind, code, pos in ASSIST_REQUESTS:
                args = (code, pos) if kind == "complete" else (code, pos, 0)
                reply = run_sync(_ask)(getattr(client.kc, kind), *args)
                replies.append((kind, code, _normalise_reply(reply["content"])))
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    here = str(folder)  # the local kernel's working directory, as the sandbox's is normalised
    messages = {i: [(t, _replace(c, here, "CWD")) for t, c in msgs] for i, msgs in client.messages.items()}
    return messages, counts, replies


def _replace(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    return value


async def _ask(method, *args):
    return await method(*args, reply=True, timeout=30)


def _normalise_reply(content: dict) -> dict:
    return {
        k: (normalise_text(v) if isinstance(v, str) else v)
        if k != "data"
        else {m: normalise_text(t) for m, t in v.items()}
        for k, v in content.items()
    }


def both(nb_factory, tmp_path: Path, assist: bool = False):
    """Run the notebook on both kernels at once (each in its own thread and event loop)."""

    def one(kernel):
        folder = tmp_path / kernel
        folder.mkdir()
        return run(nb_factory(), kernel, folder, tmp_path / f"{kernel}.stderr", assist)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip((LOCAL, HOPX), pool.map(one, (LOCAL, HOPX)), strict=True))


def diff(cells: list[str], local: dict, hopx: dict, exceptions: dict[int, tuple[str, str]]) -> list[str]:
    """The cells whose messages differ, each with both sides, for the assertion message."""
    problems = []
    for index, source in enumerate(cells):
        kind = exceptions.get(index, ("exact", ""))[0]
        if kind == "skip":
            continue
        view = streams_per_run if kind == "stream-order" else normalise
        a, b = view(local.get(index, [])), view(hopx.get(index, []))
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            problems.append(
                f"cell {index} ({source[:40]!r}), {len(a)} vs {len(b)} messages, "
                f"first difference at {at}:\n  local {a[at : at + 2]!r}\n  hopx  {b[at : at + 2]!r}"
            )
    return problems


def test_parity_notebook_gives_the_same_messages_counts_and_completions(tmp_path):
    results = both(parity_notebook, tmp_path, assist=True)
    (local, local_counts, local_assist), (hopx, hopx_counts, hopx_assist) = results[LOCAL], results[HOPX]
    cells = [c.source for c in parity_notebook().cells]
    exceptions = {i: PARITY_EXCEPTIONS[s] for i, s in enumerate(cells) if s in PARITY_EXCEPTIONS}
    assert hopx_counts == local_counts == list(range(1, len(cells) + 1))
    problems = diff(cells, local, hopx, exceptions)
    assert not problems, "\n".join(problems)
    # the points of issue 13, spelled out so a regression names itself
    by_source = {s: i for i, s in enumerate(cells)}
    result = [
        c
        for t, c in normalise(hopx[by_source["sorted(Out), Out.get(4), _, _4, In[4]"]])
        if t == "execute_result"
    ]
    assert result[0]["data"]["text/plain"] == "([4], 42, 42, 42, '42')"
    figure = [
        t for t, _ in normalise(hopx[by_source["import matplotlib.pyplot as plt\n\nplt.plot([1, 2, 4])"]])
    ]
    assert figure == ["execute_result", "display_data"]
    traceback = [c["traceback"] for t, c in hopx[by_source["1/0"]] if t == "error"][0]
    assert "Cell In[6], line 1" in ANSI.sub("", "\n".join(traceback))
    pip_cell = next(i for i, s in enumerate(cells) if "PIP_PROGRESS:" in s)
    assert rendered_streams(hopx[pip_cell]) == rendered_streams(local[pip_cell])
    assert "".join(PIP_PROGRESS) in normalise(hopx[pip_cell])[0][1]["text"]
    assert hopx_assist == local_assist
    types = hopx_assist[0][2]["metadata"]["_jupyter_types_experimental"]
    assert types[0]["type"] == "function" and types[0]["signature"] == "(n)"
    # a quiet terminal: nothing from the HopX kernel or its local server in normal use
    # beyond what ipykernel itself prints for a local kernel too
    local_lines = set((tmp_path / f"{LOCAL}.stderr").read_text().splitlines())
    noise = [
        line
        for line in (tmp_path / f"{HOPX}.stderr").read_text().splitlines()
        if line.strip() and line not in local_lines and not FOREIGN_NOISE.search(line)
    ]
    assert noise == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_example_notebook_gives_the_same_messages_as_a_local_kernel(path, tmp_path):
    def load():
        return nbformat.read(path, as_version=4)

    results = both(load, tmp_path)
    (local, local_counts, _), (hopx, hopx_counts, _) = results[LOCAL], results[HOPX]
    assert hopx_counts == local_counts
    nb = load()
    code_indices = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    exceptions = {
        cell: why
        for (stem, n), why in NOTEBOOK_EXCEPTIONS.items()
        if stem == path.stem
        for cell in [code_indices[n]]
    }
    problems = diff([c.source for c in nb.cells], local, hopx, exceptions)
    assert not problems, "\n".join(problems)
