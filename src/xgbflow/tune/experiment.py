"""Read a rendered Katib Experiment and check it before any trial starts.

The Experiment manifest is the single definition of the search; this module turns the
object `kustomize build` renders into an `Experiment` the local runner can execute, and
refuses, with every problem listed, anything it could not run the way Katib would:

- the budget: maxTrialCount > 0, 0 < parallelTrialCount <= maxTrialCount,
  0 <= maxFailedTrialCount <= maxTrialCount;
- the objective: its type, metric names and metric strategies (defaulted as Katib's
  webhook does), and that the trial program prints every metric named and that the
  collector's filters read it;
- the algorithm: `bayesianoptimization` or `random`, each with Katib's settings and
  their ranges; Bayesian optimisation may not start more initial points than the
  budget holds, and since Katib v0.19.0 samples every double log-uniformly under it,
  a double's lower bound must be positive;
- the parameters: int or double, min below max, integral bounds for ints;
- early stopping: `medianstop` with its two settings, or none;
- the trial template: a primary container whose command uses every trial parameter,
  each trial parameter referring to a parameter of the search space;
- the metrics collector: StdOut, with filters that compile and capture two groups.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xgbflow.errors import XgbflowError
from xgbflow.tune import collector, trial
from xgbflow.tune.stopping import MedianStopSettings

logger = logging.getLogger(__name__)

API_VERSION = "kubeflow.org/v1beta1"
DEFAULT_PARALLEL_TRIAL_COUNT = 3
PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^}]*)\}")
KUSTOMIZE = Path(".tools/bin/kustomize")
#: Any valid time serves to check that the filters read the trial's lines.
SAMPLE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

#: Each supported algorithm's settings: (parse, check, expectation, default).
_BAYESIAN = {
    "base_estimator": (
        str,
        lambda v: v in {"GP", "RF", "ET", "GBRT"},
        "GP, RF, ET or GBRT",
        "GP",
    ),
    "n_initial_points": (int, lambda v: v >= 0, "an integer >= 0", 10),
    "acq_func": (
        str,
        lambda v: v in {"gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"},
        "gp_hedge, LCB, EI, PI, EIps or PIps",
        "gp_hedge",
    ),
    "acq_optimizer": (
        str,
        lambda v: v in {"auto", "sampling", "lbfgs"},
        "auto, sampling or lbfgs",
        "auto",
    ),
    "random_state": (int, lambda v: v >= 0, "an integer >= 0", None),
}
_RANDOM = {"random_state": (int, lambda v: v >= 0, "an integer >= 0", None)}
ALGORITHMS = {"bayesianoptimization": _BAYESIAN, "random": _RANDOM}
_MEDIANSTOP = {
    "min_trials_required": (int, lambda v: v > 0, "an integer > 0", None),
    "start_step": (int, lambda v: v >= 1, "an integer >= 1", None),
}
DISTRIBUTIONS = {"uniform", "logUniform", "normal", "logNormal"}


class ExperimentError(XgbflowError):
    """The Experiment cannot be run locally; `problems` lists every reason."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Experiment {name!r} cannot run:\n{listing}")


@dataclass(frozen=True)
class Parameter:
    """One dimension of the search space; bounds are inclusive."""

    name: str
    kind: str
    low: float
    high: float
    distribution: str = "uniform"
    step: float | None = None

    def format_value(self, value: float) -> str:
        """The value as Katib's suggestion service writes it into the template."""
        return str(int(value)) if self.kind == "int" else str(float(value))


@dataclass(frozen=True)
class Objective:
    """What the search optimises; strategies map each metric to min, max or latest."""

    maximize: bool
    metric: str
    additional: tuple[str, ...] = ()
    goal: float | None = None
    strategies: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.metric, *self.additional)

    def is_better(self, value: float, than: float) -> bool:
        return value > than if self.maximize else value < than


@dataclass(frozen=True)
class Algorithm:
    """A search algorithm by Katib name, with every setting typed and defaulted."""

    name: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class TrialTemplate:
    """The primary container's command and what its placeholders refer to."""

    command: tuple[str, ...]
    references: Mapping[str, str]

    def command_for(self, values: Mapping[str, str]) -> list[str]:
        """The command with each `${trialParameters.x}` replaced by its value."""
        by_name = {name: values[ref] for name, ref in self.references.items()}
        return [
            PLACEHOLDER.sub(lambda match: by_name[match.group(1)], part)
            for part in self.command
        ]


