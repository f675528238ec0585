"""Inference services: a project's registered model versions served as endpoints (local worker processes, or
Kubernetes manifests), spoken to in the Open Inference Protocol and MLflow's ``/invocations``, with traffic
split between versions, metrics kept as time series, and replicas scaled with the load."""
