"""`xgbflow promote` and `xgbflow diff-envs` on a copy of the real overlays."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from xgbflow import promote

ROOT = Path(__file__).resolve().parents[1]
KUSTOMIZE = ROOT / ".tools/bin/kustomize"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The manifest folders copied, so promotion can write without touching the repo."""
    for folder in ("base", "components", "overlays", "pipelines"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    pipeline = tmp_path / "pipelines/training_pipeline.yaml"
    if not pipeline.exists():
        pipeline.write_text(
            "# placeholder: the compiled pipeline is not in this tree yet\n"
        )
    return tmp_path


def set_dev(tree: Path, tag: str, uri: str) -> None:
    kustomization = tree / "overlays/dev/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("newTag: 0.1.0", f"newTag: {tag}")
    )
    patch = tree / "overlays/dev/inference-service-model.yaml"
    old = promote.read_storage_uri(patch)
    patch.write_text(patch.read_text().replace(old, uri))


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def run_promote(tree: Path) -> int:
    return promote.main(
        ["--dev", str(tree / "overlays/dev"), "--prod", str(tree / "overlays/prod")]
    )


def test_promote_copies_images_and_model_and_nothing_else(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_dev(tree, "0.2.0", "s3://xgbflow-models/xgbflow-classifier/versions/2")
    prod = tree / "overlays/prod"
    before = snapshot(prod)
    old_kustomization = yaml.safe_load(before["kustomization.yaml"])

    status = run_promote(tree)

    after = snapshot(prod)
    assert status == 0
    assert {n for n in before if before[n] != after[n]} == {
        "kustomization.yaml",
        "inference-service-model.yaml",
    }
    new_kustomization = yaml.safe_load(after["kustomization.yaml"])
    assert {k: v for k, v in new_kustomization.items() if k != "images"} == {
        k: v for k, v in old_kustomization.items() if k != "images"
    }
    assert [i["newTag"] for i in new_kustomization["images"]] == ["0.2.0"] * 3
    assert "# Written by `xgbflow promote`" in after["kustomization.yaml"]
    assert promote.read_storage_uri(prod / "inference-service-model.yaml") == (
        "s3://xgbflow-models/xgbflow-classifier/versions/2"
    )
    assert "ghcr.io/xgbflow/serve: 0.1.0 -> 0.2.0" in capsys.readouterr().out


def test_promote_twice_changes_nothing_the_second_time(tree: Path) -> None:
    set_dev(tree, "0.2.0", "s3://xgbflow-models/xgbflow-classifier/versions/2")
    assert run_promote(tree) == 0
    once = snapshot(tree / "overlays/prod")

    assert run_promote(tree) == 0

    assert snapshot(tree / "overlays/prod") == once


@pytest.mark.parametrize("tag", ["latest", "main", "0.2"])
def test_promote_refuses_a_moving_tag(
    tree: Path, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    set_dev(tree, tag, "s3://xgbflow-models/xgbflow-classifier/versions/2")
    before = snapshot(tree / "overlays/prod")

    status = run_promote(tree)

    assert status == 1
    assert f"newTag {tag!r}" in caplog.text
    assert snapshot(tree / "overlays/prod") == before


def test_diff_envs_shows_only_the_objects_that_differ(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not KUSTOMIZE.is_file():
        pytest.fail(f"{KUSTOMIZE} is missing; run `make tools`")
    args = ["--dev", str(tree / "overlays/dev"), "--prod", str(tree / "overlays/prod")]

    status = promote.main_diff([*args, "--kustomize", str(KUSTOMIZE)])

    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("=== ")]
    assert status == 0
    assert "=== CronJob/scheduled-training" in headers
    assert "=== Experiment/xgbflow-tuning" in headers
    assert "=== ServingRuntime/xgbflow-onnx" not in headers
    assert "-  schedule: 0 3 * * *" in out
    assert "+  schedule: 0 2 * * 1" in out


def test_diff_envs_after_promotion_shows_no_image_or_model_change(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_dev(tree, "0.3.1", "s3://xgbflow-models/xgbflow-classifier/versions/3")
    assert run_promote(tree) == 0
    capsys.readouterr()
    args = ["--dev", str(tree / "overlays/dev"), "--prod", str(tree / "overlays/prod")]

    assert promote.main_diff([*args, "--kustomize", str(KUSTOMIZE)]) == 0

    out = capsys.readouterr().out
    assert "image:" not in out
    assert "storageUri" not in out
    assert "=== InferenceService/xgbflow-classifier" not in out
