"""Request and response types of the serving API."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..schema import PROJECT_NAME_PATTERN, RequestModel, ResponseModel
from .optimize import FORMATS as OPTIMIZE_FORMATS
from .optimize import MAX_BATCH as OPTIMIZE_MAX_BATCH
from .optimize import MODEL_NAME as OPTIMIZE_MODEL_NAME

EndpointName = Annotated[str, Field(min_length=1, max_length=63, pattern=PROJECT_NAME_PATTERN,
                                    description="The endpoint's name: a DNS label (lower-case letters, digits, "
                                    "'-'), so that it can name Kubernetes objects")]
ModelName = Annotated[str, Field(min_length=1, max_length=256, description="The registered model's name")]
ModelVersion = Annotated[int, Field(ge=1, le=999_999_999, description="The model version (from 1)")]
Weight = Annotated[int, Field(ge=0, le=100, description="Percent of the endpoint's traffic")]


class Backend(str, Enum):
    python = "python"  # the model's own flavor (scikit-learn's predict; else mlflow.pyfunc)
    onnx = "onnx"  # converted once to ONNX, run by onnxruntime


class Mode(str, Enum):
    local = "local"  # worker processes on this machine, run by the platform as the owner's account
    kubernetes = "kubernetes"  # manifests rendered for a cluster (GET .../manifests); nothing runs here


class VariantState(str, Enum):
    starting = "starting"
    serving = "serving"
    failed = "failed"  # its model did not load: the reason says why; the other versions keep serving
    draining = "draining"
    stopped = "stopped"


class Scaling(RequestModel):
    replicas_min: int = Field(1, ge=1, le=64, description="Replicas kept running however idle")
    replicas_max: int = Field(2, ge=1, le=64, description="Replicas at most, however busy")
    target_concurrency: float = Field(4.0, gt=0, le=1000,
                                      description="Requests in flight per replica that the scaler aims for")
    scale_down_seconds: float = Field(30.0, ge=0, le=3600,
                                      description="How long the load must stay lower before a replica is taken away")

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.replicas_min > self.replicas_max:
            raise InvalidValue("replicas_min ({replicas_min}) is above replicas_max ({replicas_max})",
                               replicas_min=self.replicas_min, replicas_max=self.replicas_max)
        return self


class Resources(RequestModel):
    cpu: str = Field("1", pattern=r"^[0-9]+(\.[0-9]+)?m?$", description="CPU per replica (a Kubernetes quantity)")
    memory: str = Field("1Gi", pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", description="Memory per replica")
    gpus: int = Field(0, ge=0, le=16, description="GPUs per replica (Kubernetes mode)")


class EndpointSettings(RequestModel):
    backend: Backend = Backend.python
    max_batch_size: int = Field(64, ge=1, le=10_000, description="Rows at most in one batched predict")
    max_batch_wait_ms: float = Field(2.0, ge=0, le=1000,
                                     description="Under load, how long a batch waits for more requests")
    scaling: Scaling = Field(default_factory=Scaling)
    resources: Resources = Field(default_factory=Resources)
    sample_rate: float = Field(0.01, ge=0, le=1, description="The share of requests and answers kept (masked) "
                               "for drift checks")
    mask_fields: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=256, description="Inputs (columns) whose values samples never keep")
    sticky_header: str = Field("X-Route-Key", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$",
                               description="The request header whose value keeps a caller on one version")


class EndpointDeploy(RequestModel):
    """Deploy a registered model version as a new endpoint (all its traffic)."""

    name: EndpointName
    model: ModelName
    version: ModelVersion
    mode: Mode = Field(Mode.local, description="local: worker processes here; kubernetes: manifests to apply")
    settings: EndpointSettings = Field(default_factory=EndpointSettings,
                                       description="Backend, batching, scaling, resources, sampling (JSON)")


class VariantAdd(RequestModel):
    """Add a version to an endpoint: a canary with ``weight`` percent (the others give it up in proportion), or
    a shadow that gets a copy of the traffic and whose answers are dropped."""

    version: ModelVersion
    weight: Weight = 0
    shadow: bool = Field(False, description="Get a copy of every request; its answers are dropped")

    @model_validator(mode="after")
    def _shadow_has_no_weight(self) -> VariantAdd:
        if self.shadow and self.weight:
            raise InvalidValue("a shadow version gets a copy of the traffic: give it no weight")
        return self


class TrafficSet(RequestModel):
    """The weights of the endpoint's versions (percent, summing to 100), and which version shadows."""

    weights: dict[str, Annotated[float, Field(ge=0, le=100)]] = Field(
        min_length=1, max_length=16, description="Model version -> whole percent of the traffic; they sum to 100")
    shadow: ModelVersion | None = Field(None, description="A version that gets a copy of every request")

    @field_validator("weights")
    @classmethod
    def _versions(cls, weights: dict[str, float]) -> dict[str, float]:
        for version, weight in weights.items():
            if not version.isdigit() or int(version) < 1:
                raise InvalidValue("{version!r} is not a model version (a number from 1)", version=version)
            if weight != int(weight):
                raise InvalidValue("version {version}'s weight {weight} is not a whole percent",
                                   version=version, weight=weight)
        total = int(sum(weights.values()))
        if total != 100:
            raise InvalidValue("the weights sum to {total}; they must sum to 100", total=total)
        return weights


