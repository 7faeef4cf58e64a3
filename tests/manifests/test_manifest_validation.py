"""Offline validation: pinned tools, strict schemas for every object, yamllint."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_tools import ROOT, SCHEMAS, kubeconform, only, pinned_versions, tool

BROKEN = Path(__file__).with_name("broken")

# Each fixture breaks one thing; kubeconform must name that field in its complaint.
BROKEN_CASES = {
    "inference-service-misspelled-field.yaml": "storageURI",
    "experiment-wrong-parameter-type.yaml": "/spec/parameters/0/feasibleSpace/min",
    "deployment-unknown-field.yaml": "resource",
}


@pytest.mark.parametrize(
    ("binary", "key"), [("kustomize", "KUSTOMIZE"), ("kubeconform", "KUBECONFORM")]
)
def test_tool_is_built_from_the_pinned_module(binary: str, key: str) -> None:
    # Go build info names the main module and version, whatever the binary prints.
    result = subprocess.run(
        ["go", "version", "-m", tool(binary)],
        capture_output=True,
        text=True,
        check=True,
    )
    pins = pinned_versions()
    module_line = re.search(r"^\s*mod\s+(\S+)\s+(\S+)", result.stdout, re.MULTILINE)
    assert module_line, result.stdout
    assert pins[f"{key}_MODULE"].startswith(module_line.group(1))
    assert module_line.group(2) == pins[f"{key}_VERSION"]


def test_schemas_come_from_the_pinned_versions() -> None:
    stamp = (SCHEMAS / "VERSIONS").read_text().splitlines()
    pins = pinned_versions()
    assert stamp == [f"{key} := {pins[key]}" for key in sorted(pins)]


@pytest.mark.parametrize("target", ["dev", "prod", "root"])
def test_every_object_is_valid_and_none_skipped(
    rendered: dict[str, list[dict]], target: str
) -> None:
    objects = rendered[target]
    results = kubeconform(objects)

    assert len(results) == len(objects), "kubeconform saw a different number of objects"
    failures = [r for r in results if r["status"] != "statusValid"]
    assert not failures, f"{target}: not valid or skipped: {failures}"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_katib_trial_job_is_a_valid_job(
    rendered: dict[str, list[dict]], env: str
) -> None:
    # The Experiment schema leaves trialSpec free-form: check the Job on its own.
    experiment = only(rendered[env], "Experiment")
    job = copy.deepcopy(experiment["spec"]["trialTemplate"]["trialSpec"])
    job["metadata"] = {
        "name": "trial",
        "namespace": experiment["metadata"]["namespace"],
    }

    results = kubeconform([job])

    assert [r["status"] for r in results] == ["statusValid"], results


@pytest.mark.parametrize(("fixture", "field"), sorted(BROKEN_CASES.items()))
def test_broken_manifest_is_rejected(fixture: str, field: str) -> None:
    objects = list(yaml.safe_load_all((BROKEN / fixture).read_text()))

    results = kubeconform(objects)

    assert [r["status"] for r in results] == ["statusInvalid"], results
    assert field in results[0]["msg"], results[0]["msg"]


def test_missing_schema_is_an_error_not_a_skip() -> None:
    unknown = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
    }

    results = kubeconform([unknown])

    assert [r["status"] for r in results] == ["statusError"], results
    assert re.search(r"could not find schema", results[0]["msg"])


def test_yaml_passes_yamllint() -> None:
    result = subprocess.run(
        [
            ROOT / ".venv/bin/yamllint",
            "--strict",
            "--config-file",
            ".yamllint.yaml",
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
