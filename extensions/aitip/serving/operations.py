"""Endpoints, their versions and traffic, keys, metrics and manifests: the serving section of the operation
table. Calling an endpoint is not a row: its route speaks the inference protocols
(:mod:`aitip.server.handlers.serving`), checked as ``serving.invoke``."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import (
    ApiKey,
    ApiKeyList,
    Endpoint,
    EndpointDeploy,
    EndpointList,
    EndpointMetrics,
    KeyCreate,
    Manifests,
    ManifestsQuery,
    MetricsQuery,
    Optimization,
    OptimizationList,
    OptimizationListQuery,
    OptimizationStart,
    SampleList,
    SamplesQuery,
    ScalingSet,
    TrafficSet,
    VariantAdd,
)

_ENDPOINTS = "projects/{project}/endpoints"
_ENDPOINT = f"{_ENDPOINTS}/{{endpoint}}"
_VERSION = {"model_version": "version"}
_KEY = {"key": "key_id"}
_OPTIMIZATIONS = "projects/{project}/optimizations"
_OPTIMIZATION = {"optimization": "job_id"}

SECTION = Section("serving", "Serving", (
    Operation("endpoints.list", "serving.read", "GET", _ENDPOINTS,
              "The project's endpoints: versions, weights, replicas", response=EndpointList, call="serving.list"),
    Operation("endpoints.get", "serving.read", "GET", _ENDPOINT,
              "One endpoint: its versions, their weights and states, and its URL", response=Endpoint,
              call="serving.get"),
    Operation("endpoints.deploy", "serving.deploy", "POST", _ENDPOINTS,
              "Deploy a registered model version as a new endpoint, answered once it serves (422 with the "
              "reason when its model does not load)", body=EndpointDeploy, response=Endpoint, status=201,
              call="serving.deploy", location="name"),
    Operation("endpoints.add_version", "serving.deploy", "POST", f"{_ENDPOINT}/versions",
              "Add a version: a canary taking a share of the traffic, or a shadow getting a copy of it",
              body=VariantAdd, response=Endpoint, call="serving.add_version"),
    Operation("endpoints.traffic", "serving.deploy", "PUT", f"{_ENDPOINT}/traffic",
              "Set the versions' weights (percent, summing to 100) and the shadow; no request is dropped",
              body=TrafficSet, response=Endpoint, call="serving.set_traffic"),
    Operation("endpoints.remove_version", "serving.deploy", "DELETE", f"{_ENDPOINT}/versions/{{model_version}}",
              "Undeploy a version that takes no traffic (its requests finish first)", response=Endpoint,
              call="serving.remove_version", arguments=_VERSION),
    Operation("endpoints.scale", "serving.deploy", "PUT", f"{_ENDPOINT}/scaling",
              "Set the replicas' bounds and the concurrency each replica aims for", body=ScalingSet,
              response=Endpoint, call="serving.set_scaling"),
    Operation("endpoints.delete", "serving.manage", "DELETE", _ENDPOINT,
              "Delete an endpoint: every version stops, its keys and metrics go", status=204,
              call="serving.delete"),
    Operation("endpoints.metrics", "serving.read", "GET", f"{_ENDPOINT}/metrics",
              "Each version's requests, errors and latency: totals and the time series", query=MetricsQuery,
              response=EndpointMetrics, call="serving.metrics"),
    Operation("endpoints.samples", "serving.read", "GET", f"{_ENDPOINT}/samples",
              "Sampled requests and answers (masked), newest first, for drift checks", query=SamplesQuery,
              response=SampleList, call="serving.samples"),
    Operation("endpoints.manifests", "serving.read", "GET", f"{_ENDPOINT}/manifests",
              "The endpoint as Kubernetes manifests (or a KServe InferenceService), validated offline",
              query=ManifestsQuery, response=Manifests, call="serving.manifests"),
    Operation("endpoints.prometheus", "serving.read", "GET", "projects/{project}/serving-metrics",
              "The project's endpoint metrics in Prometheus's text format (for a scrape job)",
              handler="aitip.server.handlers.serving:PrometheusHandler", not_in=frozenset({"mcp"}), gives_file=True),
    Operation("endpoint_keys.list", "serving.manage", "GET", f"{_ENDPOINT}/keys",
              "The endpoint's API keys (never their secrets)", response=ApiKeyList, call="serving.list_keys"),
    Operation("endpoint_keys.create", "serving.manage", "POST", f"{_ENDPOINT}/keys",
              "Make an API key that may call this endpoint; its secret is shown once", body=KeyCreate,
              response=ApiKey, status=201, call="serving.create_key", location="id"),
    Operation("endpoint_keys.revoke", "serving.manage", "DELETE", f"{_ENDPOINT}/keys/{{key}}",
              "Revoke an API key at once", response=ApiKey, call="serving.revoke_key", arguments=_KEY),
    Operation("endpoints.optimize", "serving.deploy", "POST", _OPTIMIZATIONS,
              "Package a model version for Triton with Triton Model Navigator: a sandboxed job on the aitip-triton "
              "kernel (409 where it is not installed); answers at once, the summary follows when it ends",
              body=OptimizationStart, response=Optimization, status=202, call="optimizations.start",
              location="id", long_running=True),
    Operation("endpoints.optimizations", "serving.read", "GET", _OPTIMIZATIONS,
              "The project's Triton packagings, newest first", query=OptimizationListQuery,
              response=OptimizationList, call="optimizations.list"),
    Operation("endpoints.optimization", "serving.read", "GET", f"{_OPTIMIZATIONS}/{{optimization}}",
              "One packaging: its job's state and the navigator's summary (formats, status, p50 latency and "
              "throughput per batch size, the selected runtime)", response=Optimization, call="optimizations.get",
              arguments=_OPTIMIZATION),
    Operation("endpoints.package", "serving.read", "GET", f"{_OPTIMIZATIONS}/{{optimization}}/package",
              "The navigator package (model.nav) and the Triton model repository, as a .tar.gz",
              handler="aitip.server.handlers.serving:OptimizationPackageHandler", not_in=frozenset({"mcp"}),
              gives_file=True),
))
