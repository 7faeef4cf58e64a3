"""Submit the compiled training pipeline to the KFP API as one run.

This is what the scheduled-training CronJob runs. It reads the compiled pipeline and
the environment's parameters (overlays/<env>/pipeline-params.yaml, from a ConfigMap),
checks each parameter against the pipeline's declared inputs, authenticates with the
pod's projected ServiceAccount token (audience pipelines.kubeflow.org), and creates the
run in the named experiment of the pod's namespace.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"

# KFP's parameter types and the Python values a YAML file may give for each.
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
}


class SubmitError(RuntimeError):
    """The run could not be submitted: bad input files or a refused API call."""


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SubmitError(f"{what} {path}: cannot read it as YAML: {error}") from error


def load_pipeline(path: Path) -> dict[str, Any]:
    """The compiled pipeline spec (KFP IR YAML) as a mapping."""
    spec = _read_yaml(path, "pipeline")
    if not isinstance(spec, dict) or "root" not in spec:
        raise SubmitError(
            f"pipeline {path}: expected a compiled KFP pipeline with a 'root' section"
        )
    return spec


def load_parameters(path: Path) -> dict[str, Any]:
    """The flat name-to-value mapping of an overlay's pipeline-params.yaml."""
    params = _read_yaml(path, "parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise SubmitError(
            f"parameters {path}: expected a mapping of parameter names to values, "
            f"got {type(params).__name__}"
        )
    nested = [name for name, value in params.items() if isinstance(value, dict | list)]
    if nested:
        raise SubmitError(
            f"parameters {path}: {nested} must be scalars, not nested values"
        )
    return params


def check_parameters(pipeline: dict[str, Any], params: dict[str, Any]) -> None:
    """Fail unless every parameter is an input of the pipeline and has its type."""
    declared = pipeline["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, value in params.items():
        if name not in declared:
            raise SubmitError(
                f"parameter {name!r} is not an input of the pipeline; "
                f"expected one of {sorted(declared)}"
            )
        kind = declared[name].get("parameterType", "STRING")
        accepted = PARAMETER_TYPES.get(kind, (object,))
        # YAML true/false are bools, which Python also counts as ints.
        is_bool = isinstance(value, bool)
        if not isinstance(value, accepted) or (is_bool and kind != "BOOLEAN"):
            raise SubmitError(
                f"parameter {name!r} = {value!r}: expected a {kind} value, "
                f"got {type(value).__name__}"
            )


def submit_run(
    *,
    host: str,
    pipeline_path: Path,
    params: dict[str, Any],
    namespace: str,
    experiment: str,
    token_path: Path,
    run_name: str,
) -> str:
    """Create one run of the pipeline with params and return its run ID."""
    # Imported here: kfp is heavy and only this command needs it.
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if not token_path.is_file() or not token_path.read_text().strip():
        raise SubmitError(
            f"token {token_path}: missing or empty; expected the projected "
            "ServiceAccount token with audience pipelines.kubeflow.org"
        )
    credentials = ServiceAccountTokenVolumeCredentials(path=str(token_path))
    with warnings.catch_warnings():
        # The client warns on every construction that it needs KFP 2.0 or later.
        warnings.filterwarnings(
            "ignore", message="This client only works", category=FutureWarning
        )
        client = kfp.Client(host=host, namespace=namespace, credentials=credentials)

    try:
        result = client.create_run_from_pipeline_package(
            pipeline_file=str(pipeline_path),
            arguments=params,
            run_name=run_name,
            experiment_name=experiment,
            namespace=namespace,
        )
    except ApiException as error:
        raise SubmitError(
            f"KFP API at {host} refused the run: HTTP {error.status} {error.reason}"
        ) from error
    except HTTPError as error:
        raise SubmitError(f"KFP API at {host} is unreachable: {error}") from error
    return result.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xgbflow submit", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--host",
        required=True,
        help="KFP API URL, e.g. http://ml-pipeline.kubeflow:8888",
    )
    parser.add_argument(
        "--namespace", required=True, help="namespace (Kubeflow profile) of the run"
    )
    parser.add_argument(
        "--pipeline", type=Path, required=True, help="compiled pipeline YAML"
    )
    parser.add_argument(
        "--params", type=Path, required=True, help="pipeline-params.yaml"
    )
    parser.add_argument(
        "--experiment", default="scheduled-training", help="KFP experiment name"
    )
    parser.add_argument(
        "--token-path",
        type=Path,
        default=Path(DEFAULT_TOKEN_PATH),
        help="projected ServiceAccount token",
    )
    parser.add_argument(
        "--run-name", help="run name; default: pipeline name and UTC time"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )

    try:
        pipeline = load_pipeline(args.pipeline)
        params = load_parameters(args.params)
        check_parameters(pipeline, params)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = pipeline.get("pipelineInfo", {}).get("name", args.pipeline.stem)
        run_id = submit_run(
            host=args.host,
            pipeline_path=args.pipeline,
            params=params,
            namespace=args.namespace,
            experiment=args.experiment,
            token_path=args.token_path,
            run_name=args.run_name or f"{name} {now}",
        )
    except SubmitError as error:
        logger.error("%s", error)
        return 1

    logger.info(
        "created run %s in experiment %r of %s", run_id, args.experiment, args.namespace
    )
    print(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
