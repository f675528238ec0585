"""Gradient support read from a staged MLflow model's files alone: models trained here and logged with
``mlflow.sklearn.log_model`` in both serialisations (skops, MLflow 3's default, and cloudpickle), hand-written
MLmodel files for the other flavors, and pickles that would run code if they were loaded (they are not)."""

from __future__ import annotations

import io
import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest

from aitip.simulation.model_inspection import gradient_support, judge_classes, pickle_globals

MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
# skops loads only the types it is told to trust; an MLP's optimizer is not among its defaults.
TRUSTED_TYPES = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One throw-away sqlite tracking store for the module, MLflow's globals put back after."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    previous, environment = utils._tracking_uri, {name: os.environ.get(name) for name in MLFLOW_VARIABLES}
    folder = tmp_path_factory.mktemp("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("inspection", (folder / "artifacts").as_uri()))
    yield mlflow
    mlflow.set_tracking_uri(previous)
    fluent._active_experiment_id = None
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def models():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler
    from sklearn.svm import SVC, LinearSVC

    return {
        "logistic": (LogisticRegression(max_iter=300), True, "LogisticRegression: ART has loss gradients for it"),
        "scaled_logistic": (make_pipeline(StandardScaler(), MinMaxScaler(), LogisticRegression(max_iter=300)), True,
                            "LogisticRegression after StandardScaler, MinMaxScaler"),
        "svc": (SVC(), True, "SVC: ART has loss gradients"),
        "linear_svc": (make_pipeline(StandardScaler(), LinearSVC()), True, "LinearSVC after StandardScaler"),
        "mlp": (make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=30, random_state=0)), False,
                "MLPClassifier has no loss gradients in ART"),
        "pca_logistic": (make_pipeline(PCA(8), LogisticRegression(max_iter=300)), False,
                         "PCA comes before LogisticRegression"),
    }


@pytest.fixture(scope="module")
def staged(tracking, tmp_path_factory):
    """Every model trained on a slice of the digits, logged in each serialisation and downloaded as the
    platform stages it: {(model, format): folder}."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    folders = {}
    root = tmp_path_factory.mktemp("staged")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence, and MLflow's caution about pickles
        for name, (model, _, _) in models().items():
            model.fit(x[:400], y[:400])
            for serialization in ("skops", "cloudpickle"):
                with tracking.start_run():
                    info = tracking.sklearn.log_model(model, name="model", serialization_format=serialization,
                                                      skops_trusted_types=TRUSTED_TYPES,
                                                      pip_requirements=["scikit-learn"])
                folders[name, serialization] = Path(tracking.artifacts.download_artifacts(
                    info.model_uri, dst_path=str(root / f"{name}-{serialization}")))
    return folders


def test_mlflow_saves_scikit_learn_models_with_skops_by_default(tracking, tmp_path):
    import yaml
    from sklearn.linear_model import LogisticRegression

    tracking.sklearn.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), tmp_path / "model")
    flavor = yaml.safe_load((tmp_path / "model" / "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "skops" and flavor["pickled_model"].endswith(".skops")


@pytest.mark.parametrize("serialization", ["skops", "cloudpickle"])
@pytest.mark.parametrize("name", list(models()))
def test_logged_models_are_judged_from_their_files(staged, name, serialization):
    _, expected, reason = models()[name]
    folder = staged[name, serialization]
    suffix = ".skops" if serialization == "skops" else ".pkl"
    assert any(path.suffix == suffix for path in folder.iterdir())
    found = gradient_support(folder)
    assert (found.has_gradients, found.flavor) == (expected, "sklearn")
    assert reason in found.reason
    assert found.to_json()["classes"] == found.classes and found.classes


def test_the_check_agrees_with_art_itself(staged):
    """What ART refuses for real is what the inspection refuses (ART raises for the MLP, accepts the others)."""
    import mlflow.sklearn

    from aitip.simulation.attacks import import_art

    import_art()  # without PyTorch, which ART's package would load and the test process must not
    from art.estimators.classification import SklearnClassifier
    from art.exceptions import EstimatorError
    from art.attacks.evasion import FastGradientMethod

    for name in ("logistic", "svc", "mlp"):
        folder = staged[name, "cloudpickle"]
        model = mlflow.sklearn.load_model(str(folder))
        estimator = SklearnClassifier(model, clip_values=(0, 16))
        try:
            FastGradientMethod(estimator, eps=1.0)
            art_accepts = True
        except EstimatorError:
            art_accepts = False
        assert art_accepts is gradient_support(folder).has_gradients, name


def write_model(folder: Path, flavors: dict, files: dict[str, bytes] | None = None) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))
    for file_name, content in (files or {}).items():
        (folder / file_name).write_bytes(content)
    return folder


@pytest.mark.parametrize("flavors, expected, reason", [
    ({"pytorch": {"pytorch_version": "2.13.0"}, "python_function": {}}, True, "a pytorch model"),
    ({"keras": {}}, True, "a keras model"),
    ({"tensorflow": {}}, True, "a tensorflow model"),
    ({"python_function": {"loader_module": "my_model"}}, False, "only its predictions are known"),
    ({"onnx": {}}, False, "flavor onnx"),
    ({}, False, "names no flavors"),
    ({"sklearn": {"pickled_model": "../../etc/passwd", "serialization_format": "pickle"}}, False,
     "not in the model's folder"),
    ({"sklearn": {"serialization_format": "skops"}}, False, "names no model file"),
])
def test_other_flavors_and_broken_models(tmp_path, flavors, expected, reason):
    found = gradient_support(write_model(tmp_path / "model", flavors))
    assert found.has_gradients is expected and reason in found.reason


def test_a_folder_without_mlmodel_has_no_gradients(tmp_path):
    assert "could not be read" in gradient_support(tmp_path).reason


class Trap:
    """Unpickling this would create a file: the inspection must never do it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_that_would_run_code_is_read_not_loaded(tmp_path):
    marker = tmp_path / "ran"
    folder = write_model(tmp_path / "model", {"sklearn": {"pickled_model": "model.pkl",
                                                          "serialization_format": "cloudpickle"}},
                         {"model.pkl": pickle.dumps(Trap(marker))})
    found = gradient_support(folder)
    assert not found.has_gradients and "pathlib" in found.reason and "not scikit-learn" in found.reason
    assert not marker.exists()
    pickle.loads((folder / "model.pkl").read_bytes())  # noqa: S301 - proof that loading it would run the trap
    assert marker.exists()


