"""Shared readers for the image tests: parsed Dockerfiles and the build context."""

from __future__ import annotations

import pytest
from image_specs import (
    IMAGES,
    ROOT,
    DockerIgnore,
    Stage,
    list_tracked_files,
    parse_dockerfile,
)


@pytest.fixture(scope="session")
def parsed_dockerfiles() -> dict[str, list[Stage]]:
    """Each image's Dockerfile as stages, keyed by image name."""
    return {spec.name: parse_dockerfile(spec.dockerfile.read_text()) for spec in IMAGES}


@pytest.fixture(scope="session")
def docker_ignore() -> DockerIgnore:
    """The rules that decide what of the repository reaches the build context."""
    return DockerIgnore((ROOT / ".dockerignore").read_text())


@pytest.fixture(scope="session")
def tracked_files() -> list[str]:
    """The repository's files as git tracks them: what a fresh clone builds from."""
    return list_tracked_files()
