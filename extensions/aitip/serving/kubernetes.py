"""Kubernetes manifests for an inference endpoint: pure functions from an ``EndpointSpec`` to the objects
an operator (or the platform) applies, so what would run on a cluster can be rendered, read and checked
here, with no API server.

Two shapes: plain Kubernetes (per registered model version a Deployment, Service, HPA and, when it
keeps more than one pod, a PodDisruptionBudget; plus one Service for the endpoint), or one KServe
``InferenceService`` whose canary carries the newer version. ``validate`` checks the result against the
Kubernetes OpenAPI schemas bundled in ``kubernetes-validate`` (offline, strict) and the KServe fields by
hand, since that package has no schemas for custom resources.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

APP = "aitip-serving"
PORT = 8080
BACKENDS = {"python": "mlflow", "onnx": "onnx"}  # backend → KServe modelFormat.name
# What KServe's storage initializer can fetch (a ``models:/`` registry URI is not among them).
KSERVE_SCHEMES = ("s3://", "gs://", "pvc://", "http://", "https://", "hdfs://", "webhdfs://", "hf://",
                  "oci://")
KSERVE_API = "serving.kserve.io/v1beta1"
PREDICTOR_HOST = "-predictor-"  # KServe's host label <name>-predictor-<namespace> must fit 63 chars

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CPU = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m)?$")
MEMORY = re.compile(r"^(\d+(\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


@dataclass(frozen=True)
class VariantSpec:
    """One registered model version behind the endpoint and its share of the traffic."""

    version: int
    weight: int
    shadow: bool = False
    replicas_min: int = 1
    replicas_max: int = 1
    cpu: str = "1"
    memory: str = "1Gi"
    gpus: int = 0
    backend: str = "python"

    def __post_init__(self) -> None:
        v = f"variant v{self.version}"
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"version must be a positive integer, not {self.version!r}")
        if not 0 <= self.weight <= 100:
            raise ValueError(f"{v}: weight must be between 0 and 100 percent, not {self.weight}")
        if self.replicas_min < 1:
            raise ValueError(f"{v}: replicas_min must be at least 1, not {self.replicas_min}")
        if self.replicas_min > self.replicas_max:
            raise ValueError(f"{v}: replicas_min ({self.replicas_min}) exceeds replicas_max "
                             f"({self.replicas_max})")
        if not CPU.match(self.cpu) or cpu_cores(self.cpu) <= 0:
            raise ValueError(f"{v}: cpu {self.cpu!r} is not a positive Kubernetes quantity "
                             "(e.g. '2' or '500m')")
        if not MEMORY.match(self.memory) or float(MEMORY.match(self.memory).group(1)) <= 0:
            raise ValueError(f"{v}: memory {self.memory!r} is not a positive Kubernetes quantity "
                             "(e.g. '1Gi' or '512Mi')")
        if self.gpus < 0:
            raise ValueError(f"{v}: gpus must be 0 or more, not {self.gpus}")
        if self.backend not in BACKENDS:
            raise ValueError(f"{v}: backend must be one of {sorted(BACKENDS)}, not {self.backend!r}")


@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint of a project: its model, the versions serving it and how each replica batches."""

    project: str
    endpoint: str
    model: str
    variants: tuple[VariantSpec, ...]
    image: str = "aitip/serving:latest"
    namespace: str = "aitip-serving"
    model_uri_base: str = "models:/"
    max_batch_size: int = 32
    max_batch_wait_ms: float = 2.0
    target_concurrency: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.variants))
        for field in ("project", "endpoint", "namespace"):
            value = getattr(self, field)
            if not isinstance(value, str) or len(value) > 63 or not DNS_LABEL.match(value):
                raise ValueError(f"{field} {value!r} is not a DNS label (lower-case letters, digits and "
                                 "'-', at most 63 characters, starting and ending alphanumeric)")
        if not self.model.strip():
            raise ValueError("model must name a registered model")
        if not self.image or any(c.isspace() for c in self.image):
            raise ValueError(f"image {self.image!r} is not an image reference")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {self.max_batch_size}")
        if not (self.max_batch_wait_ms >= 0 and math.isfinite(self.max_batch_wait_ms)):
            raise ValueError(f"max_batch_wait_ms must be 0 or more, not {self.max_batch_wait_ms}")
        if self.target_concurrency < 1:
            raise ValueError(f"target_concurrency must be at least 1, not {self.target_concurrency}")
        if not self.variants:
            raise ValueError("an endpoint needs at least one variant")
        versions = [v.version for v in self.variants]
        if len(set(versions)) != len(versions):
            raise ValueError(f"each model version may appear once among the variants: {versions}")
        live = [v for v in self.variants if not v.shadow]
        if not live:
            raise ValueError("an endpoint needs at least one non-shadow variant to answer requests")
        total = sum(v.weight for v in live)
        if total != 100:
            raise ValueError(f"weights of the non-shadow variants must sum to 100, not {total} "
                             f"({', '.join(f'v{v.version}={v.weight}' for v in live)})")

    def model_uri(self, variant: VariantSpec) -> str:
        return f"{self.model_uri_base}{self.model}/{variant.version}"