@dataclass(frozen=True)
class Experiment:
    """A checked Experiment: everything the local runner needs, nothing else."""

    name: str
    parameters: tuple[Parameter, ...]
    objective: Objective
    algorithm: Algorithm
    early_stopping: MedianStopSettings | None
    max_trial_count: int
    parallel_trial_count: int
    max_failed_trial_count: int | None
    filters: tuple[str, ...]
    template: TrialTemplate


class _Checker:
    """Collects problems, so that one run reports all of them at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def integer(self, where: str, value: Any, *, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"{value!r} is not an integer; expected one >= {minimum}")
            return None
        if value < minimum:
            self.fail(where, f"{value} is below {minimum}; expected one >= {minimum}")
            return None
        return value

    def settings(
        self, where: str, owner: str, items: Any, spec: dict[str, tuple]
    ) -> dict[str, Any]:
        """Name/value settings parsed by `spec`; unknown names and bad values fail."""
        parsed = {name: default for name, (_, _, _, default) in spec.items()}
        for index, item in enumerate(items or []):
            name, text = (item or {}).get("name"), (item or {}).get("value")
            place = f"{where}[{index}]"
            if name not in spec:
                self.fail(
                    place,
                    f"unknown setting {name!r} for {owner}; expected one of "
                    f"{sorted(spec)}",
                )
                continue
            convert, check, expected, _ = spec[name]
            try:
                value = convert(str(text))
            except ValueError:
                self.fail(place, f"{name}={text!r} is not valid; expected {expected}")
                continue
            if not check(value):
                self.fail(
                    place, f"{name}={text!r} is out of range; expected {expected}"
                )
                continue
            parsed[name] = value
        return parsed


def _number(text: Any) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _objective(spec: dict, check: _Checker) -> Objective | None:
    where = "spec.objective"
    objective = spec.get("objective") or {}
    kind = objective.get("type")
    metric = objective.get("objectiveMetricName")
    additional = tuple(objective.get("additionalMetricNames") or ())
    if kind not in {"maximize", "minimize"}:
        check.fail(f"{where}.type", f"{kind!r} is not maximize or minimize")
    if not metric:
        check.fail(f"{where}.objectiveMetricName", "is missing; expected a metric name")
    if metric in additional:
        check.fail(
            f"{where}.additionalMetricNames",
            f"contains the objective {metric!r}; expected only other metrics",
        )
    goal = objective.get("goal")
    if goal is not None and _number(goal) is None:
        check.fail(f"{where}.goal", f"{goal!r} is not a number")

    # Katib's webhook defaults: the objective's extreme, and the same for the others.
    extreme = "max" if kind == "maximize" else "min"
    strategies = {name: extreme for name in (metric, *additional) if name}
    for index, item in enumerate(objective.get("metricStrategies") or []):
        name, value = item.get("name"), item.get("value")
        place = f"{where}.metricStrategies[{index}]"
        if name not in strategies:
            check.fail(
                place, f"{name!r} is not one of the metrics {sorted(strategies)}"
            )
        elif value not in collector.STRATEGIES:
            check.fail(place, f"{name}: {value!r} is not min, max or latest")
        else:
            strategies[name] = value
    if kind not in {"maximize", "minimize"} or not metric:
        return None
    return Objective(
        kind == "maximize",
        metric,
        additional,
        None if goal is None else _number(goal),
        strategies,
    )


def _parameters(spec: dict, algorithm: str | None, check: _Checker) -> list[Parameter]:
    parameters = []
    items = spec.get("parameters") or []
    if not items:
        check.fail("spec.parameters", "is empty; expected at least one parameter")
    names = [item.get("name") for item in items]
    for index, item in enumerate(items):
        where = f"spec.parameters[{index}]"
        name, kind = item.get("name"), item.get("parameterType")
        space = item.get("feasibleSpace") or {}
        if not name or names.count(name) > 1:
            check.fail(f"{where}.name", f"{name!r} is missing or repeated")
            continue
        if kind not in {"int", "double"}:
            check.fail(
                f"{where}.parameterType",
                f"{name}: {kind!r} is not supported locally; expected int or double",
            )
            continue
        low, high = _number(space.get("min")), _number(space.get("max"))
        if low is None or high is None:
            check.fail(
                f"{where}.feasibleSpace",
                f"{name}: min {space.get('min')!r} and max {space.get('max')!r} "
                "must both be numbers",
            )
            continue
        if kind == "int" and not (low.is_integer() and high.is_integer()):
            check.fail(
                f"{where}.feasibleSpace",
                f"{name}: min {space['min']!r} and max {space['max']!r} must be "
                "whole numbers for an int parameter",
            )
            continue
        if low >= high:
            check.fail(
                f"{where}.feasibleSpace",
                f"{name}: min {space['min']} is not below max {space['max']}; "
                "expected min < max",
            )
            continue
        distribution = space.get("distribution") or "uniform"
        if distribution not in DISTRIBUTIONS:
            check.fail(
                f"{where}.feasibleSpace.distribution",
                f"{name}: {distribution!r} is not one of {sorted(DISTRIBUTIONS)}",
            )
            continue
        if algorithm == "bayesianoptimization" and kind == "double" and low <= 0:
            check.fail(
                f"{where}.feasibleSpace.min",
                f"{name}: min {space['min']} is not positive; Katib's Bayesian "
                "optimisation searches every double on a log-uniform scale, which "
                "needs min > 0",
            )
            continue
        if algorithm == "random":
            if distribution not in {"uniform", "logUniform"}:
                check.fail(
                    f"{where}.feasibleSpace.distribution",
                    f"{name}: {distribution!r} is not supported by local random "
                    "search; expected uniform or logUniform",
                )
                continue
            if distribution == "logUniform" and low <= 0:
                check.fail(
                    f"{where}.feasibleSpace.min",
                    f"{name}: min {space['min']} is not positive; a logUniform "
                    "distribution needs min > 0",
                )
                continue
        bayesian = algorithm == "bayesianoptimization"
        if bayesian and kind == "double" and distribution != "logUniform":
            logger.info(
                "%s: Katib v0.19.0's Bayesian optimisation samples doubles "
                "log-uniformly; the distribution %r is not used",
                name,
                distribution,
            )
        step = _number(space.get("step")) if space.get("step") else None
        parameters.append(Parameter(name, kind, low, high, distribution, step))
    return parameters


def _algorithm(spec: dict, max_trials: int | None, check: _Checker) -> Algorithm | None:
    where = "spec.algorithm"
    algorithm = spec.get("algorithm") or {}
    name = algorithm.get("algorithmName")
    if name not in ALGORITHMS:
        check.fail(
            f"{where}.algorithmName",
            f"{name!r} is not supported by the local runner; expected one of "
            f"{sorted(ALGORITHMS)}",
        )
        return None
    settings = check.settings(
        f"{where}.algorithmSettings",
        name,
        algorithm.get("algorithmSettings"),
        ALGORITHMS[name],
    )
    initial = settings.get("n_initial_points")
    if name == "bayesianoptimization" and max_trials and initial > max_trials:
        check.fail(
            f"{where}.algorithmSettings",
            f"n_initial_points={initial} is more than maxTrialCount={max_trials}; "
            "the budget would end before the model guides a single trial",
        )
    return Algorithm(name, settings)


def _early_stopping(spec: dict, check: _Checker) -> MedianStopSettings | None:
    stopping = spec.get("earlyStopping")
    if not stopping:
        return None
    name = stopping.get("algorithmName")
    if name != "medianstop":
        check.fail(
            "spec.earlyStopping.algorithmName",
            f"{name!r} is not supported by the local runner; expected medianstop",
        )
        return None
    settings = check.settings(
        "spec.earlyStopping.algorithmSettings",
        name,
        stopping.get("algorithmSettings"),
        _MEDIANSTOP,
    )
    defaults = MedianStopSettings()
    return MedianStopSettings(
        settings["min_trials_required"] or defaults.min_trials_required,
        settings["start_step"] or defaults.start_step,
    )


def _filters(spec: dict, check: _Checker) -> tuple[str, ...] | None:
    """The collector's filters; None when one of them is unusable."""
    where = "spec.metricsCollectorSpec"
    collector_spec = spec.get("metricsCollectorSpec") or {}
    kind = (collector_spec.get("collector") or {}).get("kind", "StdOut")
    if kind != "StdOut":
        check.fail(
            f"{where}.collector.kind",
            f"{kind!r} is not supported by the local runner; expected StdOut",
        )
    source = collector_spec.get("source") or {}
    filters = tuple((source.get("filter") or {}).get("metricsFormat") or ())
    usable = True
    for index, text in enumerate(filters):
        place = f"{where}.source.filter.metricsFormat[{index}]"
        try:
            pattern = re.compile(text, re.ASCII)
        except re.error as exc:
            check.fail(place, f"{text!r} does not compile: {exc}")
            usable = False
            continue
        if pattern.groups < 2:
            check.fail(place, f"{text!r} has {pattern.groups} groups; expected 2")
            usable = False
    return filters if usable else None


