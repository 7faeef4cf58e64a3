"""The `xgbflow` command: one entry point, one module per subcommand.

Subcommands are imported only when they run, so an image that installs a single extra
(the model server, say) never imports the libraries of the others.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("xgbflow.local_run", "run the whole training pipeline on this machine"),
    "generate": ("xgbflow.generate", "write a synthetic dataset and its data card"),
    "trial": ("xgbflow.tune.trial", "train once with given hyperparameters (Katib)"),
    "tune": ("xgbflow.tune.local", "run the Katib Experiment on this machine"),
    "promote-params": (
        "xgbflow.tune.promote",
        "write the best tuned parameters into an overlay",
    ),
    "serve": ("xgbflow.serve.server", "serve a model directory over KServe V1/V2"),
    "submit": ("xgbflow.submit", "submit the compiled pipeline to the KFP API"),
    "promote": ("xgbflow.promote", "copy dev's image tags and model into prod"),
    "diff-envs": (
        "xgbflow.promote",
        "show the rendered dev and prod overlays side by side",
    ),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: xgbflow <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0 if args else 2

    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"xgbflow: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2

    module = importlib.import_module(COMMANDS[name][0])
    if name == "diff-envs":
        return module.main_diff(rest)
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