def cpu_cores(quantity: str) -> float:
    match = CPU.match(quantity)
    if not match:
        raise ValueError(f"cpu {quantity!r} is not a Kubernetes quantity")
    value = float(match.group(1))
    return value / 1000 if match.group(3) else value


def bounded_name(*parts: str, limit: int = 63) -> str:
    """``parts`` joined by '-', as a DNS-1035 label of at most ``limit`` characters; a longer one is cut and
    ends in a hash of the whole, so distinct inputs keep distinct names and the same input the same name."""
    name = "-".join(parts)
    if not name[:1].isalpha():  # Service names must start with a letter (DNS-1035)
        name = "s-" + name
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    """``text`` made a valid label value (≤63, alphanumeric ends), for model names that may be anything."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if len(cleaned) > 63 or cleaned != text:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:54].strip('-_.')}-{digest}".strip("-")
    return cleaned


def variant_name(spec: EndpointSpec, variant: VariantSpec) -> str:
    return bounded_name(spec.project, spec.endpoint, f"v{variant.version}")


def endpoint_name(spec: EndpointSpec) -> str:
    return bounded_name(spec.project, spec.endpoint)


def _labels(spec: EndpointSpec, variant: VariantSpec | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/managed-by": "aitip",
              "aitip.io/project": spec.project, "aitip.io/endpoint": spec.endpoint,
              "aitip.io/model": label_value(spec.model)}
    if variant is not None:
        labels["aitip.io/model-version"] = str(variant.version)
    return labels


def _selector(spec: EndpointSpec, variant: VariantSpec | None = None) -> dict[str, str]:
    keys = ("app.kubernetes.io/name", "aitip.io/project", "aitip.io/endpoint", "aitip.io/model-version")
    return {k: v for k, v in _labels(spec, variant).items() if k in keys}


def _meta(name: str, spec: EndpointSpec, variant: VariantSpec | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": _labels(spec, variant),
            "annotations": {"aitip.io/model-name": spec.model}}


def _resources(variant: VariantSpec) -> dict[str, Any]:
    """Requests equal to limits: Guaranteed QoS, so a replica's latency is not at a neighbour's mercy."""
    amount: dict[str, str] = {"cpu": variant.cpu, "memory": variant.memory}
    if variant.gpus:
        amount["nvidia.com/gpu"] = str(variant.gpus)
    return {"requests": dict(amount), "limits": dict(amount)}


def _tolerations(variant: VariantSpec) -> list[dict[str, str]]:
    return [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}] if variant.gpus else []


def _deployment(spec: EndpointSpec, variant: VariantSpec) -> dict[str, Any]:
    name = variant_name(spec, variant)
    traffic = "shadow" if variant.shadow else ("live" if variant.weight else "idle")
    pod_labels = {**_labels(spec, variant), "aitip.io/traffic": traffic}
    probe = {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 5,
             "failureThreshold": 3}
    container = {
        "name": "replica", "image": spec.image,
        "command": ["python", "-m", "aitip.serving.replica"],
        "args": ["--model-uri", spec.model_uri(variant), "--port", str(PORT),
                 "--max-batch-size", str(spec.max_batch_size),
                 "--max-batch-wait-ms", f"{spec.max_batch_wait_ms:g}", "--backend", variant.backend,
                 "--name", spec.endpoint, "--model-name", spec.model, "--version", str(variant.version)],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": "OMP_NUM_THREADS", "value": str(max(1, math.ceil(cpu_cores(variant.cpu))))},
                {"name": "HOME", "value": "/tmp"}, {"name": "TMPDIR", "value": "/tmp"}],
        "resources": _resources(variant),
        # A model load can take minutes: the startup probe holds liveness off until the replica answers.
        "startupProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 5,
                         "failureThreshold": 120},
        "readinessProbe": probe,
        "livenessProbe": {**probe, "httpGet": {"path": "/v2/health/live", "port": "http"},
                          "periodSeconds": 10},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        # The root filesystem is read-only; the downloaded model and temporary files go here.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 30,  # the replica drains in-flight requests on SIGTERM
    }
    if variant.gpus:
        pod["tolerations"] = _tolerations(variant)
    meta = _meta(name, spec, variant)
    meta["annotations"] = {**meta["annotations"], "aitip.io/traffic-weight": str(variant.weight),
                           "aitip.io/shadow": str(variant.shadow).lower()}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": variant.replicas_min, "selector": {"matchLabels": _selector(spec, variant)},
                     "template": {"metadata": {"labels": pod_labels}, "spec": pod}}}


def _service(name: str, spec: EndpointSpec, selector: dict[str, str],
             variant: VariantSpec | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, spec, variant),
            "spec": {"type": "ClusterIP", "selector": selector,
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def _hpa(spec: EndpointSpec, variant: VariantSpec, custom_metrics: bool) -> dict[str, Any]:
    name = variant_name(spec, variant)
    metrics: list[dict[str, Any]] = [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    if custom_metrics:  # needs a custom metrics adapter (e.g. prometheus-adapter) serving this metric
        metrics.append({"type": "Pods", "pods": {
            "metric": {"name": "aitip_inflight_requests"},
            "target": {"type": "AverageValue", "averageValue": str(spec.target_concurrency)}}})
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(name, spec, variant),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": variant.replicas_min, "maxReplicas": variant.replicas_max,
                     "metrics": metrics}}


def _pdb(spec: EndpointSpec, variant: VariantSpec) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": _meta(variant_name(spec, variant), spec, variant),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(spec, variant)}}}


def kserve_name(spec: EndpointSpec) -> str:
    """The InferenceService's name, short enough that KServe's host label fits (kserve#4807)."""
    budget = 63 - len(PREDICTOR_HOST) - len(spec.namespace)
    if budget < 12:
        raise ValueError(f"namespace {spec.namespace!r} is too long for KServe: "
                         f"<name>{PREDICTOR_HOST}<namespace> must fit 63 characters")
    return bounded_name(spec.project, spec.endpoint, limit=min(budget, 63))


def _inference_service(spec: EndpointSpec) -> dict[str, Any]:
    """KServe expresses one canary: the newest version takes ``canaryTrafficPercent``, the revision
    rolled out before it the rest. Anything else (shadows, three ways) is refused, not approximated."""
    if any(v.shadow for v in spec.variants):
        raise ValueError("KServe cannot mirror traffic to a shadow variant; render without kserve, or "
                         "drop the shadow variants")
    if len(spec.variants) > 2:
        raise ValueError(f"KServe splits traffic between at most two versions (one canary), not "
                         f"{len(spec.variants)}")
    if not spec.model_uri_base.startswith(KSERVE_SCHEMES):
        raise ValueError(f"KServe cannot fetch model URIs starting {spec.model_uri_base!r}; give "
                         f"model_uri_base as one of {', '.join(KSERVE_SCHEMES)}")
    newest, *older = sorted(spec.variants, key=lambda v: v.version, reverse=True)
    predictor: dict[str, Any] = {
        "minReplicas": newest.replicas_min, "maxReplicas": newest.replicas_max,
        "scaleMetric": "concurrency", "scaleTarget": spec.target_concurrency,
        "model": {"modelFormat": {"name": BACKENDS[newest.backend]}, "storageUri": spec.model_uri(newest),
                  "resources": _resources(newest)},
    }
    if older:
        predictor["canaryTrafficPercent"] = newest.weight
    if newest.gpus:
        predictor["tolerations"] = _tolerations(newest)
    meta = _meta(kserve_name(spec), spec, newest)
    if older:
        meta["annotations"]["aitip.io/stable-version"] = str(older[0].version)
    return {"apiVersion": KSERVE_API, "kind": "InferenceService", "metadata": meta,
            "spec": {"predictor": predictor}}


def render(spec: EndpointSpec, *, kserve: bool = False, custom_metrics: bool = False) -> list[dict]:
    """The manifests serving ``spec``, in apply order. ``custom_metrics`` adds the in-flight requests
    metric to each HPA; only set it where a custom metrics adapter serves ``aitip_inflight_requests``."""
    if kserve:
        return [_inference_service(spec)]
    out: list[dict] = []
    for variant in sorted(spec.variants, key=lambda v: v.version):
        name = variant_name(spec, variant)
        out += [_deployment(spec, variant), _service(name, spec, _selector(spec, variant), variant),
                _hpa(spec, variant, custom_metrics)]
        if variant.replicas_min > 1:
            out.append(_pdb(spec, variant))
    # The endpoint Service reaches the live variants only (not shadows, not weight 0). A Service spreads
    # by ready pods, not by weight: exact weights are the platform router's job.
    live = {**_selector(spec), "aitip.io/traffic": "live"}
    out.append(_service(endpoint_name(spec), spec, live))
    return out


def to_yaml(manifests: list[dict]) -> str:
    """Multi-document YAML, as ``kubectl apply -f`` reads it."""
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False, explicit_start=True,
                              allow_unicode=True)