def _primary_command(template: dict, check: _Checker) -> tuple[str, ...] | None:
    where = "spec.trialTemplate"
    if "trialSpec" not in template:
        check.fail(
            where, "has no trialSpec; the local runner needs the template inline"
        )
        return None
    primary = template.get("primaryContainerName")
    pod = (((template["trialSpec"] or {}).get("spec") or {}).get("template") or {}).get(
        "spec"
    ) or {}
    containers = [c for c in pod.get("containers") or [] if c.get("name") == primary]
    if len(containers) != 1:
        check.fail(
            f"{where}.primaryContainerName",
            f"{primary!r} names no container of the trial Job's pod template",
        )
        return None
    command = [*containers[0].get("command", []), *containers[0].get("args", [])]
    if not command:
        check.fail(where, f"container {primary!r} has no command or args to run")
        return None
    return tuple(str(part) for part in command)


def _template(spec: dict, check: _Checker) -> TrialTemplate | None:
    where = "spec.trialTemplate"
    template = spec.get("trialTemplate") or {}
    command = _primary_command(template, check)
    # Every declared parameter, valid or not: a bad one has its own problem already.
    names = {item.get("name") for item in spec.get("parameters") or []} - {None}
    references: dict[str, str] = {}
    for index, item in enumerate(template.get("trialParameters") or []):
        name, reference = item.get("name"), item.get("reference")
        place = f"{where}.trialParameters[{index}]"
        if not name or not reference:
            check.fail(place, "needs both a name and a reference")
        elif name in references:
            check.fail(f"{place}.name", f"{name!r} is repeated")
        elif reference in references.values():
            check.fail(f"{place}.reference", f"{reference!r} is referenced twice")
        elif reference not in names:
            check.fail(
                f"{place}.reference",
                f"trial parameter {name!r} references {reference!r}, which is not a "
                f"parameter of the search; expected one of {sorted(names)}",
            )
        else:
            references[name] = reference
    if command is None:
        return None

    used = {m.group(1) for part in command for m in PLACEHOLDER.finditer(part)}
    declared = {item.get("name") for item in template.get("trialParameters") or []}
    for name in sorted(used - declared):
        check.fail(
            f"{where}.trialSpec",
            f"the command uses ${{trialParameters.{name}}}, which no trial "
            "parameter declares",
        )
    for name in sorted(declared - used - {None}):
        check.fail(
            f"{where}.trialParameters",
            f"trial parameter {name!r} is not used in the primary container's "
            "command, the only thing the local runner passes on",
        )
    return TrialTemplate(command, references)


