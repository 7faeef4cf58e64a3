"""Run the notebooks headless: a kernel of this interpreter, parameters injected.

Parameters are injected the way papermill does it: a cell tagged `injected-parameters`
goes right after the cell tagged `parameters`, so the notebook's defaults are replaced
without editing them. Every run gets a fresh kernel whose working directory is the
folder the test gives, so nothing is read from or written to the repository's
notebooks/ folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL_NAME = "xgbflow-tests"
#: Generous per-cell limit: a hung kernel fails the test instead of stalling the suite.
CELL_TIMEOUT = 600


def parameters_cell(notebook: NotebookNode) -> tuple[int, set[str]]:
    """Index of the cell tagged `parameters` and the names it assigns."""
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []):
            names = {
                target.id
                for node in ast.parse(cell.source).body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            return index, names
    raise LookupError("the notebook has no cell tagged 'parameters'")


def inject_parameters(notebook: NotebookNode, values: dict[str, object]) -> None:
    """Insert a cell assigning `values` right after the parameters cell."""
    index, declared = parameters_cell(notebook)
    unknown = sorted(set(values) - declared)
    if unknown:
        raise KeyError(
            f"parameters {unknown} are not in the notebook's parameters cell; "
            f"expected some of {sorted(declared)}"
        )
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)


def execute_notebook(
    name: str,
    workdir: Path,
    kernel_specs: KernelSpecManager,
    env: dict[str, str],
    parameters: dict[str, object],
) -> NotebookNode:
    """notebooks/<name> executed in a fresh kernel started in `workdir`."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    inject_parameters(notebook, parameters)
    workdir.mkdir(parents=True, exist_ok=True)
    manager = AsyncKernelManager(
        kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs
    )
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    # Given a manager, nbclient would leave the kernel running: shut it down here.
    client.execute(env=env, cleanup_kc=True)
    return notebook


def image_count(notebook: NotebookNode) -> int:
    """How many PNG figures the executed notebook displayed."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def printed(notebook: NotebookNode) -> str:
    """Everything the notebook's cells printed to stdout."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )
