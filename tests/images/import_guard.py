"""Import modules as an image would, with only that image's distributions importable.

The dev environment holds every extra at once, so an import that works here may fail in
an image that installs one extra. Run as a script, this module computes which installed
distributions `pip install xgbflow[<extras>]` would bring in, then blocks every module
whose file belongs to any other distribution, and imports the named modules:

    python import_guard.py --extras serve xgbflow.serve.server

It prints a JSON object mapping each module that failed to why (the traceback of the
failed import), and exits 0 when that is empty, 1 otherwise. Only import-time
dependencies are seen; an import inside a function body is checked when that function
runs, not here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import traceback
from collections.abc import Iterable, Sequence
from importlib import metadata

from packaging.requirements import Requirement

PROJECT = "xgbflow"
CODE_SUFFIXES = frozenset({".py", ".so", ".pyd"})


def canonical_name(name: str) -> str:
    """A distribution name normalised as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_distributions(project: str, extras: Iterable[str]) -> set[str]:
    """Canonical names of the installed distributions `project[extras]` depends on.

    Walks the requirement metadata of installed distributions, following each
    requirement's extras and evaluating markers for this interpreter, as an installer
    would. The project itself is included.
    """
    expanded: dict[str, set[str]] = {}
    pending = [Requirement(f"{project}[{','.join(extras)}]")]
    while pending:
        requirement = pending.pop()
        name = canonical_name(requirement.name)
        done = expanded.get(name)
        new_extras = set(requirement.extras) - (done or set())
        if done is not None and not new_extras:
            continue

        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise LookupError(
                f"{requirement} is required by xgbflow[{','.join(extras)}] but is not "
                "installed; run `make venv` to install the lock"
            ) from error
        expanded[name] = (done or set()) | new_extras

        for raw in distribution.requires or []:
            dependency = Requirement(raw)
            if _applies(dependency, first_visit=done is None, extras=new_extras):
                pending.append(dependency)
    return set(expanded)


def _applies(dependency: Requirement, first_visit: bool, extras: set[str]) -> bool:
    if dependency.marker is None:
        return first_visit
    if first_visit and dependency.marker.evaluate({"extra": ""}):
        return True
    return any(dependency.marker.evaluate({"extra": extra}) for extra in extras)


def map_blocked_files(allowed: set[str]) -> dict[str, str]:
    """Code files that only distributions outside `allowed` install, with their owners.

    A file that an allowed distribution installs too (several mlflow distributions ship
    the same package, for example) stays importable.
    """
    owners: dict[str, set[str]] = {}
    for distribution in metadata.distributions():
        name = canonical_name(distribution.metadata["Name"])
        for file in distribution.files or []:
            if file.suffix in CODE_SUFFIXES:
                path = os.path.normpath(distribution.locate_file(file))
                owners.setdefault(path, set()).add(name)
    return {
        path: ", ".join(sorted(names))
        for path, names in owners.items()
        if not names & allowed
    }


class ImagePathFinder(importlib.abc.MetaPathFinder):
    """The path-based finder, blind to the files and metadata of blocked distributions.

    It stands in for PathFinder on sys.meta_path, so a blocked module is absent exactly
    as in the image: `import` raises ModuleNotFoundError, `importlib.util.find_spec`
    returns None (libraries probe optional dependencies that way) and
    `importlib.metadata.version` raises PackageNotFoundError.
    """

    def __init__(self, blocked: dict[str, str], hidden: set[str]) -> None:
        self.blocked = blocked
        self.hidden = hidden
        """Canonical names of the distributions the image does not install."""
        self.refused: dict[str, str] = {}
        """Modules looked up and hidden, with the distribution each belongs to."""

    def find_spec(self, fullname, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        origin = spec.origin if spec is not None else None
        owner = self.blocked.get(os.path.normpath(origin)) if origin else None
        if owner is not None:
            self.refused[fullname] = owner
            return None
        return spec

    def find_distributions(self, context=None):
        """The installed distributions importlib.metadata lists, less hidden ones."""
        context = context or metadata.DistributionFinder.Context()
        for distribution in importlib.machinery.PathFinder.find_distributions(context):
            if canonical_name(distribution.metadata["Name"]) not in self.hidden:
                yield distribution

    def invalidate_caches(self) -> None:
        importlib.machinery.PathFinder.invalidate_caches()


def import_as_image(modules: Sequence[str], extras: Sequence[str]) -> dict[str, str]:
    """Import each of `modules` with only `xgbflow[extras]` importable.

    Returns the problems by module, empty when all is well: the traceback of an import
    that failed (with the hidden modules it looked up), or the modules of blocked
    distributions that reached sys.modules other than through the path finder. Modules
    are imported in order in one interpreter; a failed import leaves nothing behind in
    sys.modules, so it cannot hide a failure from the modules after it.
    """
    allowed = resolve_distributions(PROJECT, extras)
    installed = {canonical_name(d.metadata["Name"]) for d in metadata.distributions()}
    finder = ImagePathFinder(map_blocked_files(allowed), installed - allowed)
    position = sys.meta_path.index(importlib.machinery.PathFinder)
    sys.meta_path[position] = finder

    problems = {}
    for module in modules:
        already_loaded = set(sys.modules)
        finder.refused.clear()
        try:
            importlib.import_module(module)
        except ImportError:
            hidden = ", ".join(
                f"{name} ({owner})" for name, owner in finder.refused.items()
            )
            problems[module] = (
                f"{traceback.format_exc(limit=-12)}"
                f"hidden from xgbflow[{','.join(extras)}]: {hidden or 'nothing'}"
            )
            continue

        leaked = sorted(
            f"{name} (from {finder.blocked[os.path.normpath(file)]})"
            for name, loaded in list(sys.modules.items())
            if name not in already_loaded
            and (file := getattr(loaded, "__file__", None))
            and os.path.normpath(file) in finder.blocked
        )
        if leaked:
            problems[module] = "imported outside the image: " + ", ".join(leaked)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--extras", required=True, help="comma-separated extras the image installs"
    )
    parser.add_argument("modules", nargs="+", help="modules to import, in order")
    args = parser.parse_args(argv)

    extras = [extra for extra in args.extras.split(",") if extra]
    problems = import_as_image(args.modules, extras)
    print(json.dumps(problems, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
