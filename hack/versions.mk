# Pinned versions of the manifest tooling and of the APIs the manifests are checked against.
# Read by the Makefile (include) and by hack/generate_schemas.py (KEY := value lines).
# Moving one of these is a deliberate upgrade: the schemas follow, and the tests say what broke.

KUSTOMIZE_MODULE := sigs.k8s.io/kustomize/kustomize/v5
KUSTOMIZE_VERSION := v5.7.1
KUBECONFORM_MODULE := github.com/yannh/kubeconform/cmd/kubeconform
KUBECONFORM_VERSION := v0.7.0

# Kubernetes core kinds come from the OpenAPI document committed in the kubernetes module.
KUBERNETES_MODULE := k8s.io/kubernetes
KUBERNETES_VERSION := v1.34.2
KSERVE_MODULE := github.com/kserve/kserve
KSERVE_VERSION := v0.15.2
KATIB_MODULE := github.com/kubeflow/katib
KATIB_VERSION := v0.19.0
PROMETHEUS_OPERATOR_MODULE := github.com/prometheus-operator/prometheus-operator
PROMETHEUS_OPERATOR_VERSION := v0.85.0
ARGO_CD_MODULE := github.com/argoproj/argo-cd/v3
ARGO_CD_VERSION := v3.1.9
