"""The platform server fixtures of tests/server, and an MLflow store whose project alpha has model ``digits``:
version 1 a logistic regression, version 2 a scaled one (different answers on
some digits), version 3 files
that do not load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import (  # noqa: F401 - fixtures
    aitip_kernelspecs,
    api,
    initialized_registry,
    jp_server_config,
    migrated_catalog,
)

MODEL = "digits"


def digits_split() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return train_test_split(digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target)


def save_models(root: Path) -> tuple[dict[int, Any], Any]:
    """Versions 1-2 as MLflow model directories under ``root`` (and 3, broken): the fitted models, the test rows."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, _ = digits_split()
    fitted = {1: LogisticRegression(max_iter=300, C=1 / 256).fit(x_train, y_train),
              2: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.002)).fit(x_train, y_train)}
    for version, model in fitted.items():
        mlflow.sklearn.save_model(model, str(root / f"v{version}"), pip_requirements=["scikit-learn"],
                                  signature=infer_signature(x_test[:5], model.predict(x_test[:5])))
    broken = root / "v3"
    mlflow.sklearn.save_model(fitted[1], str(broken), pip_requirements=["scikit-learn"],
                              signature=infer_signature(x_test[:5], fitted[1].predict(x_test[:5])))
    (broken / "model.skops").write_bytes(b"not a model at all")
    return fitted, x_test


@pytest.fixture(scope="session")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[int, Any], Any]:
    """(tracking URI, {version: fitted model}, test rows) of an MLflow store with model digits v1-v3 registered
    from runs of project alpha's experiment."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("served-models")
    fitted, x_test = save_models(root / "files")
    uri = f"sqlite:///{root / 'mlflow.sqlite'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("aitip/alpha", artifact_location=(root / "artifacts").as_uri(),
                                          tags={"aitip.project": "alpha"})
    client.create_registered_model(MODEL)
    for version in (1, 2, 3):
        run = client.create_run(experiment).info.run_id
        client.log_artifacts(run, str(root / "files" / f"v{version}"), "model")
        client.set_terminated(run, "FINISHED")
        client.create_model_version(MODEL, f"{client.get_run(run).info.artifact_uri}/model", run_id=run)
    return uri, fitted, x_test
