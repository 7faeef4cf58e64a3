"""The compiled pipeline and the manifests run only what the images carry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from image_specs import IMAGES, KFP_COMPONENT, ROOT, ImageSpec

REGISTRY = "ghcr.io/xgbflow/"
SPECS = {spec.name: spec for spec in IMAGES}
PIPELINE = ROOT / "pipelines" / "training_pipeline.yaml"
MANIFEST_FOLDERS = ("base", "components")


def image_name(reference: str) -> str:
    """`ghcr.io/xgbflow/train:0.1.0` or `...@sha256:...` to `train`."""
    return re.split(r"[:@]", reference.removeprefix(REGISTRY), maxsplit=1)[0]


def find_project_containers(node: Any) -> Iterator[dict]:
    """Every container-like mapping whose image is one of the project's."""
    if isinstance(node, dict):
        if str(node.get("image", "")).startswith(REGISTRY):
            yield node
        for value in node.values():
            yield from find_project_containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from find_project_containers(value)


def read_manifest_containers() -> list[tuple[str, dict]]:
    found = []
    for folder in MANIFEST_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                for container in find_project_containers(document):
                    found.append((str(path.relative_to(ROOT)), container))
    return found


def read_pipeline_executors() -> dict[str, dict]:
    spec = yaml.safe_load(PIPELINE.read_text())
    return {
        name: executor["container"]
        for name, executor in spec["deploymentSpec"]["executors"].items()
    }


def test_pipeline_steps_run_in_project_images_that_carry_the_kfp_executor():
    executors = read_pipeline_executors()

    assert executors, f"{PIPELINE} has no executors"
    for name, container in executors.items():
        image = image_name(container["image"])
        assert container["image"].startswith(REGISTRY), f"{name} runs {image}"
        assert image in SPECS, (
            f"{name} runs {container['image']}, which no image builds"
        )
        assert "kfp.dsl.executor_main" in json.dumps(container["command"])
        assert set(KFP_COMPONENT) <= set(SPECS[image].modules), (
            f"{name} runs KFP components in the {image} image, whose import check "
            "does not cover them"
        )


def test_images_the_pipeline_names_are_all_pipeline_images():
    used = {image_name(c["image"]) for c in read_pipeline_executors().values()}
    with_components = {
        spec.name for spec in IMAGES if set(KFP_COMPONENT) <= set(spec.modules)
    }

    assert used == with_components


@pytest.mark.parametrize(
    ("path", "container"),
    read_manifest_containers(),
    ids=lambda value: (
        value if isinstance(value, str) else value.get("name", "container")
    ),
)
def test_manifest_containers_run_a_command_their_image_carries(
    path: str, container: dict
):
    spec: ImageSpec | None = SPECS.get(image_name(container["image"]))
    assert spec is not None, f"{path}: {container['image']} is built by no Dockerfile"

    if "command" in container:
        argv = [*container["command"], *container.get("args", [])]
    else:
        argv = [*spec.entrypoint, *container.get("args", [])]

    assert argv[:1] == ["xgbflow"], f"{path}: {container['name']} runs {argv[:2]}"
    assert argv[1] in spec.commands, (
        f"{path}: {container['name']} runs `xgbflow {argv[1]}` in the {spec.name} "
        f"image, which carries {spec.commands}"
    )


def test_manifests_reference_the_serving_and_training_images():
    referenced = {
        image_name(container["image"]) for _, container in read_manifest_containers()
    }

    assert {"serve", "train", "submit"} <= referenced
