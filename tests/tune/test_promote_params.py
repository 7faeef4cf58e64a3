"""`xgbflow promote-params` changes exactly the tuned keys of an overlay's params."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from xgbflow import submit
from xgbflow.tune import promote

ROOT = Path(__file__).resolve().parents[2]
BEST = {
    "max_depth": 7,
    "learning_rate": 0.05623413251903491,
    "n_estimators": 431,
    "min_child_weight": 3,
    "subsample": 0.8125,
}


@pytest.fixture
def overlays(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays")
    return tmp_path / "overlays"


def write_best(folder: Path, values: dict) -> Path:
    path = folder / "best-params.yaml"
    path.write_text("# Best trial of a run\n" + yaml.safe_dump(values, sort_keys=False))
    return path


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_the_tuned_keys_change(
    overlays: Path, tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    params_file = overlays / env / "pipeline-params.yaml"
    before_text = params_file.read_text()
    untouched = {p.name: p.read_text() for p in (overlays / env).iterdir()}

    status = promote.main([str(write_best(tmp_path, BEST)), str(overlays / env)])

    assert status == 0
    after_text = params_file.read_text()
    assert yaml.safe_load(after_text) == yaml.safe_load(before_text) | BEST
    # Every line that was there is still there, in order; only the new keys follow.
    assert after_text.startswith(before_text)
    for name, text in untouched.items():
        if name != "pipeline-params.yaml":
            assert (overlays / env / name).read_text() == text
    assert "+max_depth: 7" in capsys.readouterr().out


def test_promoted_file_is_accepted_by_the_pipeline_submitter(
    overlays: Path, tmp_path: Path
) -> None:
    promote.main([str(write_best(tmp_path, BEST)), str(overlays / "prod")])

    params = submit.load_parameters(overlays / "prod" / "pipeline-params.yaml")

    pipeline = submit.load_pipeline(ROOT / "pipelines" / "training_pipeline.yaml")
    submit.check_parameters(pipeline, params)
    assert params["learning_rate"] == BEST["learning_rate"]


def test_promoting_again_replaces_values_in_place(
    overlays: Path, tmp_path: Path
) -> None:
    params_file = overlays / "dev" / "pipeline-params.yaml"
    params_file.write_text(
        params_file.read_text() + "# Depth found by last week's search.\nmax_depth: 4\n"
    )
    promote.main([str(write_best(tmp_path, BEST)), str(overlays / "dev")])
    first = params_file.read_text()

    again = BEST | {"max_depth": 9, "subsample": 0.7}
    promote.main([str(write_best(tmp_path, again)), str(overlays / "dev")])

    second = params_file.read_text()
    assert second.count("max_depth:") == 1
    assert "# Depth found by last week's search.\nmax_depth: 9\n" in second
    changed = [
        (old, new)
        for old, new in zip(first.splitlines(), second.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [
        ("max_depth: 7", "max_depth: 9"),
        ("subsample: 0.8125", "subsample: 0.7"),
    ]


def test_an_empty_parameter_mapping_becomes_a_block_mapping(tmp_path: Path) -> None:
    params_file = tmp_path / "pipeline-params.yaml"
    params_file.write_text("# Defaults everywhere.\n{}\n")

    promote.main([str(write_best(tmp_path, BEST)), str(params_file)])

    text = params_file.read_text()
    assert text.startswith("# Defaults everywhere.\nmax_depth: 7\n")
    assert yaml.safe_load(text) == BEST


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (BEST | {"accuracy_gate": 0.5}, "['accuracy_gate'] are not tuned parameters"),
        (BEST | {"max_depth": 3.5}, "max_depth=3.5 has a fractional part"),
        (BEST | {"subsample": 0.0}, "subsample=0.0 is out of range"),
        ({k: v for k, v in BEST.items() if k != "subsample"}, "has no 'subsample'"),
    ],
)
def test_bad_best_params_leave_the_overlay_untouched(
    overlays: Path,
    tmp_path: Path,
    values: dict,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params_file = overlays / "dev" / "pipeline-params.yaml"
    before = params_file.read_text()

    status = promote.main([str(write_best(tmp_path, values)), str(overlays / "dev")])

    assert status == 2
    assert message in capsys.readouterr().err
    assert params_file.read_text() == before


def test_small_floats_stay_floats_in_yaml(overlays: Path, tmp_path: Path) -> None:
    promote.main(
        [
            str(write_best(tmp_path, BEST | {"learning_rate": 1e-4})),
            str(overlays / "dev"),
        ]
    )

    params = yaml.safe_load((overlays / "dev" / "pipeline-params.yaml").read_text())

    assert params["learning_rate"] == 1e-4
