"""Fixtures for executing the notebooks: a kernel of this interpreter and its env."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from nbformat import NotebookNode
from notebook_tools import KERNEL_NAME, execute_notebook


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec that starts ipykernel with this very interpreter (the .venv's)."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(
        path=kernels / KERNEL_NAME, overrides={"display_name": "xgbflow tests"}
    )
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.fixture(scope="session")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The kernel's environment: no telemetry, inline figures, a private IPython dir."""
    env = dict(os.environ)
    env |= {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "IPYTHONDIR": str(tmp_path_factory.mktemp("ipython")),
    }
    # Without MPLBACKEND ipykernel selects its inline backend: figures become outputs.
    env.pop("MPLBACKEND", None)
    # The notebooks must track where the test says, never where the shell points.
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture
def run_notebook(kernel_specs, kernel_env) -> Callable[..., NotebookNode]:
    """run_notebook(name, workdir, **parameters) -> the executed notebook."""

    def run(name: str, workdir: Path, **parameters: object) -> NotebookNode:
        return execute_notebook(name, workdir, kernel_specs, kernel_env, parameters)

    return run