def _check_kserve(m: dict, where: str) -> list[str]:
    problems = []
    if m.get("apiVersion") != KSERVE_API:
        problems.append(f"{where}: apiVersion must be {KSERVE_API}, not {m.get('apiVersion')!r}")
    name = (m.get("metadata") or {}).get("name")
    namespace = (m.get("metadata") or {}).get("namespace") or "default"
    if isinstance(name, str) and len(name) + len(PREDICTOR_HOST) + len(namespace) > 63:
        problems.append(f"{where}: {name}{PREDICTOR_HOST}{namespace} exceeds 63 characters (KServe host)")
    predictor = (m.get("spec") or {}).get("predictor")
    if not isinstance(predictor, dict):
        return problems + [f"{where}: spec.predictor is missing"]
    model = predictor.get("model")
    if not isinstance(model, dict):
        return problems + [f"{where}: spec.predictor.model is missing"]
    fmt = (model.get("modelFormat") or {}).get("name") if isinstance(model.get("modelFormat"), dict) else None
    if not isinstance(fmt, str) or not fmt:
        problems.append(f"{where}: spec.predictor.model.modelFormat.name is missing")
    uri = model.get("storageUri")
    if not isinstance(uri, str) or not uri.startswith(KSERVE_SCHEMES):
        problems.append(f"{where}: spec.predictor.model.storageUri {uri!r} is not a URI KServe can fetch")
    if "canaryTrafficPercent" in predictor:
        pct = predictor["canaryTrafficPercent"]
        if not isinstance(pct, int) or isinstance(pct, bool) or not 0 <= pct <= 100:
            problems.append(f"{where}: spec.predictor.canaryTrafficPercent must be an integer 0..100, "
                            f"not {pct!r}")
    for key in ("minReplicas", "maxReplicas"):
        if key in predictor and (not isinstance(predictor[key], int) or predictor[key] < 0):
            problems.append(f"{where}: spec.predictor.{key} must be a non-negative integer")
    return problems


