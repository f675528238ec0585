"""Where ``mlflow-artifacts:`` URIs lead. The platform's experiments keep their artifacts at
``mlflow-artifacts:/<project>/...``, as an MLflow server serving artifacts would:

* where the tracking URI is a server (a job kernel running as its owner talks to the tracking gateway, which
  checks that the path is the job's project's; a team's MLflow server), they resolve through it;
* next to a store opened directly (the platform, and a single-trust kernel, which may read the store's
  files) ``$AITIP_MLFLOW_ARTIFACTS`` names the directory they live in, and they resolve to files there.

Stores made before artifacts were served this way kept ``file://<artifact root>/...`` locations; the start
of the platform rewrites them (:func:`relocate_file_artifacts`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DESTINATION_ENV = "AITIP_MLFLOW_ARTIFACTS"
SCHEME = "mlflow-artifacts"


def project_artifact_location(project: str) -> str:
    return f"{SCHEME}:/{project}"


def relative_path(artifact_uri: str) -> str:
    """The path an ``mlflow-artifacts:`` URI names below the artifact root (``host:port`` forms included)."""
    rest = artifact_uri[len(SCHEME) + 1:]
    if rest.startswith("//"):
        rest = rest[2:].partition("/")[2]
    return rest.lstrip("/")


def artifacts_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> Any:
    """Through the tracking server when there is one (``http(s)``, the gateway included; under ``aitip:``,
    the inner URI); else, next to a store opened directly, the files under ``$AITIP_MLFLOW_ARTIFACTS``."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._tracking_service.utils import get_tracking_uri

    from .buffered_store import URI_PREFIX, inner_tracking_uri

    tracking_uri = tracking_uri or get_tracking_uri()
    if tracking_uri.startswith(URI_PREFIX):
        tracking_uri = inner_tracking_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

        return MlflowArtifactsRepository(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
    destination = os.environ.get(DESTINATION_ENV)
    if not destination:
        raise MlflowException(f"{artifact_uri!r} is served by a tracking server, and {tracking_uri!r} is none: "
                              f"set ${DESTINATION_ENV} to the directory that holds these artifacts")
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    return LocalArtifactRepository(str(Path(destination) / relative_path(artifact_uri)))


def register_artifacts_scheme() -> None:
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

    _artifact_repository_registry.register(SCHEME, artifacts_repository)


def relocate_file_artifacts(tracking_uri: str, artifact_root: Path) -> int:
    """Rewrite ``file://<artifact_root>/x`` locations to ``mlflow-artifacts:/x`` in an SQL store; the
    rows changed. Idempotent; a server store (``http``) is left to its server."""
    if not tracking_uri.startswith(("sqlite:", "postgresql")):
        return 0
    import sqlalchemy

    old = artifact_root.absolute().as_uri().rstrip("/") + "/"
    new = f"{SCHEME}:/"
    columns = [("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location"),
               ("model_versions", "source"), ("model_versions", "storage_location")]
    engine = sqlalchemy.create_engine(tracking_uri)
    changed = 0
    try:
        with engine.begin() as connection:
            present = set(sqlalchemy.inspect(connection).get_table_names())
            for table, column in columns:
                if table not in present:
                    continue
                statement = sqlalchemy.text(
                    f"UPDATE {table} SET {column} = :new || substr({column}, :cut) "  # noqa: S608 - fixed names
                    f"WHERE substr({column}, 1, :length) = :old")
                changed += connection.execute(statement, {"new": new, "cut": len(old) + 1, "length": len(old),
                                                          "old": old}).rowcount or 0
    finally:
        engine.dispose()
    return changed
