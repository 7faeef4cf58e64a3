"""What the images promise, and a reader for the Dockerfiles and .dockerignore.

The table below is the image contract: which extras each image installs and which
`xgbflow` commands run in it. The functions read Dockerfiles and the build context's
ignore file well enough to check them without a Docker daemon; each `find_*` function
returns human-readable problems, empty when the file is fine.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ImageSpec:
    """One image: the extras it installs, and the code its pods run.

    `commands` are the `xgbflow` subcommands its pods run; `modules` are the other
    modules its pods import on start. The entrypoint is `xgbflow`, or
    `xgbflow <command>` where the pod passes only that command's arguments.
    """

    name: str
    extras: tuple[str, ...]
    commands: tuple[str, ...]
    modules: tuple[str, ...]
    entrypoint: tuple[str, ...] = ("xgbflow",)

    @property
    def dockerfile(self) -> Path:
        return ROOT / "images" / self.name / "Dockerfile"


# A KFP component's pod runs `python3 -m kfp.dsl.executor_main`, which imports the
# component's source (`import kfp` first); each component calls one function of
# xgbflow.steps, which imports its step module when it runs.
KFP_COMPONENT = ("kfp.dsl.executor_main", "xgbflow.steps")

IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec(
        "data",
        ("data", "cloud", "pipeline"),
        ("generate",),
        (*KFP_COMPONENT, "xgbflow.generate", "xgbflow.load", "xgbflow.validate"),
    ),
    ImageSpec(
        "train",
        ("train", "cloud", "pipeline"),
        ("trial",),
        (*KFP_COMPONENT, "xgbflow.train"),
    ),
    ImageSpec(
        "export",
        ("export", "cloud", "pipeline"),
        (),
        (*KFP_COMPONENT, "xgbflow.export"),
    ),
    ImageSpec(
        "track", ("track", "cloud", "pipeline"), (), (*KFP_COMPONENT, "xgbflow.track")
    ),
    ImageSpec("serve", ("serve",), ("serve",), (), entrypoint=("xgbflow", "serve")),
    ImageSpec("submit", ("pipeline",), ("submit",), ()),
)

# Commands a person runs from a checkout with the dev extra; no image carries them.
WORKSTATION_COMMANDS = frozenset(
    {"run", "tune", "promote-params", "promote", "diff-envs"}
)

# A tag, then the digest of what it pointed to: `name:1.2.3@sha256:<64 hex>`.
PINNED_IMAGE = re.compile(r"^[\w.\-/]+:(?P<tag>[\w][\w.\-]*)@sha256:[0-9a-f]{64}$")
NUMERIC_USER = re.compile(r"^(?P<uid>\d+)(?::(?P<gid>\d+))?$")


@dataclass
class Instruction:
    """One Dockerfile instruction with its continuation lines joined."""

    keyword: str
    arguments: str
    line: int
    commented: bool
    """Whether the line right above the instruction is a comment."""


@dataclass
class Stage:
    """The instructions from one FROM up to the next."""

    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions.

    Continuation lines (a trailing backslash) are joined and comment lines inside them
    dropped, as Docker does. Instructions before the first FROM (global ARGs) are not
    kept, since nothing here checks them.
    """
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    previous_was_comment = False
    commented = False

    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            if not pending:
                previous_was_comment = True
            continue
        if not stripped and not pending:
            previous_was_comment = False
            continue

        if not pending:
            start, commented = number, previous_was_comment
        pending.append(stripped.removesuffix("\\").strip())
        if stripped.endswith("\\"):
            continue

        keyword, _, arguments = " ".join(pending).partition(" ")
        pending, previous_was_comment = [], False
        instruction = Instruction(keyword.upper(), arguments.strip(), start, commented)
        if instruction.keyword == "FROM":
            stages.append(_parse_from(instruction))
        elif stages:
            stages[-1].instructions.append(instruction)

    return stages


def _parse_from(instruction: Instruction) -> Stage:
    words = [w for w in instruction.arguments.split() if not w.startswith("--")]
    name = None
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2]
    return Stage(base=words[0] if words else "", name=name, line=instruction.line)


def copy_sources(instruction: Instruction) -> list[str] | None:
    """The build-context paths a COPY or ADD reads; None when it copies from a stage."""
    arguments = instruction.arguments
    flags = re.findall(r"--(\w+)(?:=\S+)?", arguments)
    if "from" in flags:
        return None

    arguments = re.sub(r"--\w+(?:=\S+)?\s*", "", arguments).strip()
    if arguments.startswith("["):
        words = re.findall(r'"((?:[^"\\]|\\.)*)"', arguments)
    else:
        words = arguments.split()
    return words[:-1]


def find_pinning_problems(stages: list[Stage]) -> list[str]:
    """FROM lines that name an image by a mutable or missing tag, or by no digest."""
    problems = []
    earlier_stages: set[str] = set()
    for stage in stages:
        if stage.base not in earlier_stages:
            match = PINNED_IMAGE.match(stage.base)
            if match is None:
                problems.append(
                    f"line {stage.line}: FROM {stage.base!r} is not pinned; "
                    "expected name:tag@sha256:<digest>"
                )
            elif match["tag"] == "latest":
                problems.append(
                    f"line {stage.line}: FROM {stage.base!r} uses the tag 'latest'; "
                    "expected a version tag"
                )
        if stage.name:
            earlier_stages.add(stage.name)
    return problems


