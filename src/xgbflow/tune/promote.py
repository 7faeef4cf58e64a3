"""`xgbflow promote-params`: the best tuned parameters into an overlay's parameters.

    xgbflow promote-params runs/tuning/<run>/best-params.yaml overlays/prod

reads the best-parameters file a tuning run wrote and sets those keys in
overlays/<env>/pipeline-params.yaml, the flat mapping the overlay's configMapGenerator
turns into the scheduled run's parameters. Only the searched hyperparameters may be
promoted, each checked against its pipeline type and the training bounds. A key already
in the file has its value replaced on its own line (comments around it stay); a new
key is appended. Every other line is left byte for byte, the result is re-read to prove
that exactly the intended keys changed, and the diff is printed, so the change is an
ordinary reviewable pull request.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from xgbflow.config import TrainParams, coerce
from xgbflow.errors import XgbflowError

logger = logging.getLogger(__name__)

PARAMS_FILE = "pipeline-params.yaml"
#: The pipeline parameters a tuning run may set, with their pipeline types.
TUNED: dict[str, type] = {
    "max_depth": int,
    "learning_rate": float,
    "n_estimators": int,
    "min_child_weight": int,
    "subsample": float,
}


class PromotionError(XgbflowError):
    """The parameters or the overlay's parameter file cannot be promoted as they are."""


def read_best_params(path: Path) -> dict[str, int | float]:
    """The tuned values of a best-parameters file, typed and checked."""
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PromotionError(f"{path} cannot be read as YAML: {exc}") from exc
    if not isinstance(content, dict) or not content:
        raise PromotionError(
            f"{path} holds {type(content).__name__}; expected a non-empty mapping of "
            f"parameter names to values, such as a tuning run's best-params.yaml"
        )
    unknown = sorted(set(content) - set(TUNED))
    if unknown:
        raise PromotionError(
            f"{path}: {unknown} are not tuned parameters; expected only keys from "
            f"{list(TUNED)}"
        )
    try:
        values = {name: coerce(name, content[name], TUNED[name]) for name in TUNED}
    except KeyError as exc:
        raise PromotionError(
            f"{path} has no {exc.args[0]!r}; expected every tuned parameter "
            f"{list(TUNED)}"
        ) from exc
    TrainParams.from_mapping(values)
    return {name: TUNED[name](value) for name, value in values.items()}


def yaml_scalar(value: int | float) -> str:
    """A value as PyYAML writes and reads it back (1e-05 becomes 1.0e-05, a float)."""
    return yaml.safe_dump(value).splitlines()[0]


def update_params_text(text: str, values: dict[str, int | float]) -> str:
    """`text` with each key's value set: replaced on its line, or appended."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if yaml.safe_load(text) in (None, {}):
        # An empty mapping is written `{}`; the keys go in as a block mapping.
        lines = [line for line in lines if line.strip() != "{}"]
    elif any(line.lstrip().startswith("{") for line in lines):
        raise PromotionError(
            "the parameter file is a flow mapping; expected one `key: value` per line"
        )

    for key, value in values.items():
        pattern = re.compile(rf"^{re.escape(key)}\s*:[^#\n]*(#.*)?$")
        found = [i for i, line in enumerate(lines) if pattern.match(line.rstrip("\n"))]
        if len(found) > 1:
            raise PromotionError(f"{key!r} is set {len(found)} times; expected once")
        if found:
            comment = pattern.match(lines[found[0]].rstrip("\n")).group(1)
            suffix = f"  {comment}" if comment else ""
            lines[found[0]] = f"{key}: {yaml_scalar(value)}{suffix}\n"
        else:
            lines.append(f"{key}: {yaml_scalar(value)}\n")
    return "".join(lines)


def promote_params(best_file: Path, target: Path) -> tuple[Path, str, str]:
    """Write the best values into the overlay's parameter file.

    Returns the file written, its old text and its new text.
    """
    path = target / PARAMS_FILE if target.is_dir() else target
    values = read_best_params(best_file)
    try:
        old = path.read_text()
    except OSError as exc:
        raise PromotionError(
            f"{path} cannot be read: {exc}; expected an overlay directory holding "
            f"{PARAMS_FILE}, such as overlays/prod"
        ) from exc
    before = yaml.safe_load(old) or {}
    if not isinstance(before, dict):
        raise PromotionError(
            f"{path} holds {type(before).__name__}; expected a mapping"
        )

    new = update_params_text(old, values)
    after = yaml.safe_load(new)
    if after != before | values or _types(after) != _types(before | values):
        raise PromotionError(
            f"writing {path} would not give exactly the promoted values; left unchanged"
        )
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(new)
    partial.replace(path)
    return path, old, new


def _types(mapping: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in mapping.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xgbflow promote-params",
        description="Write a tuning run's best parameters into an overlay.",
    )
    parser.add_argument("best_params", type=Path, help="a run's best-params.yaml")
    parser.add_argument(
        "overlay", type=Path, help=f"overlay directory (its {PARAMS_FILE}) or the file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    try:
        path, old, new = promote_params(args.best_params, args.overlay)
    except XgbflowError as exc:
        print(f"xgbflow promote-params: {exc}", file=sys.stderr)
        return 2
    diff = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (current)",
        tofile=f"{path} (promoted)",
    )
    print("".join(diff) or f"{path} already holds these values")
    return 0
