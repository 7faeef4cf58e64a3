"""Policy over the rendered overlays: the agreed numbers, security, references, pins."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from manifest_tools import ENVIRONMENTS, ROOT, find, only

# Objects this repository never renders but references by name; docs/cluster.md must
# describe each and say who provides it.
EXTERNAL_SECRETS = {"mlflow-backend-store", "model-storage"}
EXTERNAL_CLUSTER_ROLES = {"kubeflow-pipelines-edit"}

SEARCH_SPACE = {
    "max_depth": ("int", "3", "10"),
    "learning_rate": ("double", "0.01", "0.3"),
    "n_estimators": ("int", "100", "1000"),
    "min_child_weight": ("int", "1", "7"),
    "subsample": ("double", "0.6", "1.0"),
}
TRIAL_FLAGS = {
    "max_depth": "--max-depth",
    "learning_rate": "--learning-rate",
    "n_estimators": "--n-estimators",
    "min_child_weight": "--min-child-weight",
    "subsample": "--subsample",
}
SERVER_METRICS = {
    "xgbflow_requests_total",
    "xgbflow_request_duration_seconds",
    "xgbflow_predictions_total",
    "xgbflow_prediction_probability",
    "xgbflow_feature_drift_psi",
    "xgbflow_feature_missing_ratio",
    "xgbflow_prediction_drift_psi",
}
PIPELINE_PARAMETERS = {
    "data_uri": str,
    "target": str,
    "categorical_columns": str,
    "n_rows": int,
    "seed": int,
    "positive_rate": float,
    "missing_rate": float,
    "max_depth": int,
    "learning_rate": float,
    "n_estimators": int,
    "min_child_weight": int,
    "subsample": float,
    "accuracy_gate": float,
    "mlflow_tracking_uri": str,
    "registered_model_name": str,
    "model_publish_uri": str,
}
RELEASE_TAG = re.compile(r"^v?\d+\.\d+\.\d+$")
# kustomize's name hashes: ten hex digits, with vowel-like ones swapped for consonants.
HASH_SUFFIX = re.compile(r"-[2456789bcdfghkmt]{10}$")
WAVE = "argocd.argoproj.io/sync-wave"


def pod_specs(objects: list[dict]) -> list[tuple[str, dict]]:
    """Every pod spec the overlay runs, with a label saying where it comes from."""
    specs = []
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec", {})
        if obj["kind"] == "Deployment":
            specs.append((name, spec["template"]["spec"]))
        elif obj["kind"] == "CronJob":
            specs.append((name, spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif obj["kind"] == "Experiment":
            trial = spec["trialTemplate"]["trialSpec"]
            specs.append((name, trial["spec"]["template"]["spec"]))
        elif obj["kind"] == "ServingRuntime":
            specs.append((name, {"containers": spec["containers"]}))
        elif obj["kind"] == "InferenceService":
            predictor = spec["predictor"]
            pod = {k: v for k, v in predictor.items() if k != "model"}
            specs.append((name, {**pod, "containers": [predictor["model"]]}))
    return specs


def image_refs(objects: list[dict]) -> list[str]:
    return [
        container["image"]
        for _, spec in pod_specs(objects)
        for container in spec["containers"]
        if "image" in container
    ]


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def objects(rendered: dict[str, list[dict]], env: str) -> list[dict]:
    return rendered[env]


def test_search_space_is_exactly_the_agreed_one(objects: list[dict]) -> None:
    spec = only(objects, "Experiment")["spec"]

    space = {
        p["name"]: (
            p["parameterType"],
            p["feasibleSpace"]["min"],
            p["feasibleSpace"]["max"],
        )
        for p in spec["parameters"]
    }

    assert space == SEARCH_SPACE


def test_experiment_objective_algorithm_and_early_stopping(objects: list[dict]) -> None:
    spec = only(objects, "Experiment")["spec"]

    objective = spec["objective"]
    assert (objective["type"], objective["objectiveMetricName"]) == (
        "maximize",
        "accuracy",
    )
    assert objective["additionalMetricNames"] == ["precision", "recall", "f1", "auc"]
    strategies = {s["name"]: s["value"] for s in objective["metricStrategies"]}
    assert strategies["accuracy"] == "latest"
    assert spec["algorithm"]["algorithmName"] == "bayesianoptimization"
    settings = {s["name"] for s in spec["algorithm"]["algorithmSettings"]}
    assert {"n_initial_points", "acq_func", "random_state"} <= settings
    assert spec["earlyStopping"]["algorithmName"] == "medianstop"
    stopping = {s["name"] for s in spec["earlyStopping"]["algorithmSettings"]}
    assert stopping == {"min_trials_required", "start_step"}
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    assert all(spec[key] > 0 for key in ("parallelTrialCount", "maxTrialCount"))
    assert spec["maxFailedTrialCount"] >= 0


def test_trial_runs_the_contract_command(objects: list[dict]) -> None:
    template = only(objects, "Experiment")["spec"]["trialTemplate"]
    job_spec = template["trialSpec"]["spec"]["template"]["spec"]
    (container,) = [
        c
        for c in job_spec["containers"]
        if c["name"] == template["primaryContainerName"]
    ]
    by_reference = {p["reference"]: p["name"] for p in template["trialParameters"]}

    expected = [
        f"{TRIAL_FLAGS[ref]}=${{trialParameters.{by_reference[ref]}}}"
        for ref in SEARCH_SPACE
    ]

    assert template["trialSpec"]["kind"] == "Job"
    assert container["image"].startswith("ghcr.io/xgbflow/train:")
    assert container["command"][:2] == ["xgbflow", "trial"]
    assert container["command"][2:] == expected


def test_trial_counts_differ_between_environments(
    rendered: dict[str, list[dict]],
) -> None:
    counts = [
        tuple(
            only(rendered[e], "Experiment")["spec"][k]
            for k in ("parallelTrialCount", "maxTrialCount")
        )
        for e in ENVIRONMENTS
    ]
    assert counts[0] != counts[1]


def test_inference_service_serves_onnx_v2_with_agreed_sizes(
    objects: list[dict],
) -> None:
    predictor = only(objects, "InferenceService")["spec"]["predictor"]
    model = predictor["model"]
    two_cpu_four_gi = {"cpu": "2", "memory": "4Gi"}

    assert model["modelFormat"]["name"] == "onnx"
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"].startswith(("s3://", "gs://", "pvc://"))
    assert model["resources"] == {
        "requests": two_cpu_four_gi,
        "limits": two_cpu_four_gi,
    }
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    assert predictor["scaleTarget"] > 0
    assert predictor["scaleMetric"] == "cpu"


def test_runtime_exists_and_runs_the_contract_server(objects: list[dict]) -> None:
    model = only(objects, "InferenceService")["spec"]["predictor"]["model"]
    runtime = only(objects, "ServingRuntime", model["runtime"])["spec"]
    (container,) = runtime["containers"]

    assert {"name": "onnx", "version": "1", "autoSelect": False} in runtime[
        "supportedModelFormats"
    ]
    assert set(runtime["protocolVersions"]) == {"v1", "v2"}
    assert container["args"] == [
        "--model_name={{.Name}}",
        "--model_dir=/mnt/models",
        "--http_port=8080",
        "--http_host=0.0.0.0",
    ]
    assert {"name": "http1", "containerPort": 8080, "protocol": "TCP"} in container[
        "ports"
    ]


def test_pod_monitor_selects_the_predictor_pods_and_port(objects: list[dict]) -> None:
    isvc = only(objects, "InferenceService")
    runtime = only(
        objects, "ServingRuntime", isvc["spec"]["predictor"]["model"]["runtime"]
    )
    monitor = only(objects, "PodMonitor")["spec"]
    # The labels KServe puts on every pod of an InferenceService's predictor.
    predictor_labels = {
        "serving.kserve.io/inferenceservice": isvc["metadata"]["name"],
        "component": "predictor",
    }
    port_names = {p["name"] for c in runtime["spec"]["containers"] for p in c["ports"]}

    assert monitor["selector"]["matchLabels"].items() <= predictor_labels.items()
    assert "namespaceSelector" not in monitor
    assert [(e["port"], e["path"]) for e in monitor["podMetricsEndpoints"]] == [
        ("http1", "/metrics")
    ]
    assert monitor["podMetricsEndpoints"][0]["port"] in port_names


def test_alerts_use_only_exported_metrics_and_cover_each_concern(
    objects: list[dict],
) -> None:
    rules = [
        r for g in only(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    ]
    used = {
        re.sub(r"_(bucket|sum|count)$", "", m)
        for r in rules
        for m in re.findall(r"\bxgbflow_\w+", r["expr"])
    }

    assert used <= SERVER_METRICS
    assert {
        "xgbflow_request_duration_seconds",
        "xgbflow_requests_total",
        "xgbflow_feature_drift_psi",
        "xgbflow_prediction_drift_psi",
    } <= used
    assert all(r["labels"]["severity"] in {"warning", "critical"} for r in rules)


def test_every_container_has_requests_limits_and_restricted_context(
    objects: list[dict],
) -> None:
    problems = []
    for where, spec in pod_specs(objects):
        pod_context = spec.get("securityContext", {})
        for container in spec["containers"] + spec.get("initContainers", []):
            context = {**pod_context, **container.get("securityContext", {})}
            resources = container.get("resources", {})
            checks = {
                "cpu and memory requests": set(resources.get("requests", {}))
                >= {"cpu", "memory"},
                "cpu and memory limits": set(resources.get("limits", {}))
                >= {"cpu", "memory"},
                "runAsNonRoot": context.get("runAsNonRoot") is True,
                "no privilege escalation": context.get("allowPrivilegeEscalation")
                is False,
                "drops ALL capabilities": context.get("capabilities", {}).get("drop")
                == ["ALL"],
                "RuntimeDefault seccomp": context.get("seccompProfile", {}).get("type")
                == "RuntimeDefault",
                "not privileged": not context.get("privileged", False),
            }
            problems += [f"{where}: {check}" for check, ok in checks.items() if not ok]
        hostile = {"hostNetwork", "hostPID", "hostIPC"} & {
            k for k, v in spec.items() if v
        }
        problems += [f"{where}: {key}" for key in hostile]
        problems += [
            f"{where}: hostPath volume"
            for v in spec.get("volumes", [])
            if "hostPath" in v
        ]
    assert not problems


def test_prod_images_are_pinned_to_digests_or_release_tags(
    rendered: dict[str, list[dict]],
) -> None:
    for image in image_refs(rendered["prod"]):
        if "@sha256:" in image:
            continue
        name, _, tag = image.rpartition(":")
        assert name, f"{image}: no tag; prod pins every image"
        assert "/" not in tag, f"{image}: no tag; prod pins every image"
        assert RELEASE_TAG.match(tag), (
            f"{image}: {tag!r} is not a release tag or digest"
        )


def test_own_images_are_set_by_the_overlay(objects: list[dict]) -> None:
    own = [i for i in image_refs(objects) if i.startswith("ghcr.io/xgbflow/")]
    assert own
    assert all(":" in i.removeprefix("ghcr.io") or "@" in i for i in own), own


def test_names_referenced_by_pods_resolve(objects: list[dict]) -> None:
    names = {
        kind: {o["metadata"]["name"] for o in find(objects, kind)}
        for kind in ("ServiceAccount", "ConfigMap", "Secret", "PersistentVolumeClaim")
    }
    missing = []
    for where, spec in pod_specs(objects):
        account = spec.get("serviceAccountName")
        if account and account not in names["ServiceAccount"]:
            missing.append(f"{where}: ServiceAccount {account}")
        for volume in spec.get("volumes", []):
            if (
                "configMap" in volume
                and volume["configMap"]["name"] not in names["ConfigMap"]
            ):
                missing.append(f"{where}: ConfigMap {volume['configMap']['name']}")
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in names["PersistentVolumeClaim"]:
                missing.append(f"{where}: PersistentVolumeClaim {claim}")
            secret = volume.get("secret", {}).get("secretName")
            if secret and secret not in names["Secret"] | EXTERNAL_SECRETS:
                missing.append(f"{where}: Secret {secret}")
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in names["Secret"] | EXTERNAL_SECRETS:
                    missing.append(f"{where}: Secret {ref['name']}")
    for account in find(objects, "ServiceAccount"):
        for secret in account.get("secrets", []):
            if secret["name"] not in names["Secret"] | EXTERNAL_SECRETS:
                missing.append(
                    f"ServiceAccount/{account['metadata']['name']}: {secret}"
                )
    assert not missing


def test_bindings_and_services_resolve(objects: list[dict]) -> None:
    accounts = {o["metadata"]["name"] for o in find(objects, "ServiceAccount")}
    for binding in find(objects, "RoleBinding"):
        role = binding["roleRef"]
        known = {o["metadata"]["name"] for o in find(objects, role["kind"])}
        assert role["name"] in known | EXTERNAL_CLUSTER_ROLES, role
        assert {s["name"] for s in binding["subjects"]} <= accounts

    deployments = find(objects, "Deployment")
    for service in find(objects, "Service"):
        selector = service["spec"]["selector"].items()
        targets = [
            d
            for d in deployments
            if selector <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert targets, f"Service {service['metadata']['name']} selects no pods"
        ports = {
            p["name"]
            for c in targets[0]["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_external_secrets_are_documented() -> None:
    docs = (ROOT / "docs/cluster.md").read_text()
    assert all(f"`{name}`" in docs for name in EXTERNAL_SECRETS)


def test_no_secret_values_in_git(objects: list[dict]) -> None:
    assert not [
        o for o in find(objects, "Secret") if o.get("data") or o.get("stringData")
    ]
    committed = [
        path
        for folder in ("base", "components", "overlays", "argocd")
        for path in (ROOT / folder).rglob("*.yaml")
        if re.search(r"^kind:\s*Secret\s*$", path.read_text(), re.MULTILINE)
    ]
    assert not committed


def test_pipeline_parameters_follow_the_contract(env: str) -> None:
    params = yaml.safe_load(
        (ROOT / "overlays" / env / "pipeline-params.yaml").read_text()
    )

    assert set(params) <= set(PIPELINE_PARAMETERS)
    for name, value in params.items():
        expected = PIPELINE_PARAMETERS[name]
        assert not isinstance(value, bool), (name, value)
        assert isinstance(value, expected), (
            name,
            value,
        )

    compiled = ROOT / "pipelines/training_pipeline.yaml"
    if compiled.exists():
        inputs = yaml.safe_load(compiled.read_text())["root"]["inputDefinitions"]
        assert set(params) <= set(inputs["parameters"])


def test_model_location_is_not_a_pipeline_publish_target(
    rendered: dict[str, list[dict]],
) -> None:
    # A pipeline run overwrites its publish location, so serving from it is not pinned.
    published = {
        yaml.safe_load((ROOT / "overlays" / e / "pipeline-params.yaml").read_text())
        .get("model_publish_uri", "")
        .rstrip("/")
        for e in ENVIRONMENTS
    }
    for env in ENVIRONMENTS:
        uri = only(rendered[env], "InferenceService")["spec"]["predictor"]["model"][
            "storageUri"
        ]
        assert uri.rstrip("/") not in published


def normalise(obj: dict, env: str) -> dict:
    """The object with every field dev and prod may legitimately differ in blanked."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta.pop("namespace", None)
    meta.get("labels", {}).pop("app.kubernetes.io/instance", None)
    meta["name"] = HASH_SUFFIX.sub("", meta["name"])
    if obj["kind"] == "Namespace":
        meta["name"] = meta["name"].removesuffix(f"-{env}")
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec.pop("schedule")
        for volume in spec["jobTemplate"]["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in volume:
                volume["configMap"]["name"] = HASH_SUFFIX.sub(
                    "", volume["configMap"]["name"]
                )
    if obj["kind"] == "Experiment":
        for key in ("parallelTrialCount", "maxTrialCount", "maxFailedTrialCount"):
            spec.pop(key)
    if obj["kind"] == "InferenceService":
        spec["predictor"]["model"].pop("storageUri")
    for subject in obj.get("subjects", []):
        subject.pop("namespace", None)
    if obj["kind"] == "ConfigMap" and meta["name"] == "pipeline-params":
        obj.pop("data")
    for _, pod in pod_specs([obj]):
        for container in pod["containers"]:
            if container.get("image", "").startswith("ghcr.io/xgbflow/"):
                container["image"] = re.split(r"[:@]", container["image"])[0]
    return obj


def test_dev_and_prod_differ_only_in_allowed_fields(
    rendered: dict[str, list[dict]],
) -> None:
    def keyed(env: str) -> dict[tuple[str, str], dict]:
        normalised = [normalise(o, env) for o in rendered[env]]
        return {(o["kind"], o["metadata"]["name"]): o for o in normalised}

    dev, prod = keyed("dev"), keyed("prod")

    assert dev.keys() == prod.keys()
    differing = [key for key in dev if dev[key] != prod[key]]
    assert not differing


def test_argo_applications_point_at_their_overlays(
    rendered: dict[str, list[dict]],
) -> None:
    project = only(rendered["root"], "AppProject")["spec"]
    for env in ENVIRONMENTS:
        app = only(rendered["root"], "Application", f"xgbflow-{env}")["spec"]
        namespace = only(rendered[env], "Namespace")["metadata"]["name"]

        assert app["project"] == "xgbflow"
        assert Path(ROOT / app["source"]["path"], "kustomization.yaml").is_file()
        assert app["source"]["path"] == f"overlays/{env}"
        assert app["destination"]["namespace"] == namespace
        assert app["source"]["repoURL"] in project["sourceRepos"]
        assert {
            "server": app["destination"]["server"],
            "namespace": namespace,
        } in project["destinations"]
        allowed = {
            (k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]
        }
        allowed |= {
            (k["group"], k["kind"]) for k in project["clusterResourceWhitelist"]
        }
        rendered_kinds = {
            (o["apiVersion"].rpartition("/")[0], o["kind"]) for o in rendered[env]
        }
        assert rendered_kinds <= allowed


def test_sync_policies(rendered: dict[str, list[dict]]) -> None:
    dev = only(rendered["root"], "Application", "xgbflow-dev")["spec"]["syncPolicy"]
    prod = only(rendered["root"], "Application", "xgbflow-prod")["spec"]["syncPolicy"]

    assert dev["automated"] == {"prune": True, "selfHeal": True}
    assert prod["automated"] == {"prune": False, "selfHeal": True}


def test_sync_waves_order_dependencies(objects: list[dict]) -> None:
    def wave(kind: str) -> int:
        return max(
            int(o["metadata"].get("annotations", {}).get(WAVE, 0))
            for o in find(objects, kind)
        )

    assert wave("Namespace") < wave("ServiceAccount")
    assert wave("ServiceAccount") == wave("RoleBinding")
    assert wave("RoleBinding") < min(wave("Deployment"), wave("ServingRuntime"))
    assert max(wave("Deployment"), wave("ServingRuntime")) < min(
        wave("InferenceService"), wave("Experiment"), wave("CronJob")
    )


def test_custom_resources_dry_run_safely_and_experiment_is_replaced(
    objects: list[dict],
) -> None:
    custom = [o for o in objects if not re.match(r"^(v1|[a-z]+/v1)$", o["apiVersion"])]
    custom = [o for o in custom if "k8s.io" not in o["apiVersion"]]
    options = {
        o["kind"]: o["metadata"]
        .get("annotations", {})
        .get("argocd.argoproj.io/sync-options", "")
        for o in custom
        if o["kind"] != "ServingRuntime"
    }

    assert all("SkipDryRunOnMissingResource=true" in v for v in options.values()), (
        options
    )
    assert {"Replace=true", "Force=true"} <= set(options["Experiment"].split(","))