class ScalingSet(Scaling):
    """New bounds for every version's replicas."""


class Variant(ResponseModel):
    version: int
    weight: int
    shadow: bool
    state: VariantState
    reason: str | None = None
    replicas: int = 0  # running and ready now
    replicas_wanted: int = 0
    run_id: str | None = None
    created_by: str
    created_at: datetime


class Endpoint(ResponseModel):
    id: int
    project: str
    name: str
    model: str
    mode: Mode
    settings: dict[str, Any] = Field(description="As deployed: backend, batching, scaling, resources, sampling "
                                     "(the fields of the deploy's settings)")
    variants: list[Variant]
    url: str  # relative to the hub: /services/aitip/serve/<project>/<endpoint>/
    created_by: str
    created_at: datetime
    updated_at: datetime


class EndpointList(ResponseModel):
    endpoints: list[Endpoint]


class KeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for (shown in the list)")


class ApiKey(ResponseModel):
    id: int
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None
    secret: str | None = Field(None, description="The key itself: shown once, when it is made")


class ApiKeyList(ResponseModel):
    keys: list[ApiKey]


class MetricsQuery(RequestModel):
    minutes: float = Field(60, gt=0, le=60 * 24 * 31, description="The series' span, back from now")
    version: ModelVersion | None = Field(None, description="Only this version's figures; default: every version")


class MetricPoint(ResponseModel):
    at: datetime
    version: int
    seconds: float
    requests: int
    errors: int
    client_errors: int
    rows: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    labelled: int = Field(0, description="Answered rows whose true label arrived in this interval (feedback)")
    accuracy: float | None = Field(None, description="Of those, the share the version predicted right")


class VariantTotals(ResponseModel):
    version: int
    requests: int
    errors: int
    client_errors: int
    rows: int
    shadow_requests: int
    retries: int
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    labelled: int = Field(0, description="Answered rows whose true label arrived (feedback)")
    accuracy: float | None = Field(None, description="Of those, the share the version predicted right")
    in_flight: int


class EndpointMetrics(ResponseModel):
    endpoint: str
    since: datetime
    totals: list[VariantTotals]  # since the platform started
    series: list[MetricPoint]


class Sample(ResponseModel):
    at: datetime
    version: int
    protocol: str
    status: int
    latency_ms: float
    request: Any
    answer: Any


class SampleList(ResponseModel):
    samples: list[Sample]


class SamplesQuery(RequestModel):
    limit: int = Field(100, ge=1, le=1000, description="At most this many, newest first")
    version: ModelVersion | None = Field(None, description="Only requests this version answered")


class ManifestsQuery(RequestModel):
    kserve: bool = Field(False, description="A KServe InferenceService instead of Deployments and HPAs")
    image: str = Field("aitip/serving:latest", min_length=1, max_length=300,
                       description="The serving container image the manifests run")
    namespace: str = Field("aitip-serving", min_length=1, max_length=63, pattern=PROJECT_NAME_PATTERN,
                           description="The Kubernetes namespace the manifests go into")


class Manifests(ResponseModel):
    yaml: str
    manifests: list[dict[str, Any]]
    problems: list[str]  # offline validation (kubernetes-validate); empty when valid



