"""Rendering, validation and lookup helpers for the manifest suites.

kustomize and kubeconform are the pinned binaries `make tools` puts in .tools/bin, and
the schemas are the ones hack/generate_schemas.py wrote into .tools/schemas.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
SCHEMAS = TOOLS / "schemas"
SCHEMA_LOCATION = str(SCHEMAS / "{{ .ResourceKind }}{{ .KindSuffix }}.json")
ENVIRONMENTS = ("dev", "prod")
MANIFEST_PATHS = (
    "kustomization.yaml",
    "argocd",
    "base",
    "components",
    "overlays",
    "pipelines",
)
PIPELINE = "pipelines/training_pipeline.yaml"


def tool(name: str) -> Path:
    """Path of a pinned tool in .tools/bin; fails, naming the fix, if absent."""
    path = TOOLS / "bin" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing; run `make tools` to install the pinned tools")
    return path


def pinned_versions() -> dict[str, str]:
    """The KEY := value pins of hack/versions.mk."""
    pattern = re.compile(r"^([A-Z_]+)\s*:=\s*(\S+)\s*$")
    lines = (ROOT / "hack/versions.mk").read_text().splitlines()
    return {m.group(1): m.group(2) for m in map(pattern.match, lines) if m}


def kustomize_build(path: Path) -> list[dict]:
    """Render one kustomization and return its objects."""
    result = subprocess.run(
        [tool("kustomize"), "build", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kubeconform(objects: list[dict]) -> list[dict]:
    """Validate objects strictly against the generated schemas, one result each."""
    if not (SCHEMAS / "VERSIONS").is_file():
        pytest.fail(f"{SCHEMAS} is missing; run `make tools` to generate the schemas")
    result = subprocess.run(
        [
            tool("kubeconform"),
            "-strict",
            "-verbose",
            "-output=json",
            f"-schema-location={SCHEMA_LOCATION}",
            "-",
        ],
        input=yaml.safe_dump_all(objects, sort_keys=False),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout, f"kubeconform printed nothing:\n{result.stderr}"
    return json.loads(result.stdout)["resources"]


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    """Objects of one kind, optionally of one name (hash suffixes included)."""
    return [
        obj
        for obj in objects
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)
    ]


def only(objects: list[dict], kind: str, name: str | None = None) -> dict:
    """The single object of a kind (and name); fails if there are none or several."""
    matches = find(objects, kind, name)
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]
