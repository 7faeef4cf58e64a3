"""Promotion from dev to prod, as a pull request: compare the overlays, copy the pins.

`xgbflow diff-envs` renders both overlays with kustomize and prints a unified diff per
object, so a reviewer sees what prod would change. `xgbflow promote` copies dev's
`images:` block into prod's kustomization.yaml and dev's model storageUri into prod's
inference-service-model.yaml, and touches nothing else.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

KUSTOMIZATION = "kustomization.yaml"
MODEL_PATCH = "inference-service-model.yaml"
STORAGE_URI = re.compile(r"^(\s*storageUri:\s*)(\S+)\s*$", re.MULTILINE)
RELEASE_TAG = re.compile(r"^v?\d+\.\d+\.\d+$")
# kustomize's name hashes: ten hex digits, with vowel-like ones swapped for consonants.
HASH_SUFFIX = re.compile(r"-[2456789bcdfghkmt]{10}$")


class PromotionError(RuntimeError):
    """The overlays cannot be promoted or compared as they stand."""


def read_images(kustomization: Path) -> list[dict[str, str]]:
    """The `images:` entries of a kustomization, each pinned by digest or release."""
    images = yaml.safe_load(kustomization.read_text()).get("images") or []
    for image in images:
        tag = str(image.get("newTag", ""))
        if not image.get("digest") and not RELEASE_TAG.match(tag):
            raise PromotionError(
                f"{kustomization}: image {image.get('name')!r} has newTag {tag!r}; "
                "expected a digest or a release tag such as 1.4.2 for prod"
            )
    return images


def read_storage_uri(patch: Path) -> str:
    """The one storageUri a model patch sets."""
    matches = STORAGE_URI.findall(patch.read_text())
    if len(matches) != 1:
        raise PromotionError(
            f"{patch}: expected exactly one storageUri, found {len(matches)}"
        )
    return matches[0][1]


def replace_images_block(text: str, images: list[dict[str, str]]) -> str:
    """text with its top-level `images:` block replaced, everything else untouched."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("images:")]
    if len(starts) != 1:
        raise PromotionError(
            f"expected one top-level 'images:' block, found {len(starts)}"
        )
    start = end = starts[0]
    # The block ends before the first line not indented, not a list item, not blank.
    while end + 1 < len(lines) and re.match(r"^(\s+\S|- |\s*$)", lines[end + 1]):
        end += 1
    while end > start and not lines[end].strip():
        end -= 1
    block = yaml.safe_dump(
        {"images": images}, sort_keys=False, default_flow_style=False
    )
    block = re.sub(r"^- ", "  - ", block, flags=re.MULTILINE)
    block = re.sub(r"^  (\w)", r"    \1", block, flags=re.MULTILINE)
    return "".join(lines[:start]) + block + "".join(lines[end + 1 :])


def promote(dev: Path, prod: Path) -> list[str]:
    """Copy dev's image pins and model location into prod; return what changed."""
    images = read_images(dev / KUSTOMIZATION)
    storage_uri = read_storage_uri(dev / MODEL_PATCH)
    prod_kustomization = prod / KUSTOMIZATION
    prod_patch = prod / MODEL_PATCH
    before = yaml.safe_load(prod_kustomization.read_text())
    old_uri = read_storage_uri(prod_patch)

    new_text = replace_images_block(prod_kustomization.read_text(), images)
    after = yaml.safe_load(new_text)
    if {k: v for k, v in after.items() if k != "images"} != {
        k: v for k, v in before.items() if k != "images"
    }:
        raise PromotionError(
            f"{prod_kustomization}: rewriting images changed other fields"
        )
    new_patch = STORAGE_URI.sub(
        lambda m: m.group(1) + storage_uri, prod_patch.read_text()
    )

    changes = [
        f"image {image['name']}: {_pin(old.get(image['name']))} -> {_pin(image)}"
        for old in [{i["name"]: i for i in before.get("images") or []}]
        for image in images
        if old.get(image["name"]) != image
    ]
    if old_uri != storage_uri:
        changes.append(f"storageUri: {old_uri} -> {storage_uri}")
    prod_kustomization.write_text(new_text)
    prod_patch.write_text(new_patch)
    return changes