class OptimizeDevice(str, Enum):
    cuda = "cuda"  # every format, TensorRT included, on the kernel's GPU
    cpu = "cpu"  # the ONNX path on onnxruntime's CPU runner, for a machine without a GPU


OptimizeFormat = Enum("OptimizeFormat", {name.replace("-", "_"): name for name in dict.fromkeys(
    name for names in OPTIMIZE_FORMATS.values() for name in names)}, type=str)
OptimizeFormat.__doc__ = "A format Triton Model Navigator makes (onnx and trt from scikit-learn models)"


class OptimizationStart(RequestModel):
    """Package a registered model version for Triton with Triton Model Navigator, in a job on the
    ``aitip-triton`` kernel (kernels/triton)."""

    model: ModelName
    version: ModelVersion
    formats: list[OptimizeFormat] | None = Field(
        None, min_length=1, max_length=len(OptimizeFormat),
        description="Navigator formats (onnx and trt for scikit-learn models). Default: onnx and trt for "
                    "scikit-learn, torchscript, onnx and trt for PyTorch; onnx alone on the cpu device")
    batch_sizes: list[Annotated[int, Field(ge=1, le=OPTIMIZE_MAX_BATCH)]] = Field(
        default_factory=lambda: [1, 8, 64], min_length=1, max_length=16,
        description="Batch sizes profiled; the largest is the Triton repository's max_batch_size")
    device: OptimizeDevice = Field(OptimizeDevice.cuda, description="cuda (a GPU job) or cpu (the ONNX path)")
    triton_name: str | None = Field(None, pattern=OPTIMIZE_MODEL_NAME.pattern, max_length=128,
                                    description="The model's name in the Triton repository; default: the registered "
                                    "name with other characters made '-'")
    stability_percentage: float = Field(10.0, gt=0, le=100, description="The navigator's allowed variation between "
                                        "measurement windows (a busy CPU timing small models may need 30)")
    timeout_seconds: int = Field(3600, ge=60, le=24 * 3600,
                                 description="Seconds the packaging job may run before it times out")

    @model_validator(mode="after")
    def _tensorrt_needs_a_gpu(self) -> OptimizationStart:
        if self.device is OptimizeDevice.cpu and any(name.value in ("trt", "torch-trt") for name in self.formats or ()):
            raise InvalidValue("TensorRT formats (trt, torch-trt) need device cuda")
        return self


class OptimizationListQuery(RequestModel):
    model: ModelName | None = Field(None, description="Only packagings of this model")
    limit: int = Field(50, ge=1, le=500, description="At most this many, newest first")


class NavigatorRunner(ResponseModel):
    status: str
    commands: dict[str, str]
    latency_ms: dict[int, float] = Field(description="p50 latency per batch size")
    throughput: dict[int, float] = Field(description="Inferences per second per batch size")


class NavigatorModel(ResponseModel):
    format: str
    status: str
    conversion: dict[str, str]
    runners: dict[str, NavigatorRunner]


class NavigatorSummary(ResponseModel):
    navigator_version: str | None
    model_name: str | None
    flavor: str | None
    target_device: str | None
    batch_sizes: list[int]
    formats: dict[str, str] = Field(description="Each format and the best status any of its variants reached")
    models: dict[str, NavigatorModel]
    best: dict[str, Any] | None = Field(description="The runtime the navigator selected (model, runner, latency)")
    package: str | None = Field(description="The navigator package, relative to the output folder")
    repository: str | None = Field(description="The Triton model repository, relative to the output folder")
    repository_error: str | None
    elapsed_s: float | None


class Optimization(ResponseModel):
    id: int = Field(description="The optimization's id: that of the job that runs the navigator")
    project: str
    model: str
    version: int
    device: str
    formats: list[str] | None
    batch_sizes: list[int]
    triton_name: str
    state: str = Field(description="The job's state: queued, starting, running, succeeded, failed, ...")
    created_by: str
    submitted_at: datetime
    finished_at: datetime | None
    reason: str | None = Field(None, description="Why the job failed, or why its summary could not be read")
    summary: NavigatorSummary | None = None
    has_package: bool = Field(False, description="The package and Triton repository can be downloaded")


class OptimizationList(ResponseModel):
    optimizations: list[Optimization]
