"""Static checks on the example notebooks in notebooks/ (execution is tested elsewhere,
on the HopX kernel)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = [
    "01-basic-streaming.ipynb",
    "02-stdout-vs-stderr.ipynb",
    "03-progress-monitoring.ipynb",
    "04-environment-variables.ipynb",
    "05-error-handling.ipynb",
    "06-data-processing.ipynb",
    "07-rich-display.ipynb",
    "08-parameters.ipynb",
    "09-widgets-and-progress.ipynb",
]
KERNELSPEC = {"name": "hopx-remote-python", "display_name": "HopX Remote Python", "language": "python"}
# Not installed in a HopX sandbox: the examples must stick to the standard library.
THIRD_PARTY = ("numpy", "pandas", "matplotlib", "PIL", "scipy", "requests")
#: Notebooks about a library need it (installed for tests by the `test` extra).
NEEDS = {"09-widgets-and-progress": ("matplotlib",)}


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_expected_notebooks_present():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def nb(request):
    return _read(request.param)


def test_validates(nb):
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)


def test_hopx_kernelspec_metadata(nb):
    assert nb.metadata["kernelspec"] == KERNELSPEC
    assert nb.metadata["language_info"]["name"] == "python"


def test_starts_with_markdown_intro(nb):
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# ")


def test_no_stored_outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.id
            assert cell.execution_count is None, cell.id


def test_only_standard_library(nb, request):
    allowed = NEEDS.get(request.node.callspec.id, ())
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            words = line.replace(",", " ").split()
            if words[:1] in (["import"], ["from"]):
                module = words[1].split(".")[0]
                assert module not in THIRD_PARTY or module in allowed, (cell.id, line)


def test_05_has_raises_exception_cell():
    nb = _read(NOTEBOOKS_DIR / "05-error-handling.ipynb")
    assert any("raises-exception" in _tags(c) for c in nb.cells if c.cell_type == "code")


def test_08_has_parameters_cell():
    nb = _read(NOTEBOOKS_DIR / "08-parameters.ipynb")
    tagged = [c for c in nb.cells if c.cell_type == "code" and "parameters" in _tags(c)]
    assert len(tagged) == 1
    namespace: dict = {}
    exec(tagged[0].source, namespace)  # noqa: S102 - our own two assignments
    assert namespace["n"] == 3 and namespace["greeting"] == "hello"
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.source.strip().splitlines()[-1] == '{"n": n, "greeting": greeting}'


def test_generator_is_in_sync(tmp_path):
    """notebooks/make_notebooks.py reproduces the committed files byte for byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS_DIR / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for stem, cells in module.NOTEBOOKS.items():
        out = tmp_path / f"{stem}.ipynb"
        nbformat.write(module.build(stem, cells), out)
        assert out.read_text() == (NOTEBOOKS_DIR / out.name).read_text(), stem
