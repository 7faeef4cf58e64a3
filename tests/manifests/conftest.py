"""Session fixtures: the manifest tree copied once and every environment rendered once.

Everything renders from a copy of the repository's manifest folders, so a placeholder
compiled pipeline can stand in while pipelines/training_pipeline.yaml is not yet in the
tree, without touching the working copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from manifest_tools import ENVIRONMENTS, MANIFEST_PATHS, PIPELINE, ROOT, kustomize_build


@pytest.fixture(scope="session")
def manifest_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest folders copied; a placeholder stands in for a missing pipeline."""
    tree = tmp_path_factory.mktemp("repo")
    for name in MANIFEST_PATHS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name)
        else:
            shutil.copy2(source, tree / name)
    pipeline = tree / PIPELINE
    if not pipeline.exists():
        pipeline.write_text(
            "# placeholder: the compiled pipeline is not in this tree yet\n"
        )
    return tree


@pytest.fixture(scope="session")
def rendered(manifest_tree: Path) -> dict[str, list[dict]]:
    """Objects of each overlay keyed by environment, and of the root as "root"."""
    out = {
        env: kustomize_build(manifest_tree / "overlays" / env) for env in ENVIRONMENTS
    }
    out["root"] = kustomize_build(manifest_tree)
    return out