def test_a_skops_file_naming_foreign_code_has_no_gradients(tmp_path):
    schema = {"__class__": "Pipeline", "__module__": "sklearn.pipeline", "content": {"steps": [
        {"__class__": "Evil", "__module__": "my_company.models", "content": {}},
        {"__class__": "LogisticRegression", "__module__": "sklearn.linear_model._logistic", "content": {}}]}}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("schema.json", json.dumps(schema))
    folder = write_model(tmp_path / "model", {"sklearn": {"pickled_model": "model.skops",
                                                          "serialization_format": "skops"}},
                         {"model.skops": archive.getvalue()})
    found = gradient_support(folder)
    assert not found.has_gradients and "my_company.models.Evil" in found.reason


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_globals_finds_classes_in_every_protocol(protocol):
    from collections import OrderedDict
    from fractions import Fraction

    data = pickle.dumps([Fraction(1, 3), OrderedDict(a=Fraction(2, 3)), Path("x")], protocol=protocol)
    found, _ = pickle_globals(data)
    names = {f"{module}.{name}" for module, name in found}
    assert {"fractions.Fraction", "collections.OrderedDict"} <= names
    assert any(name.startswith("pathlib.") for name in names)


@pytest.mark.parametrize("classes, expected, reason", [
    ([("sklearn.linear_model._logistic", "LogisticRegression")], True, "LogisticRegression"),
    ([("sklearn.pipeline", "Pipeline"), ("sklearn.preprocessing._data", "StandardScaler"),
      ("numpy", "ndarray"), ("sklearn.svm._classes", "SVC")], True, "SVC after StandardScaler"),
    ([("sklearn.ensemble._forest", "RandomForestClassifier"), ("sklearn.tree._classes", "DecisionTreeClassifier")],
     False, "RandomForestClassifier has no loss gradients in ART"),
    ([("sklearn.pipeline", "Pipeline"), ("sklearn.linear_model._logistic", "LogisticRegression"),
      ("sklearn.svm._classes", "SVC")], False, "more than one"),
    ([("numpy", "ndarray")], False, "no LogisticRegression, SVC or LinearSVC"),
    ([("?", "?")], False, "?.?"),
])
def test_judge_classes(classes, expected, reason):
    has, why, _ = judge_classes(classes, set())
    assert has is expected and reason in why
