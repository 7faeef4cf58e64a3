"""Fixtures of the tuning suite: the dev overlay's Experiment, rendered once.

Tests that change the Experiment take `experiment_document`, a fresh deep copy of the
rendered object, and edit it; the manifests themselves are never touched.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from xgbflow.tune import experiment

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / ".tools/bin/kustomize"


@pytest.fixture(scope="session")
def rendered_experiments() -> dict[str, dict]:
    """The Experiment object of each overlay, as `kustomize build` renders it."""
    if not KUSTOMIZE.is_file():
        pytest.fail(f"{KUSTOMIZE} is missing; run `make tools`")
    return {
        env: experiment.find_experiment(
            experiment.render_objects(ROOT / "overlays" / env, str(KUSTOMIZE)), ROOT
        )
        for env in ("dev", "prod")
    }


@pytest.fixture
def experiment_document(rendered_experiments: dict[str, dict]) -> dict:
    """A copy of dev's rendered Experiment that a test may edit."""
    return copy.deepcopy(rendered_experiments["dev"])
