"""The lecture notebook: docs/lecture.ipynb, its source docs/lecture.py, and the figures the README shows.

``make test`` executes the notebook itself (nbmake, ``docs --nbmake``): a cell that raises, one
of its asserts included, fails the run. These tests check what execution cannot: that the
notebook executed is the source a reader reviews (edit docs/lecture.py, then ``make lecture``),
and that the committed notebook, which GitHub shows with its outputs, was executed whole.
"""
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

DOCS = Path(__file__).resolve().parent.parent / "docs"


def cells(notebook):
    return [(cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", []))) for cell in notebook.cells]


def test_the_notebook_holds_the_cells_of_its_source():
    source = jupytext.read(DOCS / "lecture.py")
    notebook = nbformat.read(DOCS / "lecture.ipynb", as_version=4)
    assert cells(notebook) == cells(source), "docs/lecture.ipynb is out of date: run `make lecture`"


def test_the_committed_notebook_was_executed_whole_without_errors():
    notebook = nbformat.read(DOCS / "lecture.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors[0]


def test_the_readme_figures_come_from_the_tagged_cells(tmp_path):
    result = subprocess.run([sys.executable, str(DOCS / "export_figures.py"), str(DOCS / "lecture.ipynb"),
                             str(tmp_path)], capture_output=True, text=True, check=True)
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["dropout-ensemble.png", "initialisation.png"], result.stdout
    for name in written:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # the README shows the files `make lecture` exported from the committed notebook
        assert (tmp_path / name).read_bytes() == (DOCS / "figures" / name).read_bytes(), name


def test_export_refuses_a_notebook_that_was_not_executed(tmp_path):
    notebook = jupytext.read(DOCS / "lecture.py")   # the source: cells without outputs
    nbformat.write(notebook, tmp_path / "bare.ipynb")
    result = subprocess.run([sys.executable, str(DOCS / "export_figures.py"), str(tmp_path / "bare.ipynb"),
                             str(tmp_path / "figures")], capture_output=True, text=True)
    assert result.returncode != 0 and "has no figure; execute the notebook first" in result.stderr
