"""Every module an image's pods start with imports with only that image's packages.

Each import runs in a fresh interpreter under import_guard.py, which hides every
installed distribution the image's extras do not bring in. A command whose module does
not exist fails here by name: the images must not ship a command that cannot start.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from image_specs import IMAGES, ROOT, WORKSTATION_COMMANDS, ImageSpec
from import_guard import PROJECT, canonical_name, resolve_distributions

from xgbflow.cli import COMMANDS

GUARD = Path(__file__).with_name("import_guard.py")

TRAINING_DISTRIBUTIONS = frozenset(
    {
        "xgboost",
        "xgboost-cpu",
        "scikit-learn",
        "mlflow",
        "skl2onnx",
        "onnxmltools",
        "kfp",
    }
)


def list_entry_modules(spec: ImageSpec) -> list[str]:
    """What the image's pods import on start, the CLI first."""
    commands = [COMMANDS[command][0] for command in spec.commands]
    return list(dict.fromkeys(["xgbflow.cli", *spec.modules, *commands]))


ENTRY_MODULES = [
    pytest.param(spec, module, id=f"{spec.name}-{module}")
    for spec in IMAGES
    for module in list_entry_modules(spec)
]

by_image = pytest.mark.parametrize("spec", IMAGES, ids=lambda spec: spec.name)


def run_guard(
    extras: tuple[str, ...], modules: list[str], pythonpath: Path | None = None
) -> dict[str, str]:
    """The import problems of `modules` under `xgbflow[extras]`, by module."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, str(GUARD), "--extras", ",".join(extras), *modules],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"the import guard crashed:\n{result.stderr}") from error


@functools.cache
def check_image_imports(spec: ImageSpec) -> dict[str, str]:
    """One interpreter per image imports all its entry modules, in order."""
    return run_guard(spec.extras, list_entry_modules(spec))


def read_locked_names() -> set[str]:
    lock = (ROOT / "requirements" / "dev.lock").read_text()
    return {
        canonical_name(match[1])
        for match in re.finditer(r"^([A-Za-z0-9][\w.\-]*)==", lock, re.MULTILINE)
    }


def test_every_command_runs_in_one_image_or_on_a_workstation():
    in_images = [command for spec in IMAGES for command in spec.commands]

    assert len(in_images) == len(set(in_images)), "a command is assigned to two images"
    assert not set(in_images) & WORKSTATION_COMMANDS
    assert set(in_images) | WORKSTATION_COMMANDS == set(COMMANDS)


@by_image
def test_image_dependencies_are_all_pinned_by_the_lock(spec: ImageSpec):
    needed = resolve_distributions(PROJECT, spec.extras) - {PROJECT}

    assert needed - read_locked_names() == set()


def test_serve_image_carries_no_training_libraries():
    serve = next(spec for spec in IMAGES if spec.name == "serve")

    assert (
        resolve_distributions(PROJECT, serve.extras) & TRAINING_DISTRIBUTIONS == set()
    )


@by_image
def test_images_use_the_cpu_only_xgboost(spec: ImageSpec):
    needed = resolve_distributions(PROJECT, spec.extras)

    assert "xgboost" not in needed, "the xgboost wheel bundles CUDA; use xgboost-cpu"
    assert not {name for name in needed if name.startswith("nvidia-")}


def test_train_image_has_the_cpu_xgboost():
    train = next(spec for spec in IMAGES if spec.name == "train")

    assert "xgboost-cpu" in resolve_distributions(PROJECT, train.extras)


@pytest.mark.parametrize(("spec", "module"), ENTRY_MODULES)
def test_entry_module_imports_with_only_the_image_extras(spec: ImageSpec, module: str):
    problem = check_image_imports(spec).get(module)

    if problem is not None:
        pytest.fail(f"{module} does not import in the {spec.name} image:\n{problem}")


def test_guard_hides_training_libraries_from_the_serve_image():
    problems = run_guard(("serve",), ["onnxruntime", "sklearn"])

    assert list(problems) == ["sklearn"]
    assert "sklearn (scikit-learn)" in problems["sklearn"]


def test_guard_hides_blocked_distributions_from_probes_and_metadata(tmp_path: Path):
    (tmp_path / "probe_optional.py").write_text(
        "import importlib.metadata\n"
        "import importlib.util\n"
        "\n"
        "assert importlib.util.find_spec('xgboost') is None\n"
        "try:\n"
        "    importlib.metadata.version('xgboost-cpu')\n"
        "except importlib.metadata.PackageNotFoundError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('xgboost-cpu metadata is visible')\n"
        "assert importlib.metadata.version('onnxruntime')\n"
    )

    assert run_guard(("serve",), ["probe_optional"], pythonpath=tmp_path) == {}


def test_guard_lets_an_image_import_what_it_installs():
    # xgboost is installed by the distribution xgboost-cpu: a module name that is not
    # its distribution's name must still resolve to it.
    assert run_guard(("train", "cloud"), ["xgboost", "joblib"]) == {}