def validate(manifests: list[dict], *, kube_version: str = "1.30.0") -> list[str]:
    """What an API server of ``kube_version`` (or KServe's webhook) would refuse; [] when all is well.
    Built-in kinds are checked against the bundled strict schemas (unknown fields are errors); names
    and labels, which those schemas leave free, by the DNS and label-value rules."""
    import kubernetes_validate  # here, not at the top: ~1.2 s cold (jsonschema), and render needs none of it
    from kubernetes_validate.utils import SchemaNotFoundError, VersionNotSupportedError, all_versions

    try:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Namespace"}, kube_version)
    except (VersionNotSupportedError, IndexError):  # IndexError: older than its oldest schemas
        raise ValueError(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
                         f"Kubernetes {kube_version}; it knows {all_versions()[0]} to {all_versions()[-1]}")
    problems: list[str] = []
    for index, m in enumerate(manifests):
        if not isinstance(m, dict):
            problems.append(f"manifest {index}: not a mapping")
            continue
        meta = m.get("metadata") if isinstance(m.get("metadata"), dict) else {}
        where = f"{m.get('kind', '?')}/{meta.get('name', '?')}"
        name = meta.get("name")
        if not isinstance(name, str) or len(name) > 63 or not DNS_LABEL.match(name):
            problems.append(f"{where}: metadata.name {name!r} is not a DNS-1123 label of at most 63 chars")
        for key, value in (meta.get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                problems.append(f"{where}: label {key}={value!r} is not a valid label value")
        if m.get("kind") == "InferenceService":
            problems += _check_kserve(m, where)
            continue
        try:
            kubernetes_validate.validate(m, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path) or "(top)"
            problems.append(f"{where}: {path}: {error.message}")
        except SchemaNotFoundError as error:
            problems.append(f"{where}: {error.message}")
        except (KeyError, TypeError) as error:
            problems.append(f"{where}: cannot be validated: {error!r}")
    return problems
