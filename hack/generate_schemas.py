"""Write kubeconform JSON schemas for every kind the manifests use, offline and pinned.

Sources are the Go modules named in hack/versions.mk, fetched with `go mod download`
(the Go module proxy is the only network this needs):

- Kubernetes core kinds: api/openapi-spec/swagger.json inside k8s.io/kubernetes.
- KServe, Prometheus Operator, Argo CD: the CustomResourceDefinitions in their modules.
- Katib: its Experiment CRD carries no schema, so the OpenAPI document the project
  publishes in api/openapi-spec/swagger.json is used instead.

Every schema is standalone (references inlined) and strict: an object that lists its
properties rejects any other, unless the API marks it as free-form. Files are named the
way kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json` template expects, for
example deployment-apps-v1.json or inferenceservice-serving-v1beta1.json.

Usage: python hack/generate_schemas.py OUTPUT_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

VERSIONS_FILE = Path(__file__).with_name("versions.mk")

# Core API group versions whose kinds get a schema. A kind outside these has no schema,
# and kubeconform then fails the build: adding a group here is a deliberate step.
CORE_GROUP_VERSIONS = (
    ("", "v1"),
    ("apps", "v1"),
    ("batch", "v1"),
    ("autoscaling", "v2"),
    ("policy", "v1"),
    ("networking.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
)

CRD_FILES = {
    "KSERVE": (
        "config/crd/full/serving.kserve.io_inferenceservices.yaml",
        "config/crd/full/serving.kserve.io_servingruntimes.yaml",
    ),
    "PROMETHEUS_OPERATOR": (
        "example/prometheus-operator-crd-full/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd-full/monitoring.coreos.com_podmonitors.yaml",
        "example/prometheus-operator-crd-full/monitoring.coreos.com_prometheusrules.yaml",
    ),
    "ARGO_CD": (
        "manifests/crds/application-crd.yaml",
        "manifests/crds/applicationset-crd.yaml",
        "manifests/crds/appproject-crd.yaml",
    ),
}

KATIB_OPENAPI = "api/openapi-spec/swagger.json"
KATIB_KINDS = {"v1beta1.Experiment": ("kubeflow.org", "v1beta1", "Experiment")}

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
STRING_OR_INTEGER = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
STRING_OR_NUMBER = {"oneOf": [{"type": "string"}, {"type": "number"}]}


class SchemaSourceError(RuntimeError):
    """A pinned module could not be fetched or lacks an expected file."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the `KEY := value` lines of versions.mk into a mapping."""
    pattern = re.compile(r"^([A-Z_]+)\s*:=\s*(\S+)\s*$")
    matches = (pattern.match(line) for line in path.read_text().splitlines())
    return {m.group(1): m.group(2) for m in matches if m}


def download_module(module: str, version: str) -> Path:
    """Fetch module@version through the Go module proxy and return its source folder."""
    # Outside any go.mod, so `go` treats the argument as a plain module download.
    with tempfile.TemporaryDirectory() as empty:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=empty,
            capture_output=True,
            text=True,
            check=False,
        )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or result.stderr.strip()
        raise SchemaSourceError(f"go mod download {module}@{version} failed: {detail}")
    return Path(info["Dir"])


def file_name(group: str, version: str, kind: str) -> str:
    """kubeconform's name for a kind: lower-case kind, first group label, version."""
    suffix = f"-{group.split('.')[0]}" if group else ""
    return f"{kind.lower()}{suffix}-{version}.json"


def inline_refs(
    node: Any, definitions: dict[str, Any], prefix: str, seen: frozenset = frozenset()
) -> Any:
    """Replace every `$ref` under node with the definition it names, recursively.

    A definition that refers back to itself (none of the kinds used here do, but some
    API types are recursive) is cut off as an unconstrained schema.
    """
    if isinstance(node, list):
        return [inline_refs(item, definitions, prefix, seen) for item in node]
    if not isinstance(node, dict):
        return node

    if "$ref" in node:
        name = node["$ref"].removeprefix(prefix)
        if name == QUANTITY:
            return dict(STRING_OR_NUMBER)
        if name in seen:
            return {}
        target = inline_refs(definitions[name], definitions, prefix, seen | {name})
        return {**target, **{k: v for k, v in node.items() if k == "description"}}

    out = {
        key: inline_refs(value, definitions, prefix, seen)
        for key, value in node.items()
    }
    # OpenAPI 3 documents wrap a reference in a one-element allOf to attach a default.
    if len(out.get("allOf", ())) == 1:
        wrapped = out.pop("allOf")[0]
        out = {**wrapped, **out}
    return out


