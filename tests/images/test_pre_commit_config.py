"""The pre-commit hooks run the tools CI runs, at the versions CI runs them."""

from __future__ import annotations

import re

import pytest
import yaml
from image_specs import ROOT
from import_guard import canonical_name

REQUIRED_HOOKS = {"ruff-format", "ruff-check", "yamllint", "hadolint", "nbstripout"}


def read_hooks() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def read_lock_pins() -> dict[str, str]:
    lock = (ROOT / "requirements" / "dev.lock").read_text()
    return {
        canonical_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9][\w.\-]*)==(\S+)", lock, re.M)
    }


def test_pre_commit_runs_every_fast_check():
    assert set(read_hooks()) >= REQUIRED_HOOKS


@pytest.mark.parametrize("hook_id", sorted(REQUIRED_HOOKS))
def test_hook_tools_are_pinned_to_the_lock(hook_id: str):
    hook = read_hooks()[hook_id]
    pins = read_lock_pins()
    dependencies = hook.get("additional_dependencies", [])

    assert dependencies, f"hook {hook_id} installs no pinned tool"
    for dependency in dependencies:
        name, _, version = dependency.partition("==")
        assert pins.get(canonical_name(name)) == version, (
            f"hook {hook_id} pins {dependency}; the lock has "
            f"{name}=={pins.get(canonical_name(name))}"
        )


@pytest.mark.parametrize("hook_id", ["ruff-format", "ruff-check"])
def test_ruff_hooks_honour_pyproject_excludes(hook_id: str):
    assert "--force-exclude" in read_hooks()[hook_id]["entry"].split()


def test_hadolint_hook_uses_the_committed_configuration():
    assert "--config .hadolint.yaml" in read_hooks()["hadolint"]["entry"]