def find_stage_name_problems(stages: list[Stage]) -> list[str]:
    """Stages without an `AS name`, or with a name used twice."""
    problems = []
    seen: set[str] = set()
    for stage in stages:
        if stage.name is None:
            problems.append(
                f"line {stage.line}: FROM {stage.base!r} has no stage name; "
                "expected 'FROM <image> AS <name>'"
            )
        elif stage.name in seen:
            problems.append(f"line {stage.line}: stage name {stage.name!r} is reused")
        else:
            seen.add(stage.name)
    return problems


def find_user_problems(stages: list[Stage]) -> list[str]:
    """Whether the final stage runs as a numeric, non-root user and group."""
    if not stages:
        return ["no FROM instruction"]
    final = stages[-1]
    users = [i for i in final.instructions if i.keyword == "USER"]
    if not users:
        return [f"final stage {final.name!r} sets no USER; it would run as root"]

    value = users[-1].arguments
    match = NUMERIC_USER.match(value)
    if match is None:
        return [
            f"line {users[-1].line}: USER {value!r} is not numeric; expected UID[:GID] "
            "so that runAsNonRoot can verify it"
        ]
    if int(match["uid"]) == 0 or (match["gid"] is not None and int(match["gid"]) == 0):
        return [
            f"line {users[-1].line}: USER {value!r} is root; expected a non-zero ID"
        ]
    return []


def find_uncommented_runs(stages: list[Stage]) -> list[str]:
    """RUN instructions without a comment right above them saying why."""
    return [
        f"line {i.line}: RUN has no comment above it"
        for stage in stages
        for i in stage.instructions
        if i.keyword == "RUN" and not i.commented
    ]


def installed_extras(stages: list[Stage]) -> tuple[str, ...]:
    """The `--extra` names the builder passes to `uv pip install`, in order."""
    return tuple(
        extra
        for stage in stages
        for i in stage.instructions
        if i.keyword == "RUN"
        for extra in re.findall(r"--extra[= ](\S+)", i.arguments)
    )


class DockerIgnore:
    """The exclusion rules of a .dockerignore, matched the way Docker matches them.

    Patterns are read in order and the last one that matches a path decides; a pattern
    also matches every path below a directory it matches; `!` re-includes; `**` spans
    any number of directories.
    """

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line.removeprefix("!").strip().strip("/")
            pattern = str(PurePosixPath(pattern)) if pattern else "."
            self.rules.append((re.compile(_pattern_to_regex(pattern)), include))

    def excludes(self, path: str) -> bool:
        """Whether `path`, relative to the context root, stays out of the context."""
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for regex, include in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not include
        return excluded


def _pattern_to_regex(pattern: str) -> str:
    regex, position = "", 0
    while position < len(pattern):
        if pattern.startswith("**/", position):
            regex, position = regex + "(?:.*/)?", position + 3
        elif pattern.startswith("**", position):
            regex, position = regex + ".*", position + 2
        elif pattern[position] == "*":
            regex, position = regex + "[^/]*", position + 1
        elif pattern[position] == "?":
            regex, position = regex + "[^/]", position + 1
        elif pattern[position] == "[":
            end = pattern.find("]", position + 1)
            if end == -1:
                regex, position = regex + re.escape("["), position + 1
            else:
                body = pattern[position + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                regex, position = regex + f"[{body}]", end + 1
        else:
            regex, position = regex + re.escape(pattern[position]), position + 1
    return regex


def list_tracked_files(root: Path = ROOT) -> list[str]:
    """Paths git tracks under `root`: what a fresh clone, and so CI, builds from."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"cannot list the files git tracks in {root}") from error
    return [path for path in listing.decode().split("\0") if path]


def find_copy_problems(
    stages: list[Stage], tracked: list[str], ignore: DockerIgnore
) -> list[str]:
    """COPY/ADD sources that are not in the repository or that .dockerignore drops.

    A directory source must hold tracked files, and every tracked file below it must
    reach the build context; otherwise the image silently lacks it.
    """
    problems = []
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword not in {"COPY", "ADD"}:
                continue
            for source in copy_sources(instruction) or []:
                problems += _check_source(source, instruction.line, tracked, ignore)
    return problems


def _check_source(
    source: str, line: int, tracked: list[str], ignore: DockerIgnore
) -> list[str]:
    if "://" in source:
        return [f"line {line}: {source!r} is fetched at build time; copy it from git"]

    prefix = str(PurePosixPath(source.lstrip("/"))).removeprefix("./")
    if any(char in prefix for char in "*?["):
        regex = re.compile(_pattern_to_regex(prefix))
        files = [path for path in tracked if regex.fullmatch(path)]
    else:
        files = [
            path for path in tracked if path == prefix or path.startswith(prefix + "/")
        ]
    if not files:
        return [f"line {line}: {source!r} matches no file tracked in the repository"]

    excluded = [path for path in files if ignore.excludes(path)]
    if excluded:
        shown = ", ".join(excluded[:3])
        return [
            f"line {line}: {source!r} copies {shown} (and {len(excluded)} in all), "
            "which .dockerignore keeps out of the build context"
        ]
    return []