def make_strict(node: Any) -> Any:
    """Turn an OpenAPI schema into the JSON Schema kubeconform validates with.

    Closes every object that lists its properties, maps int-or-string and nullable
    markers to their JSON Schema forms, and drops OpenAPI-only keys.
    """
    if isinstance(node, list):
        return [make_strict(item) for item in node]
    if not isinstance(node, dict):
        return node

    out = {
        k: make_strict(v) for k, v in node.items() if k not in {"default", "example"}
    }
    if out.get("format") == "int-or-string" or out.pop(
        "x-kubernetes-int-or-string", False
    ):
        out.pop("type", None)
        out.pop("format", None)
        out.update(STRING_OR_INTEGER)
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]

    free_form = out.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in out and "additionalProperties" not in out and not free_form:
        out["additionalProperties"] = False
    return out


def core_schemas(source: Path) -> dict[str, Any]:
    """Schemas for the core kinds of CORE_GROUP_VERSIONS from the Kubernetes swagger."""
    definitions = json.loads((source / "api/openapi-spec/swagger.json").read_text())
    definitions = definitions["definitions"]
    wanted = set(CORE_GROUP_VERSIONS)
    schemas = {}
    for name, definition in definitions.items():
        # Only API kinds: apimachinery's DeleteOptions, WatchEvent and the like carry
        # group-version-kind markers too, but no manifest is one of them.
        if not name.startswith("io.k8s.api."):
            continue
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            if (group, version) not in wanted or kind.endswith("List"):
                continue
            resolved = inline_refs({"$ref": name}, definitions, "#/definitions/")
            schemas[file_name(group, version, kind)] = make_strict(resolved)
    return schemas


def crd_schemas(source: Path, relative_paths: tuple[str, ...]) -> dict[str, Any]:
    """Schemas for every served version of the CRDs in relative_paths."""
    schemas = {}
    for relative in relative_paths:
        path = source / relative
        if not path.is_file():
            raise SchemaSourceError(f"{path} is missing; expected a CRD in the module")
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = version["schema"]["openAPIV3Schema"]
                schemas[file_name(group, version["name"], kind)] = make_strict(schema)
    return schemas


def katib_schemas(source: Path) -> dict[str, Any]:
    """The Experiment schema from Katib's published OpenAPI 3 document."""
    document = json.loads((source / KATIB_OPENAPI).read_text())
    definitions = document["components"]["schemas"]
    schemas = {}
    for name, (group, version, kind) in KATIB_KINDS.items():
        resolved = inline_refs({"$ref": name}, definitions, "#/components/schemas/")
        schemas[file_name(group, version, kind)] = make_strict(resolved)
    return schemas


def generate_schemas(output: Path) -> list[str]:
    """Write all schemas into output and return their file names, sorted."""
    versions = read_versions()

    def source(key: str) -> Path:
        return download_module(versions[f"{key}_MODULE"], versions[f"{key}_VERSION"])

    schemas = core_schemas(source("KUBERNETES"))
    schemas |= katib_schemas(source("KATIB"))
    for key, paths in CRD_FILES.items():
        schemas |= crd_schemas(source(key), paths)

    output.mkdir(parents=True, exist_ok=True)
    for stale in output.glob("*.json"):
        stale.unlink()
    for name, schema in schemas.items():
        (output / name).write_text(json.dumps(schema, sort_keys=True))
    stamp = "\n".join(f"{k} := {v}" for k, v in sorted(versions.items()))
    (output / "VERSIONS").write_text(stamp + "\n")
    return sorted(schemas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="folder to write the schemas into")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        names = generate_schemas(args.output)
    except SchemaSourceError as error:
        logger.error("%s", error)
        return 1
    logger.info("wrote %d schemas to %s", len(names), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