def _pin(image: dict[str, str] | None) -> str:
    if image is None:
        return "(none)"
    return image.get("digest") or image.get("newTag", "(untagged)")


def find_kustomize(explicit: str | None) -> str:
    """The kustomize to run: the given one, the pinned one in .tools/bin, or PATH's."""
    candidates = [explicit] if explicit else [".tools/bin/kustomize", "kustomize"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise PromotionError(f"kustomize not found (tried {candidates}); run `make tools`")


def render(kustomize: str, overlay: Path) -> dict[str, dict[str, Any]]:
    """Objects of a rendered overlay keyed `Kind/name`, comparable across environments.

    What differs by design is left out: namespaces, the instance label, and the hash
    suffixes of generated ConfigMaps (wherever those names are referenced).
    """
    result = subprocess.run(
        [kustomize, "build", str(overlay)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PromotionError(
            f"kustomize build {overlay} failed: {result.stderr.strip()}"
        )
    text = result.stdout
    for generated in set(
        re.findall(r"^  name: (\S+-[2456789bcdfghkmt]{10})$", text, re.MULTILINE)
    ):
        text = re.sub(
            rf"\b{re.escape(generated)}\b", HASH_SUFFIX.sub("", generated), text
        )

    objects = {}
    for obj in yaml.safe_load_all(text):
        if not obj:
            continue
        meta = obj["metadata"]
        meta.pop("namespace", None)
        meta.get("labels", {}).pop("app.kubernetes.io/instance", None)
        if obj["kind"] == "Namespace":
            meta["name"] = "(environment namespace)"
        for subject in obj.get("subjects", []):
            subject.pop("namespace", None)
        objects[f"{obj['kind']}/{meta['name']}"] = obj
    return objects


def diff_objects(dev: dict[str, dict], prod: dict[str, dict]) -> list[str]:
    """Unified diff per object that differs, dev as the old side and prod as the new."""
    out = []
    for key in sorted(dev.keys() | prod.keys()):
        old = (
            yaml.safe_dump(dev[key], sort_keys=True).splitlines() if key in dev else []
        )
        new = (
            yaml.safe_dump(prod[key], sort_keys=True).splitlines()
            if key in prod
            else []
        )
        if old == new:
            continue
        out.append(f"=== {key}")
        out += difflib.unified_diff(old, new, "dev", "prod", lineterm="", n=2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xgbflow promote",
        description="Copy dev's image pins and model location into the prod overlay.",
    )
    parser.add_argument("--dev", type=Path, default=Path("overlays/dev"))
    parser.add_argument("--prod", type=Path, default=Path("overlays/prod"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    try:
        changes = promote(args.dev, args.prod)
    except (PromotionError, OSError) as error:
        logger.error("%s", error)
        return 1
    print("\n".join(changes) if changes else "prod already has dev's images and model")
    return 0


def main_diff(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xgbflow diff-envs",
        description="Per-object diff of the rendered dev and prod overlays "
        "(namespaces, instance labels and generated name suffixes left out).",
    )
    parser.add_argument("--dev", type=Path, default=Path("overlays/dev"))
    parser.add_argument("--prod", type=Path, default=Path("overlays/prod"))
    parser.add_argument(
        "--kustomize", help="kustomize binary; default .tools/bin/kustomize"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    try:
        kustomize = find_kustomize(args.kustomize)
        lines = diff_objects(render(kustomize, args.dev), render(kustomize, args.prod))
    except PromotionError as error:
        logger.error("%s", error)
        return 1
    print("\n".join(lines) if lines else "dev and prod render the same objects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
