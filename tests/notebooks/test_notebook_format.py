"""The notebooks are committed as clean sources: no outputs, no execution counts."""

from __future__ import annotations

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from notebook_tools import NOTEBOOKS, parameters_cell

EXPECTED = [
    "01-data-loading.ipynb",
    "02-data-preprocessing.ipynb",
    "03-model-development.ipynb",
]


def run_leftovers(notebook: NotebookNode) -> list[str]:
    """What running the notebook left behind: outputs and execution counts."""
    leftovers = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.outputs:
            leftovers.append(f"cell {index} has {len(cell.outputs)} output(s)")
        if cell.execution_count is not None:
            leftovers.append(f"cell {index} has execution count {cell.execution_count}")
    return leftovers


def test_the_three_notebooks_are_there():
    assert sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)

    nbformat.validate(notebook)
    assert run_leftovers(notebook) == [], (
        f"{name} was committed with outputs; run `nbstripout notebooks/{name}`"
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_opens_with_its_parameters(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)

    index, names = parameters_cell(notebook)

    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    assert index == first_code
    assert {"N_ROWS", "SEED", "OUTPUT_DIR"} <= names


def test_leftovers_of_a_run_are_found():
    executed = new_notebook(
        cells=[
            new_markdown_cell("# title"),
            new_code_cell("1 + 1", execution_count=3),
            new_code_cell(
                "print(2)",
                outputs=[new_output("stream", name="stdout", text="2\n")],
            ),
        ]
    )

    assert run_leftovers(executed) == [
        "cell 1 has execution count 3",
        "cell 2 has 1 output(s)",
    ]