def check_printed_metrics(
    command: tuple[str, ...], objective: Objective, filters: tuple[str, ...]
) -> list[str]:
    """Problems with the metric names, for a command that is `xgbflow trial`.

    Every metric the Experiment names must be one the trial prints, and the filters
    must read it from a line formatted exactly as the trial formats it.
    """
    if list(command[:2]) != ["xgbflow", "trial"]:
        logger.warning(
            "the trial command is %r, not `xgbflow trial`; the metric names cannot be "
            "checked before the first trial runs",
            " ".join(command[:2]),
        )
        return []
    problems = []
    unread = []
    patterns = collector.compile_filters(filters)
    for name in objective.names:
        if name not in trial.METRIC_NAMES:
            problems.append(
                f"spec.objective: metric {name!r} is never printed by `xgbflow trial`; "
                f"it prints {list(trial.METRIC_NAMES)}"
            )
            continue
        printed = trial.format_metric(name, 0.5)
        line = f"{trial.format_timestamp(SAMPLE_TIME)} {printed}"
        found = collector.parse_line(line, [name], patterns)
        if [(log.name, log.value) for log in found] != [(name, printed.split("=")[1])]:
            unread.append(printed)
    if unread:
        problems.append(
            "spec.metricsCollectorSpec.source.filter: the filters "
            f"{list(filters)} do not read the trial's lines such as {unread[0]!r}; "
            f"unread: {', '.join(p.split('=')[0] for p in unread)}"
        )
    return problems


