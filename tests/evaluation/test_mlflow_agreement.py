"""Every metric name that ``mlflow.models.evaluate`` and aitip.evaluation.metrics both report has the same
value, for a binary and a multiclass classifier logged as MLflow models and for a regressor (a few seconds)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from aitip.evaluation.metrics import classification, regression

BINARY_OVERLAP = {"example_count", "accuracy_score", "precision_score", "recall_score", "f1_score", "log_loss",
                  "roc_auc", "precision_recall_auc", "true_negatives", "false_positives", "false_negatives",
                  "true_positives"}
MULTICLASS_OVERLAP = {"example_count", "accuracy_score", "precision_score", "recall_score", "f1_score",
                      "log_loss", "roc_auc"}
REGRESSION_OVERLAP = {"example_count", "mean_absolute_error", "mean_squared_error", "root_mean_squared_error",
                      "sum_on_target", "mean_on_target", "r2_score", "max_error", "mean_absolute_percentage_error"}


MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One throw-away sqlite tracking store for the module (creating one takes seconds)."""
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    # MLflow keeps the URI and the active experiment in globals and in the environment: all are put back after,
    # or later tests in this process log to this module's store.
    previous, environment = utils._tracking_uri, {name: os.environ.get(name) for name in MLFLOW_VARIABLES}
    folder = tmp_path_factory.mktemp("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    # Artifacts beside the store: the default artifact root is ./mlruns in the working directory.
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("agreement", (folder / "artifacts").as_uri()))
    yield mlflow
    mlflow.set_tracking_uri(previous)
    fluent._active_experiment_id = None
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _evaluate(mlflow, model, features, target, model_type):
    import pandas as pd

    data = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
    data["target"] = target
    with warnings.catch_warnings(), mlflow.start_run():
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(model, name="model", input_example=data.drop(columns="target").head(2),
                                        pip_requirements=["scikit-learn"])
        return mlflow.models.evaluate(info.model_uri, data, targets="target", model_type=model_type,
                                      evaluators=["default"]).metrics


def _agree(ours: dict, theirs: dict, expected_overlap: set) -> None:
    overlap = set(ours) & set(theirs)
    assert overlap == expected_overlap, (sorted(ours), sorted(theirs))
    for name in overlap:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-12), name


def test_classifiers_agree_with_mlflow_evaluate(tracking):
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_breast_cancer(return_X_y=True)
    train, test = np.arange(len(labels)) % 3 != 0, np.arange(len(labels)) % 3 == 0
    binary = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=500))
    binary.fit(features[train], labels[train])
    theirs = _evaluate(tracking, binary, features[test], labels[test], "classifier")
    ours = classification(labels[test], binary.predict(features[test]), binary.predict_proba(features[test]))
    _agree(ours["metrics"], theirs, BINARY_OVERLAP)

    features, labels = load_digits(return_X_y=True)
    train, test = np.arange(len(labels)) % 5 != 0, np.arange(len(labels)) % 5 == 0
    multiclass = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=500)).fit(features[train],
                                                                                                labels[train])
    theirs = _evaluate(tracking, multiclass, features[test], labels[test], "classifier")
    ours = classification(labels[test], multiclass.predict(features[test]), multiclass.predict_proba(features[test]))
    _agree(ours["metrics"], theirs, MULTICLASS_OVERLAP)


def test_regressor_agrees_with_mlflow_evaluate(tracking):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    features, target = load_diabetes(return_X_y=True)
    model = Ridge(alpha=1.0).fit(features[100:], target[100:])
    theirs = _evaluate(tracking, model, features[:100], target[:100], "regressor")
    _agree(regression(target[:100], model.predict(features[:100]))["metrics"], theirs, REGRESSION_OVERLAP)
