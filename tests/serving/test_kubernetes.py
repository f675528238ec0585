"""The serving manifests, rendered with no cluster: every one passes the Kubernetes 1.30 schemas (strict),
names stay valid for any input, the GPU, autoscaling and KServe canary shapes are as specified, bad
specs are refused with a message naming the fault, and a tampered manifest is caught by ``validate``."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from aitip.serving.kubernetes import DNS_LABEL, LABEL_VALUE, EndpointSpec, VariantSpec, render, to_yaml, validate

V = VariantSpec
KSERVE_BASE = "s3://models/"


def spec(*variants: VariantSpec, **fields) -> EndpointSpec:
    return EndpointSpec(**{"project": "vision", "endpoint": "classify", "model": "resnet",
                           "variants": variants or (V(1, 100),), **fields})


def of_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


SPECS = {
    "one": spec(),
    "canary+shadow": spec(V(1, 90, replicas_min=2, replicas_max=6), V(2, 10, cpu="500m"),
                          V(3, 0, shadow=True)),
    "gpu onnx": spec(V(7, 100, gpus=2, cpu="4", memory="16Gi", backend="onnx", replicas_max=3)),
    "long names": spec(V(123456, 100), project="p" * 63, endpoint="e" * 63, model="x" * 300),
    "odd model": spec(V(1, 50), V(2, 50), project="1st", model="Ünïcode model / with:colons"),
}


@pytest.mark.parametrize("custom_metrics", [False, True])
@pytest.mark.parametrize("name", SPECS)
def test_every_manifest_validates_for_kubernetes_1_30(name: str, custom_metrics: bool) -> None:
    manifests = render(SPECS[name], custom_metrics=custom_metrics)
    assert validate(manifests, kube_version="1.30.0") == []
    assert list(yaml.safe_load_all(to_yaml(manifests))) == manifests


@pytest.mark.parametrize("name", SPECS)
def test_names_and_labels_are_valid_bounded_and_deterministic(name: str) -> None:
    manifests = render(SPECS[name])
    assert render(SPECS[name]) == manifests
    for m in manifests:
        assert DNS_LABEL.match(m["metadata"]["name"]) and len(m["metadata"]["name"]) <= 63
        assert m["metadata"]["name"][0].isalpha(), "Service names are DNS-1035: they start with a letter"
        for value in m["metadata"]["labels"].values():
            assert LABEL_VALUE.match(value) and len(value) <= 63
    # each kind's names are distinct (kinds may share a name)
    for kind in {m["kind"] for m in manifests}:
        names = [m["metadata"]["name"] for m in of_kind(manifests, kind)]
        assert len(names) == len(set(names))


@pytest.mark.parametrize("project, endpoint, version, expected", [
    ("vision", "classify", 3, "vision-classify-v3"),
    ("a" * 30, "b" * 30, 1, None),  # 30+1+30+3 = 64 chars: cut and hashed
    ("a" * 63, "b" * 63, 99, None),
])
def test_variant_names_are_the_plain_form_or_a_hashed_cut(project: str, endpoint: str, version: int,
                                                          expected: str | None) -> None:
    deployment = of_kind(render(spec(V(version, 100), project=project, endpoint=endpoint)), "Deployment")[0]
    name = deployment["metadata"]["name"]
    if expected:
        assert name == expected
    else:
        assert len(name) == 63 and re.search(r"-[0-9a-f]{8}$", name) and name.startswith(project[:20])


def test_long_names_differing_only_at_the_end_stay_distinct() -> None:
    first = render(spec(V(1, 100), project="p" * 63, endpoint="e" * 62 + "a"))[0]["metadata"]["name"]
    second = render(spec(V(1, 100), project="p" * 63, endpoint="e" * 62 + "b"))[0]["metadata"]["name"]
    assert first != second


def test_deployment_runs_the_replica_with_the_batching_arguments_and_hardening() -> None:
    s = spec(V(4, 100, cpu="2500m"), model="fraud", max_batch_size=16, max_batch_wait_ms=0.5)
    deployment = of_kind(render(s), "Deployment")[0]
    c = container(deployment)
    assert c["command"] + c["args"][:10] == [
        "python", "-m", "aitip.serving.replica", "--model-uri", "models:/fraud/4", "--port", "8080",
        "--max-batch-size", "16", "--max-batch-wait-ms", "0.5", "--backend", "python"]
    assert c["ports"][0]["containerPort"] == 8080
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"name": "OMP_NUM_THREADS", "value": "3"} in c["env"]  # ceil(2.5 cores)
    assert c["securityContext"] == {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "2500m", "memory": "1Gi"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "aitip-serving"
    assert (labels["aitip.io/project"], labels["aitip.io/endpoint"], labels["aitip.io/model-version"]) == (
        "vision", "classify", "4")
    assert "tolerations" not in deployment["spec"]["template"]["spec"]


@pytest.mark.parametrize("gpus", [1, 4])
def test_gpu_variant_has_the_limit_and_toleration(gpus: int) -> None:
    deployment = of_kind(render(spec(V(1, 100, gpus=gpus))), "Deployment")[0]
    assert container(deployment)["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        deployment["spec"]["template"]["spec"]["tolerations"])


@pytest.mark.parametrize("low, high, pdb", [(1, 1, False), (1, 5, False), (2, 2, True), (3, 10, True)])
def test_hpa_bounds_and_disruption_budget(low: int, high: int, pdb: bool) -> None:
    manifests = render(spec(V(1, 100, replicas_min=low, replicas_max=high)))
    hpa = of_kind(manifests, "HorizontalPodAutoscaler")[0]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (low, high)
    assert hpa["spec"]["scaleTargetRef"]["name"] == of_kind(manifests, "Deployment")[0]["metadata"]["name"]
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    assert bool(of_kind(manifests, "PodDisruptionBudget")) == pdb


def test_the_inflight_metric_only_with_a_custom_metrics_adapter() -> None:
    hpa = of_kind(render(spec(target_concurrency=8), custom_metrics=True), "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["metrics"][1] == {"type": "Pods", "pods": {
        "metric": {"name": "aitip_inflight_requests"}, "target": {"type": "AverageValue", "averageValue": "8"}}}


def test_endpoint_service_reaches_live_variants_only() -> None:
    manifests = render(SPECS["canary+shadow"])
    services = of_kind(manifests, "Service")
    assert len(services) == 4  # one per variant and the endpoint's
    endpoint = services[-1]
    assert endpoint["metadata"]["name"] == "vision-classify"
    assert endpoint["spec"]["selector"]["aitip.io/traffic"] == "live"
    traffic = {d["metadata"]["labels"]["aitip.io/model-version"]: d["spec"]["template"]["metadata"]["labels"][
        "aitip.io/traffic"] for d in of_kind(manifests, "Deployment")}
    assert traffic == {"1": "live", "2": "live", "3": "shadow"}


@pytest.mark.parametrize("variants, percent, stable", [
    ((V(1, 100),), None, None),
    ((V(1, 80), V(2, 20)), 20, "1"),
    ((V(5, 30), V(3, 70)), 30, "3"),  # the newest version is the canary, whatever the order given
    ((V(1, 0), V(2, 100)), 100, "1"),
])
def test_kserve_canary(variants: tuple[VariantSpec, ...], percent: int | None, stable: str | None) -> None:
    manifests = render(spec(*variants, model_uri_base=KSERVE_BASE), kserve=True)
    assert [m["kind"] for m in manifests] == ["InferenceService"]
    isvc = manifests[0]
    predictor = isvc["spec"]["predictor"]
    newest = max(v.version for v in variants)
    assert predictor["model"]["storageUri"] == f"{KSERVE_BASE}resnet/{newest}"
    assert predictor["model"]["modelFormat"]["name"] == "mlflow"
    assert predictor.get("canaryTrafficPercent") == percent
    assert isvc["metadata"]["annotations"].get("aitip.io/stable-version") == stable
    assert validate(manifests) == []


def test_kserve_gpu_onnx_and_long_names() -> None:
    s = spec(V(1, 100, gpus=1, backend="onnx"), project="p" * 63, endpoint="e" * 63, model_uri_base=KSERVE_BASE)
    isvc = render(s, kserve=True)[0]
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == "onnx"
    assert isvc["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert isvc["spec"]["predictor"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert len(f"{isvc['metadata']['name']}-predictor-aitip-serving") <= 63
    assert validate([isvc]) == []


BAD_SPECS = [
    (lambda: spec(V(1, 60), V(2, 30)), "sum to 100"),
    (lambda: spec(V(1, 100), V(2, 10, shadow=True), V(3, 10)), "sum to 100"),
    (lambda: spec(V(1, 50, shadow=True)), "non-shadow"),
    (lambda: EndpointSpec("vision", "classify", "resnet", ()), "at least one variant"),
    (lambda: spec(V(1, 50), V(1, 50)), "once"),
    (lambda: V(1, 100, replicas_min=3, replicas_max=2), "replicas_min (3) exceeds replicas_max (2)"),
    (lambda: V(1, 100, replicas_min=0), "replicas_min must be at least 1"),
    (lambda: V(1, 101), "weight"),
    (lambda: V(1, -1), "weight"),
    (lambda: V(0, 100), "version"),
    (lambda: V(1, 100, cpu="two"), "cpu"),
    (lambda: V(1, 100, cpu="0"), "cpu"),
    (lambda: V(1, 100, memory="1GB"), "memory"),
    (lambda: V(1, 100, gpus=-1), "gpus"),
    (lambda: V(1, 100, backend="tensorrt"), "backend"),
    (lambda: spec(project="Vision"), "project"),
    (lambda: spec(endpoint="a" * 64), "endpoint"),
    (lambda: spec(namespace="my_ns"), "namespace"),
    (lambda: spec(model=" "), "model"),
    (lambda: spec(max_batch_size=0), "max_batch_size"),
    (lambda: spec(max_batch_wait_ms=-1.0), "max_batch_wait_ms"),
    (lambda: spec(target_concurrency=0), "target_concurrency"),
    (lambda: render(spec(V(1, 50), V(2, 30), V(3, 20), model_uri_base=KSERVE_BASE), kserve=True), "at most two"),
    (lambda: render(spec(V(1, 100), V(2, 0, shadow=True), model_uri_base=KSERVE_BASE), kserve=True), "shadow"),
    (lambda: render(spec(), kserve=True), "cannot fetch"),
    (lambda: render(spec(namespace="n" * 45, model_uri_base=KSERVE_BASE), kserve=True), "too long for KServe"),
    (lambda: validate(render(spec()), kube_version="1.99.0"), "no schemas for Kubernetes 1.99.0"),
    (lambda: validate(render(spec()), kube_version="1.24.0"), "no schemas for Kubernetes 1.24.0"),
]


@pytest.mark.parametrize("build, message", BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_bad_specs_are_refused_naming_the_problem(build, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def _set(path: str, value):
    def tamper(manifests: list[dict]) -> None:
        kind, *keys = path.split(".")
        target = of_kind(manifests, kind)[0]
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value
    return tamper


TAMPERED = [
    (_set("Deployment.spec.replicas", "2"), "replicas"),
    (_set("Deployment.spec.colour", "blue"), "colour"),  # strict: unknown fields are errors
    (_set("Deployment.spec.template.spec.containers.0.ports.0.containerPort", "8080"), "containerPort"),
    (_set("Service.spec.ports.0.port", None), "port"),
    (_set("HorizontalPodAutoscaler.spec.minReplicas", 1.5), "minReplicas"),
    (_set("Deployment.metadata.name", "Not_A_Label"), "metadata.name"),
    (_set("Service.metadata.labels", {"aitip.io/model": "x" * 64}), "label"),
    (_set("Deployment.apiVersion", "apps/v2"), "apps/v2"),
]


@pytest.mark.parametrize("tamper, message", TAMPERED, ids=[m for _, m in TAMPERED])
def test_a_tampered_manifest_is_reported(tamper, message: str) -> None:
    manifests = copy.deepcopy(render(SPECS["canary+shadow"]))
    tamper(manifests)
    problems = validate(manifests)
    assert problems and any(message in p for p in problems), problems


KSERVE_TAMPERED = [
    (_set("InferenceService.spec.predictor.canaryTrafficPercent", 120), "canaryTrafficPercent"),
    (_set("InferenceService.spec.predictor.canaryTrafficPercent", "20"), "canaryTrafficPercent"),
    (_set("InferenceService.spec.predictor.model.storageUri", "models:/resnet/2"), "storageUri"),
    (_set("InferenceService.spec.predictor.model.modelFormat", {}), "modelFormat.name"),
    (_set("InferenceService.spec.predictor.model", None), "spec.predictor.model"),
    (_set("InferenceService.apiVersion", "serving.kserve.io/v1alpha1"), "apiVersion"),
    (_set("InferenceService.metadata.name", "n" * 50), "KServe host"),
]


@pytest.mark.parametrize("tamper, message", KSERVE_TAMPERED, ids=[m for _, m in KSERVE_TAMPERED])
def test_a_tampered_inference_service_is_reported(tamper, message: str) -> None:
    manifests = copy.deepcopy(render(spec(V(1, 80), V(2, 20), model_uri_base=KSERVE_BASE), kserve=True))
    tamper(manifests)
    problems = validate(manifests)
    assert problems and any(message in p for p in problems), problems


def test_an_unknown_kind_is_reported_not_skipped() -> None:
    problems = validate([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])
    assert problems and "Widget" in problems[0]
