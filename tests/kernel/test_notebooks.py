"""Every notebook in notebooks/ runs on the kernel through nbclient, nbconvert and papermill.

nbclient runs with the guard of tests/support/notebooks.py against its own Output-widget
hang (notebook 09 has Output widgets), which a local ipykernel meets as well."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ..support.notebooks import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "hopx-remote-python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_nbclient(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells)
    errors = [
        o
        for c in code_cells
        if "raises-exception" not in c.metadata.get("tags", [])
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    assert any(c.outputs for c in code_cells)


def test_nbconvert_execute_writes_the_executed_notebook(tmp_path):
    src = ROOT / "notebooks" / "01-basic-streaming.ipynb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            f"--ExecutePreprocessor.kernel_name={KERNEL}",
            "--output-dir",
            str(tmp_path),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    nb = nbformat.read(tmp_path / src.name, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Step 5/5" in text


def test_papermill_runs_a_parameterised_notebook(tmp_path):
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "08-parameters.ipynb"),
        str(out),
        parameters={"n": 2, "greeting": "bonjour"},
        kernel_name=KERNEL,
        progress_bar=False,
        cwd=str(tmp_path),
    )
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("bonjour") == 2
    last = [o for o in nb.cells[-1].outputs if o.output_type == "execute_result"]
    assert last and "'n': 2" in last[0]["data"]["text/plain"]