def parse_experiment(document: Mapping[str, Any]) -> Experiment:
    """The Experiment a rendered object describes; ExperimentError lists problems."""
    metadata = document.get("metadata") or {}
    name = metadata.get("name") or "<unnamed>"
    if (
        document.get("kind") != "Experiment"
        or document.get("apiVersion") != API_VERSION
    ):
        raise ExperimentError(
            name,
            [
                f"kind {document.get('kind')!r}, apiVersion "
                f"{document.get('apiVersion')!r}; expected Experiment, {API_VERSION}"
            ],
        )
    spec = document.get("spec") or {}
    check = _Checker()

    max_trials = check.integer(
        "spec.maxTrialCount", spec.get("maxTrialCount"), minimum=1
    )
    parallel = check.integer(
        "spec.parallelTrialCount",
        spec.get("parallelTrialCount", DEFAULT_PARALLEL_TRIAL_COUNT),
        minimum=1,
    )
    max_failed = spec.get("maxFailedTrialCount")
    if max_failed is not None:
        max_failed = check.integer("spec.maxFailedTrialCount", max_failed, minimum=0)
    for field_name, value in (
        ("parallelTrialCount", parallel),
        ("maxFailedTrialCount", max_failed),
    ):
        if value is not None and max_trials is not None and value > max_trials:
            check.fail(
                f"spec.{field_name}",
                f"{value} is above maxTrialCount={max_trials}; expected at most that",
            )

    objective = _objective(spec, check)
    algorithm = _algorithm(spec, max_trials, check)
    parameters = _parameters(spec, algorithm.name if algorithm else None, check)
    stopping = _early_stopping(spec, check)
    filters = _filters(spec, check)
    template = _template(spec, check)
    if template is not None and objective is not None:
        check.problems.extend(
            check_printed_metrics(template.command, objective, filters)
        )

    if check.problems:
        raise ExperimentError(name, check.problems)
    return Experiment(
        name=name,
        parameters=tuple(parameters),
        objective=objective,
        algorithm=algorithm,
        early_stopping=stopping,
        max_trial_count=max_trials,
        parallel_trial_count=parallel,
        max_failed_trial_count=max_failed,
        filters=filters,
        template=template,
    )


def find_kustomize(explicit: str = "") -> str:
    """The kustomize binary: the one given, the pinned one, else one on PATH."""
    if explicit:
        return explicit
    if KUSTOMIZE.is_file():
        return str(KUSTOMIZE)
    found = shutil.which("kustomize")
    if found is None:
        raise XgbflowError(
            f"kustomize is neither at {KUSTOMIZE} nor on PATH; run `make tools` from "
            "the repository root, or pass --kustomize"
        )
    return found


def render_objects(source: Path, kustomize: str = "") -> list[dict]:
    """The objects of a kustomization directory (rendered) or of a YAML file."""
    if source.is_dir():
        result = subprocess.run(
            [find_kustomize(kustomize), "build", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise XgbflowError(
                f"kustomize build {source} failed:\n{result.stderr.strip()}"
            )
        text = result.stdout
    elif source.is_file():
        text = source.read_text()
    else:
        raise XgbflowError(
            f"{source} is neither an overlay directory nor a YAML file; expected, "
            "for example, overlays/dev"
        )
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as exc:
        raise XgbflowError(f"{source} is not valid YAML: {exc}") from exc


def find_experiment(objects: list[dict], source: Path) -> dict:
    """The one Experiment among the rendered objects."""
    found = [obj for obj in objects if obj.get("kind") == "Experiment"]
    if len(found) != 1:
        raise XgbflowError(
            f"{source} renders {len(found)} Experiment objects; expected exactly one"
        )
    return found[0]


def load_experiment(source: Path, kustomize: str = "") -> Experiment:
    """Render `source` (an overlay, or a YAML file) and check its Experiment."""
    return parse_experiment(find_experiment(render_objects(source, kustomize), source))
